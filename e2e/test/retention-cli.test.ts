/**
 * Retention from the command line with real processes (docs/OPERATIONS.md "Retention and the
 * recycle bin"): a real server, a real agent making real backups, then `coffre-server retention
 * show|set|plan`, `job run retention`, `snapshot delete|bin`. Every snapshot here is a few
 * seconds old (the server stamps the commit time), so all of them are inside the protection
 * window; older snapshots are covered by packages/server/test/retention-server.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DEFAULT_RETENTION, retentionPolicyArgs } from '@coffre/core';
import { ROOT, TestAgent, TestServer, expectCode, tempDir, type RunResult } from '../src/kit.js';

const CUSTOMER = 'cabinet-retention';
const MACHINE = 'poste-accueil';

interface Reason {
  code: string;
  en: string;
  fr: string;
}

/** The server's error catalogue (its messages are what the CLI prints). */
async function serverReasons(): Promise<Record<string, Reason>> {
  const mod = (await import(pathToFileURL(join(ROOT, 'packages/server/dist/src/errors.js')).href)) as { REASONS: Record<string, Reason> };
  return mod.REASONS;
}

interface PlanLine {
  action: string;
  id8: string;
  time: string;
  machine: string;
  why: string;
}

function planLines(r: RunResult): PlanLine[] {
  return r.stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const m = /^(keep {2}|REMOVE) {2}([0-9a-f]{8}) {2}(\S+) {2}(\S+) {2}(.+)$/.exec(l);
      assert.ok(m, `unexpected plan line: ${JSON.stringify(l)}`);
      return { action: m[1]!.trim(), id8: m[2]!, time: m[3]!, machine: m[4]!, why: m[5]! };
    });
}

