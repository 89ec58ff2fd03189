import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TestAgent, TestServer, expectCode, tempDir } from '../src/kit.js';
import { nextTotp, signUp, type Person } from '../src/people.js';

process.env.COFFRE_TEST_ARGON2 ??= '256,1,1';

interface Machine {
  id: string;
  name: string;
  revoked: boolean;
  credentialIssuedAt: string;
  agentVersion: string;
}
interface AuditEntry {
  action: string;
  actorType: string;
  actorLabel: string | null;
  target: string | null;
  outcome: string;
}

/**
 * R15 end to end: a practice's machine credential listed, revoked (the real agent is refused
 * at its next request) and re-issued from the people's API; the same configuration enrols
 * again with the re-issue token and keeps its name and history.
 */
describe('machine credentials: list, revoke, re-issue (R15) with a real agent', () => {
  let server: TestServer;
  let agent: TestAgent;
  let admin: Person;
  let orgId: string;
  const data = tempDir('mc-data');

  before(async () => {
    server = await TestServer.start();
    expectCode(await server.admin(['org', 'create', 'Revendeur Est', '--type', 'reseller']), 0, 'reseller');
    const c = await server.admin(['org', 'create', 'Cabinet Martin', '--type', 'customer', '--parent', 'Revendeur Est']);
    expectCode(c, 0, 'customer');
    orgId = c.stdout.trim();
    admin = await signUp(server, { role: 'reseller-admin', org: 'Revendeur Est' });
    mkdirSync(join(data, 'docs'), { recursive: true });
    writeFileSync(join(data, 'docs', 'ordonnance.txt'), 'contenu de test\n'.repeat(100));
  });
  after(async () => {
    await server.stop();
    server.cleanup();
    agent?.cleanup();
  });

  test('a token created in the API enrols the real agent with the exact command shown', async () => {
    const t = await admin.client.request('POST', `/orgs/${orgId}/enroll-tokens`, { json: {} });
    assert.equal(t.status, 201, t.text);
    const { token, command } = t.json<{ token: string; command: string }>();
    assert.equal(command, `coffre enroll --server ${server.url} --token ${token} --fingerprint ${server.fingerprint}`);
    agent = new TestAgent(server);
    const args = command.split(' ').slice(1);
    expectCode(await agent.run([...args, '--machine', 'accueil']), 0, 'enroll with the shown command');
    expectCode(await agent.run(['backup', data]), 0, 'first backup');
    const list = await admin.client.request('GET', `/orgs/${orgId}/machines`);
    const machines = list.json<{ machines: Machine[] }>().machines;
    assert.deepEqual(machines.map((m) => [m.name, m.revoked]), [['accueil', false]]);
    assert.equal(machines[0]!.agentVersion, '0.1.0');
    // The agent reported the run: result, counts and the snapshot it made.
    const runs = (await admin.client.request('GET', `/orgs/${orgId}/runs`)).json<{ runs: { result: string; files: number; bytes: number; snapshotId: string | null; machineName: string }[] }>().runs;
    const snaps = await agent.json<{ id: string }[]>(['snapshots']);
    assert.equal(runs.length, 1);
    assert.deepEqual([runs[0]!.result, runs[0]!.files, runs[0]!.machineName, runs[0]!.snapshotId], ['success', 1, 'accueil', snaps[0]!.id]);
    assert.equal(runs[0]!.bytes, 1600);
  });

  test('revoking needs a fresh second factor, then the agent is refused at once (exit 10)', async () => {
    const id = (await admin.client.request('GET', `/orgs/${orgId}/machines`)).json<{ machines: Machine[] }>().machines[0]!.id;
    // The sign-up proof is less than five minutes old: the re-authentication window holds.
    const r = await admin.client.request('POST', `/machines/${id}/revoke`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json<Machine>().revoked, true);
    const b = await agent.run(['backup', data]);
    assert.equal(b.code, 10, b.stderr);
    assert.match(b.stderr, /revoked|refused|credential/i);
  });

  test('re-issue gives a one-time token; the same configuration enrols again, same name, history kept', async () => {
    const before = (await admin.client.request('GET', `/orgs/${orgId}/machines`)).json<{ machines: Machine[] }>().machines[0]!;
    const proof = await admin.client.request('POST', '/auth/second-factor/totp', { json: { code: await nextTotp(admin) } });
    assert.equal(proof.status, 200, proof.text);
    const r = await admin.client.request('POST', `/machines/${before.id}/reissue`, { json: {} });
    assert.equal(r.status, 200, r.text);
    const { token } = r.json<{ token: string }>();
    const e = await agent.run(['enroll', '--server', server.url, '--token', token, '--fingerprint', server.fingerprint]);
    expectCode(e, 0, 're-enroll with the re-issue token');
    const again = await agent.run(['enroll', '--server', server.url, '--token', token, '--fingerprint', server.fingerprint]);
    assert.notEqual(again.code, 0, 'a working configuration is never replaced, and the token is single-use');
    expectCode(await agent.run(['backup', data]), 0, 'backup after re-issue');
    const snaps = await agent.json<{ id: string; machine: string }[]>(['snapshots']);
    assert.equal(snaps.length, 2, 'the snapshot from before the revocation is still there');
    assert.deepEqual(new Set(snaps.map((s) => s.machine)), new Set(['accueil']));
    const after = (await admin.client.request('GET', `/orgs/${orgId}/machines`)).json<{ machines: Machine[] }>().machines;
    assert.equal(after.length, 1);
    assert.equal(after[0]!.id, before.id);
    assert.equal(after[0]!.revoked, false);
    assert.ok(after[0]!.credentialIssuedAt > before.credentialIssuedAt);
    const restore = tempDir('mc-restore');
    expectCode(await agent.run(['restore', 'latest', '--target', restore]), 0, 'restore');
  });

  test('the audit trail has the enrollment, the revocation, the re-issue, the new credential and the restore', async () => {
    const r = await admin.client.request('GET', '/audit?limit=200');
    assert.equal(r.status, 200, r.text);
    const entries = r.json<{ entries: AuditEntry[] }>().entries;
    const has = (action: string, actorType?: string): boolean => entries.some((e) => e.action === action && e.outcome === 'success' && (!actorType || e.actorType === actorType));
    assert.ok(has('machine.enroll-token.create', 'user'));
    assert.ok(has('machine.enroll', 'machine'));
    assert.ok(has('machine.credential.revoke', 'user'));
    assert.ok(has('machine.credential.reissue', 'user'));
    assert.ok(has('machine.credential.issue', 'machine'));
    assert.ok(has('snapshot.read', 'machine'), 'restore reads the snapshot: data access is recorded');
    assert.ok(has('audit.read', 'user'), 'reading the trail is itself recorded');
    const v = await server.admin(['audit', 'verify']);
    expectCode(v, 0, 'audit verify');
  });
});
