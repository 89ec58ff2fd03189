import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../src/kit.js';
import {
  Agent,
  ServerProcess,
  buildBinaryTree,
  completeSetup,
  dropDatabase,
  freshBackendEnv,
  ok,
  peopleClient,
  pgQuery,
  restoreDiff,
  serverCli,
  signInWithTotp,
  waitFor,
  writeSettings,
  type Env,
  type LogEvent,
  type SnapshotInfo,
} from '../src/scale-kit.js';
import { totpAt } from '../src/people.js';

/**
 * Two coffre-server instances on one PostgreSQL database and one S3 bucket prefix (always,
 * whatever COFFRE_TEST_BACKEND says), in the acceptance form: the backends named by the
 * environment, the second instance's data directory a `cp -a` of the first's, started with
 * another --listen. They serve the same customers, people and agents with the same
 * certificate, and the scheduled jobs run once per tick across both, moving to the
 * survivor when the leader is killed.
 */

interface TickRow {
  job: string;
  tick: string;
  holder: string;
  fence: number;
  finished_at: string | null;
  outcome: string | null;
}

describe('scale-out: two instances on one database and one bucket prefix', () => {
  let backends: { database: string; store: string; env: Env };
  let dir1: string;
  let dir2: string;
  let a: ServerProcess;
  let b: ServerProcess;
  const agents: Agent[] = [];
  const scratch: string[] = [];
  let agentA: Agent;

  before(async () => {
    backends = await freshBackendEnv();
    dir1 = tempDir('instance-a');
    // A cheap job every minute, and a short leader lease, for the scheduler test.
    writeSettings(dir1, { jobSchedules: { 'purge-temp': '* * * * *' }, jobLeaseSeconds: 6 });
    a = await ServerProcess.start(dir1, backends.env);
    const parent = tempDir('instance-b');
    scratch.push(dir1, parent);
    dir2 = join(parent, 'data');
    execFileSync('cp', ['-a', dir1, dir2]);
    b = await ServerProcess.start(dir2, backends.env);
  });
  after(async () => {
    await a?.kill('SIGTERM');
    await b?.kill('SIGTERM');
    for (const ag of agents) ag.cleanup();
    for (const d of scratch) rmSync(d, { recursive: true, force: true });
    await dropDatabase(backends.database);
  });

  test('the data directory holds only settings, the certificate and the secrets; the copy serves with the same certificate', async () => {
    for (const dir of [dir1, dir2]) {
      const names = readdirSync(dir).sort();
      assert.deepEqual(names, ['secrets', 'server.json', 'tls'], `${dir} holds ${names.join(', ')}`);
      assert.ok(existsSync(join(dir, 'secrets', 'server.key')));
      assert.ok(existsSync(join(dir, 'tls', 'cert.pem')));
    }
    assert.notEqual(a.url, b.url);
    assert.equal(b.fingerprint, a.fingerprint, 'both instances serve the same certificate');
    assert.match(a.output, /Initial administrator/);
    assert.doesNotMatch(b.output, /Initial administrator/, 'the second instance made no administrator of its own');
    const backendsOf = (s: ServerProcess): LogEvent => s.events().find((e) => e.msg === 'backends')!;
    assert.ok(backendsOf(a).installation, a.output);
    assert.equal(backendsOf(b).installation, backendsOf(a).installation, 'one installation');
    assert.equal(backendsOf(b).database, backendsOf(a).database);
    assert.equal(backendsOf(b).store, backendsOf(a).store);
    for (const s of [a, b]) {
      const health = await peopleClient(s.url, s.dataDir).request('GET', '/health');
      assert.equal(health.status, 200, health.text);
      assert.equal(health.json<{ ok: boolean }>().ok, true);
    }
  });

  test('a customer created with the command line on the first data directory is seen through the second', async () => {
    await ok(serverCli(dir1, ['customer', 'create', 'cabinet-partage'], backends.env), 'customer create on DIR1');
    const list = JSON.parse(await ok(serverCli(dir2, ['customer', 'list', '--json'], backends.env), 'customer list on DIR2')) as { name: string }[];
    assert.deepEqual(list.map((c) => c.name), ['cabinet-partage']);
  });

  test("people: the initial administrator's session from A works on B, and sign-in works on either", async () => {
    const [email, temporary] = readFileSync(join(dir1, 'secrets', 'initial-admin-password'), 'utf8').split('\n');
    const onA = peopleClient(a.url, dir1);
    const login = await onA.login(email!, temporary!);
    assert.equal(login.status, 200, login.text);
    assert.equal(login.json<{ stage: string }>().stage, 'setup');

    // The same cookie (and CSRF token) on the other instance: the same session.
    const onB = peopleClient(b.url, dir2);
    onB.cookie = onA.cookie;
    onB.csrf = onA.csrf;
    const session = await onB.request('GET', '/session');
    assert.equal(session.status, 200, session.text);
    assert.equal(session.json<{ stage: string; user: { email: string } }>().user.email, email);
    // Set up on B (new password, TOTP secret sealed with the server key), confirmed on A.
    const password = 'Horizon-Partage-Tambour-58';
    const oldCookie = onB.cookie;
    const { secret, step } = await completeSetup(onB, temporary!, password, onA);
    // The proof on A rotated the session cookie: the old value is dead on B too, the new one works there.
    assert.notEqual(onA.cookie, oldCookie);
    assert.equal((await onB.request('GET', '/session')).status, 401, 'the cookie from before the rotation is dead on B');
    onB.cookie = onA.cookie;
    onB.csrf = onA.csrf;
    assert.equal((await onB.request('GET', '/session')).json<{ stage: string }>().stage, 'full');
    const orgs = await onB.request('GET', '/orgs');
    assert.equal(orgs.status, 200, orgs.text);
    assert.ok(orgs.json<{ orgs: { name: string }[] }>().orgs.some((o) => o.name === 'cabinet-partage'), orgs.text);

    // A new sign-in on B; its TOTP code is then spent on A too (the replay guard is shared).
    const viaB = await signInWithTotp(peopleClient(b.url, dir2), email!, password, secret, step);
    assert.equal(viaB.stage, 'full');
    const replay = peopleClient(a.url, dir1);
    assert.equal((await replay.login(email!, password)).status, 200);
    const reused = await replay.request('POST', '/auth/second-factor/totp', { json: { code: totpAt(secret, viaB.step) } });
    assert.equal(reused.status, 401, `a TOTP code used on B is refused on A: ${reused.status} ${reused.text}`);
    const viaA = await signInWithTotp(peopleClient(a.url, dir1), email!, password, secret, viaB.step);
    assert.equal(viaA.stage, 'full');
    // The temporary password is dead on both.
    for (const [url, dir] of [[a.url, dir1], [b.url, dir2]] as const) {
      assert.equal((await peopleClient(url, dir).login(email!, temporary!)).status, 401);
    }
  });

  let src1: string;
  let snap1: string;

  test('an agent enrolled through A backs up through A; its configuration pointed at B (same pinned certificate) restores byte-identical', async () => {
    const token = (await ok(serverCli(dir1, ['enroll-token', 'create', '--customer', 'cabinet-partage'], backends.env), 'token on DIR1')).trim();
    agentA = new Agent();
    agents.push(agentA);
    await ok(agentA.enroll(a, token, 'poste-a'), 'enroll through A');
    src1 = join(tempDir('tree-a'), 'donnees');
    scratch.push(join(src1, '..'));
    buildBinaryTree(src1, { files: 40, big: 1, bigMiB: 6 });
    snap1 = (JSON.parse(await ok(agentA.run(['backup', src1, '--json']), 'backup through A')) as { snapshot: string }).snapshot;

    const toB = agentA.copyTo(b.url);
    agents.push(toB);
    assert.equal(toB.config().server, b.url);
    const list = await toB.json<SnapshotInfo[]>(['snapshots']);
    assert.deepEqual(list.map((s) => s.id), [snap1]);
    assert.deepEqual(await restoreDiff(toB, snap1, src1), [], 'restored through B');
  });

  test('a machine enrolled through B backs up through B; A lists its snapshot and restores it', async () => {
    const fp = (await ok(serverCli(dir2, ['fingerprint'], backends.env), 'fingerprint on DIR2')).trim();
    assert.equal(fp, a.fingerprint);
    const token = (await ok(serverCli(dir2, ['enroll-token', 'create', '--customer', 'cabinet-partage'], backends.env), 'token on DIR2')).trim();
    const agentB = new Agent();
    agents.push(agentB);
    await ok(agentB.enroll({ url: b.url, fingerprint: fp }, token, 'poste-b'), 'enroll through B');
    const src2 = join(tempDir('tree-b'), 'donnees');
    scratch.push(join(src2, '..'));
    buildBinaryTree(src2, { files: 25, big: 1, bigMiB: 3 });
    const snap2 = (JSON.parse(await ok(agentB.run(['backup', src2, '--json']), 'backup through B')) as { snapshot: string }).snapshot;

    const list = await agentA.json<SnapshotInfo[]>(['snapshots']);
    assert.deepEqual(list.map((s) => s.id).sort(), [snap1, snap2].sort(), 'A lists the snapshot made through B');
    assert.equal(list.find((s) => s.id === snap2)!.machine, 'poste-b');
    assert.deepEqual(await restoreDiff(agentA, snap2, src2), [], 'restored through A');
    const machines = JSON.parse(await ok(serverCli(dir1, ['machine', 'list', '--customer', 'cabinet-partage', '--json'], backends.env), 'machine list on DIR1')) as { name: string }[];
    assert.deepEqual(machines.map((m) => m.name).sort(), ['poste-a', 'poste-b']);
  });

  test('a scheduled job runs once per tick across both instances, and on the survivor once the leader is killed', async (t) => {
    const ticks = (): Promise<TickRow[]> => pgQuery<TickRow>(backends.database, "select job, tick, holder, fence, finished_at, outcome from job_ticks where job = 'purge-temp' order by tick");
    const doneEvents = (s: ServerProcess, tick: string): LogEvent[] => s.events().filter((e) => e.msg === 'job done' && e.job === 'purge-temp' && e.tick === tick);
    const holderOf = (s: ServerProcess): string[] => s.events().filter((e) => e.msg === 'job scheduler lease acquired').map((e) => String(e.holder));

    // At least one finished tick (the tests above took a while; wait for a minute boundary otherwise).
    const before = await waitFor(async () => {
      const rows = (await ticks()).filter((r) => r.finished_at !== null);
      return rows.length > 0 ? rows : undefined;
    }, 90_000, 'a finished purge-temp tick');
    for (const row of before) {
      const runs = [...doneEvents(a, row.tick), ...doneEvents(b, row.tick)];
      assert.equal(runs.length, 1, `tick ${row.tick} ran once across the instances: ${JSON.stringify(runs)}`);
      const runner = doneEvents(a, row.tick).length === 1 ? a : b;
      assert.ok(holderOf(runner).includes(row.holder), `tick ${row.tick} was claimed by the instance that ran it`);
      assert.equal(row.outcome, 'ok');
    }

    const [lease] = await pgQuery<{ holder: string; fence: number }>(backends.database, "select holder, fence from job_leases where name = 'scheduler'");
    assert.ok(lease, 'the scheduler lease exists');
    const leader = holderOf(a).includes(lease.holder) ? a : holderOf(b).includes(lease.holder) ? b : null;
    assert.ok(leader, `the lease holder ${lease.holder} is one of the two instances`);
    const survivor = leader === a ? b : a;
    const lastBefore = before.at(-1)!.tick;
    t.diagnostic(`leader ${leader === a ? 'A' : 'B'} (fence ${lease.fence}); ${before.length} tick(s) before the kill`);

    const killedAt = Date.now();
    const killed = await leader.kill('SIGKILL');
    assert.equal(killed.signal, 'SIGKILL');

    // The survivor takes the lease once it expires, one fence higher.
    const taken = await survivor.waitForEvent((e) => e.msg === 'job scheduler lease acquired' && e.previousHolder === lease.holder, 60_000, 'the lease taken over');
    assert.ok(Number(taken.fence) > lease.fence, `the fence went up: ${String(taken.fence)} after ${lease.fence}`);
    assert.ok(Date.now() - killedAt < 60_000);

    // The next tick runs on the survivor, under the new fence, once.
    const next = await waitFor(async () => {
      return (await ticks()).find((r) => r.tick > lastBefore && r.holder !== lease.holder && r.finished_at !== null);
    }, 100_000, 'a purge-temp tick after the kill');
    assert.equal(next.holder, String(taken.holder), 'run by the survivor');
    assert.equal(Number(next.fence), Number(taken.fence));
    assert.equal(next.outcome, 'ok');
    assert.equal(doneEvents(survivor, next.tick).length, 1);
    assert.equal(doneEvents(leader, next.tick).length, 0);
    const killedIso = new Date(killedAt).toISOString();
    assert.deepEqual((await ticks()).filter((r) => r.tick > killedIso && r.holder === lease.holder), [], 'the dead leader claimed no later tick');
    assert.ok(next.tick > killedIso || (await ticks()).every((r) => r.tick <= next.tick || r.holder !== lease.holder), 'no tick of the leader follows it');
    const [after] = await pgQuery<{ holder: string; fence: number }>(backends.database, "select holder, fence from job_leases where name = 'scheduler'");
    assert.deepEqual({ holder: after!.holder, fence: Number(after!.fence) }, { holder: String(taken.holder), fence: Number(taken.fence) });
    const health = await peopleClient(survivor.url, survivor.dataDir).request('GET', '/health');
    assert.equal(health.status, 200);
  });
});