describe('retention from the command line, between real processes', () => {
  let server: TestServer;
  let agent: TestAgent;
  let src: string;
  let snaps: { id: string; time: string; machine: string }[] = [];

  before(async () => {
    server = await TestServer.start();
    await server.createCustomer(CUSTOMER);
    agent = new TestAgent(server);
    expectCode(await agent.enroll(CUSTOMER, MACHINE), 0, 'enroll');
    src = join(tempDir('retention-src'), 'data');
    mkdirSync(src, { recursive: true });
    for (let i = 0; i < 3; i++) {
      writeFileSync(join(src, `compte-rendu-${i}.txt`), `visite ${i}\n`.repeat(100 + i));
      expectCode(await agent.run(['backup', src]), 0, `backup ${i + 1}`);
    }
    snaps = JSON.parse((await agent.run(['snapshots', '--json'])).stdout) as typeof snaps;
    assert.equal(snaps.length, 3);
  });
  after(async () => {
    await server.stop();
    server.cleanup();
    agent.cleanup();
    rmSync(join(src, '..'), { recursive: true, force: true });
  });

  test('retention show --json: the default policy for the customer and its machine', async () => {
    const r = await server.admin(['retention', 'show', '--customer', CUSTOMER, '--json']);
    expectCode(r, 0, 'retention show');
    assert.deepEqual(JSON.parse(r.stdout), {
      customer: CUSTOMER,
      customerPolicy: null,
      machines: [{ name: MACHINE, policy: retentionPolicyArgs(DEFAULT_RETENTION), source: 'default' }],
    });
  });

  test('retention set --keep-last 1 is accepted; --keep-daily 0 and no option at all are usage errors (exit 2) that change nothing', async () => {
    expectCode(await server.admin(['retention', 'set', '--customer', CUSTOMER, '--keep-last', '1']), 0, 'retention set --keep-last 1');
    const show = async () => JSON.parse((await server.admin(['retention', 'show', '--customer', CUSTOMER, '--json'])).stdout) as unknown;
    const expected = { customer: CUSTOMER, customerPolicy: ['--keep-last', '1'], machines: [{ name: MACHINE, policy: ['--keep-last', '1'], source: 'customer' }] };
    assert.deepEqual(await show(), expected);

    const zero = await server.admin(['retention', 'set', '--customer', CUSTOMER, '--keep-daily', '0']);
    expectCode(zero, 2, 'retention set --keep-daily 0');
    assert.match(zero.stderr, /--keep-daily/);
    assert.match(zero.stderr, /whole number from 1/);
    assert.match(zero.stderr, /"0"/);
    assert.equal(zero.stdout, '');

    const none = await server.admin(['retention', 'set', '--customer', CUSTOMER]);
    expectCode(none, 2, 'retention set without any option');
    assert.match(none.stderr, /at least one --keep-/);
    assert.deepEqual(await show(), expected, 'refused commands change nothing');
  });

  test('retention plan: every snapshot is kept, protected (younger than 7 days), even those --keep-last 1 would remove', async () => {
    const r = await server.admin(['retention', 'plan', '--customer', CUSTOMER]);
    expectCode(r, 0, 'retention plan');
    const lines = planLines(r);
    assert.deepEqual(lines.map((l) => l.id8).sort(), snaps.map((s) => s.id.slice(0, 8)).sort(), 'one line per snapshot');
    const newest = [...snaps].sort((a, b) => b.time.localeCompare(a.time))[0]!;
    for (const l of lines) {
      assert.equal(l.action, 'keep', `${l.id8}: ${l.why}`);
      assert.equal(l.machine, MACHINE);
      assert.equal(l.time, snaps.find((s) => s.id.startsWith(l.id8))!.time);
      assert.equal(l.why, l.id8 === newest.id.slice(0, 8) ? 'last 1, protected (younger than 7 days)' : 'protected (younger than 7 days)');
    }
    assert.match(r.stderr, /3 kept, 0 would go to the recycle bin/);

    const json = await server.admin(['retention', 'plan', '--customer', CUSTOMER, '--json']);
    expectCode(json, 0, 'retention plan --json');
    const plan = JSON.parse(json.stdout) as { decisions: { id: string; action: string; reasons?: { rule: string }[] }[] };
    assert.deepEqual(plan.decisions.map((d) => d.id).sort(), snaps.map((s) => s.id).sort());
    assert.ok(plan.decisions.every((d) => d.action === 'keep' && d.reasons!.some((x) => x.rule === 'protected')));
  });

  test('job run retention --json bins nothing', async () => {
    const r = await server.admin(['job', 'run', 'retention', '--json']);
    expectCode(r, 0, 'job run retention');
    const res = JSON.parse(r.stdout) as { job: string; counts: Record<string, number>; items: unknown[] };
    assert.equal(res.job, 'retention');
    assert.equal(res.counts.binned, 0);
    assert.equal(res.counts.failed, 0);
    assert.equal(res.counts.kept, 3);
    assert.deepEqual(res.items, []);
  });

  test('snapshot delete refuses a protected snapshot; the bin stays empty and the agent still sees everything', async () => {
    const reasons = await serverReasons();
    const target = snaps[0]!.id;
    const r = await server.admin(['snapshot', 'delete', target.slice(0, 8), '--customer', CUSTOMER]);
    assert.notEqual(r.code, 0, `snapshot delete of a protected snapshot exited 0: ${r.stderr}`);
    const msg = reasons.snapshotProtected!;
    assert.ok(r.stderr.includes(msg.en) || r.stderr.includes(msg.fr), `stderr: ${r.stderr}`);

    const bin = await server.admin(['snapshot', 'bin', '--customer', CUSTOMER, '--json']);
    expectCode(bin, 0, 'snapshot bin');
    assert.deepEqual(JSON.parse(bin.stdout), []);
    const now = JSON.parse((await agent.run(['snapshots', '--json'])).stdout) as { id: string }[];
    assert.deepEqual(now.map((s) => s.id).sort(), snaps.map((s) => s.id).sort());
  });
});
