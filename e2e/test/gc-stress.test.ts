import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { COFFRE_SERVER, ROOT, TestAgent, TestServer, expectCode, run, tempDir } from '../src/kit.js';

/**
 * GC under load, with real processes: one server, three machines of one customer backing up
 * changing directories in a loop (shared and resurrected content included, so dedup across
 * machines and the agents' chunk caches meet GC), while the test forgets older snapshots
 * (as retention would) and runs `coffre-server job run gc` again and again with no grace.
 * Then every remaining snapshot is restored and compared with what was backed up, and
 * `verify --read-data` checks every pack: no chunk any snapshot needs was ever lost.
 */

/** The GC test/admin utility from the server package (built next to this one; e2e does not depend on the server package). */
interface GcTools {
  forgetSnapshot(customerId: string, snapshotId: string): Promise<boolean>;
  close(): Promise<void>;
}
async function openGcTools(dataDir: string): Promise<GcTools> {
  const mod = (await import(pathToFileURL(join(ROOT, 'packages/server/dist/src/gc/index.js')).href)) as { openGcTools(dir: string): Promise<GcTools> };
  return mod.openGcTools(dataDir);
}

const LOOP_MS = Number(process.env.COFFRE_GC_STRESS_SECONDS ?? 60) * 1000;
const GC_ENV = { COFFRE_GC_GRACE_SECONDS: '0', COFFRE_GC_REPACK_BELOW: '0.5', COFFRE_GC_REPACK_DELETE_DELAY_SECONDS: '2' };
const CUSTOMER = 'cabinet-gc';

type Tree = Map<string, string>; // relative path → SHA-256 of the content

function describeContent(root: string): Tree {
  const out: Tree = new Map();
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.set(relative(root, p), createHash('sha256').update(readFileSync(p)).digest('hex'));
    }
  };
  walk(root);
  return out;
}

function diff(expected: Tree, got: Tree): string[] {
  const out: string[] = [];
  for (const [p, h] of expected) if (got.get(p) !== h) out.push(got.has(p) ? `${p}: different content` : `${p}: missing`);
  for (const p of got.keys()) if (!expected.has(p)) out.push(`${p}: unexpected`);
  return out;
}

const size = (): number => (randomInt(10) === 0 ? randomInt(1 << 20, 5 << 19) : randomInt(2_000, 200_000));

interface Backup {
  readonly snapshot: string;
  readonly machine: string;
  readonly dir: string;
  readonly tree: Tree;
}

describe('GC stress: concurrent backups, forgotten snapshots and repeated GC runs lose nothing', { timeout: 280_000 }, () => {
  let server: TestServer;
  let tools: GcTools;
  let customerId: string;
  const agents: { agent: TestAgent; machine: string; dir: string }[] = [];
  const scratch: string[] = [];
  /** Content several machines (and later backups) share: dedup across machines. */
  const pool = Array.from({ length: 8 }, () => randomBytes(size()));

  before(async () => {
    server = await TestServer.start();
    await server.createCustomer(CUSTOMER);
    const list = await server.admin(['customer', 'list', '--json']);
    customerId = (JSON.parse(list.stdout) as { id: string; name: string }[]).find((c) => c.name === CUSTOMER)!.id;
    for (const machine of ['accueil', 'secretariat', 'cabinet-1']) {
      const agent = new TestAgent(server);
      expectCode(await agent.enroll(CUSTOMER, machine), 0, `enroll ${machine}`);
      const dir = join(tempDir(`gc-${machine}`), 'dossiers');
      scratch.push(join(dir, '..'));
      mkdirSync(join(dir, 'sub'), { recursive: true });
      for (let i = 0; i < 15; i++) writeFileSync(join(dir, i % 3 === 0 ? 'sub' : '', `f-${i}.bin`), randomBytes(size()));
      writeFileSync(join(dir, 'commun.bin'), pool[0]!);
      agents.push({ agent, machine, dir });
    }
    tools = await openGcTools(server.dataDir);
  });
  after(async () => {
    await tools?.close();
    await server.stop();
    server.cleanup();
    for (const a of agents) a.agent.cleanup();
    for (const d of scratch) rmSync(d, { recursive: true, force: true });
  });

  test('every remaining snapshot restores exactly what was backed up, and GC reclaimed space', async () => {
    const backups: Backup[] = [];
    const forgotten = new Set<string>();
    const failures: string[] = [];
    const totals = { runs: 0, chunksDeleted: 0, bytesReclaimed: 0, packsDeleted: 0, packsRepacked: 0, objectsDeleted: 0 };
    const deadline = Date.now() + LOOP_MS;
    let retried = 0;

    /** One machine: change its directory, back it up, remember what the snapshot holds. */
    const machineLoop = async (a: (typeof agents)[number]): Promise<void> => {
      // Contents removed earlier, brought back once GC may have collected them: the agent's
      // chunk cache still lists them, so its commit may be refused and redone.
      const past: { data: Buffer; at: number }[] = [];
      let seq = 100;
      while (Date.now() < deadline) {
        const files = describeContent(a.dir);
        const names = [...files.keys()].filter((f) => f !== 'commun.bin');
        for (let i = 0, n = 1 + randomInt(3); i < n; i++) writeFileSync(join(a.dir, randomInt(2) ? 'sub' : '', `f-${seq++}.bin`), randomBytes(size()));
        if (names.length > 0) {
          const victim = join(a.dir, names[randomInt(names.length)]!);
          const old = readFileSync(victim);
          if (old.length < 300_000) past.push({ data: old, at: Date.now() });
          writeFileSync(victim, randomBytes(size()));
        }
        if (names.length > 12) {
          const gone = join(a.dir, names[randomInt(names.length)]!);
          const old = readFileSync(gone);
          if (old.length < 300_000) past.push({ data: old, at: Date.now() });
          rmSync(gone, { force: true });
        }
        if (randomInt(3) === 0) writeFileSync(join(a.dir, `pool-${seq++}.bin`), pool[randomInt(pool.length)]!);
        const old = past.filter((p) => p.at < Date.now() - 35_000);
        if (old.length > 0 && randomInt(3) === 0) writeFileSync(join(a.dir, `revenu-${seq++}.bin`), old[randomInt(old.length)]!.data);
        if (randomInt(5) === 0) copyFileSync(join(a.dir, 'commun.bin'), join(a.dir, 'sub', `commun-${seq++}.bin`));

        const tree = describeContent(a.dir);
        const r = await a.agent.run(['backup', a.dir, '--json', '--quiet']);
        if (r.code !== 0) {
          failures.push(`${a.machine}: backup exited ${r.code}: ${r.stderr.slice(0, 2000)}`);
          continue;
        }
        const out = JSON.parse(r.stdout) as { snapshot: string; incomplete: boolean; stats: { files: number; unchangedFiles: number } };
        if (out.incomplete) failures.push(`${a.machine}: backup ${out.snapshot} incomplete: ${r.stdout.slice(0, 1000)}`);
        // No unchanged file after the first backup: the agent's commit was refused (a chunk its
        // cache listed had been collected) and it backed up again from scratch.
        if (backups.some((b) => b.machine === a.machine) && out.stats.unchangedFiles === 0) retried++;
        backups.push({ snapshot: out.snapshot, machine: a.machine, dir: a.dir, tree });
      }
    };

    /**
     * Retention stand-in and GC: once a snapshot is no longer among its machine's latest two,
     * it is forgotten (60 %) or kept for good (40 %, decided once); then collect.
     */
    const decided = new Set<string>();
    const gcLoop = async (): Promise<void> => {
      while (Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 1500));
        for (const a of agents) {
          const mine = backups.filter((b) => b.machine === a.machine);
          for (const b of mine.slice(0, -2)) {
            if (decided.has(b.snapshot)) continue;
            decided.add(b.snapshot);
            if (randomInt(10) < 6) {
              assert.equal(await tools.forgetSnapshot(customerId, b.snapshot), true);
              forgotten.add(b.snapshot);
            }
          }
        }
        await gcOnce();
      }
    };

    const gcOnce = async (): Promise<void> => {
      const r = await run(COFFRE_SERVER, ['job', 'run', 'gc', '--data-dir', server.dataDir, '--json'], { env: GC_ENV });
      if (r.code !== 0) {
        failures.push(`gc exited ${r.code}: ${r.stdout.slice(0, 2000)} ${r.stderr.slice(0, 2000)}`);
        return;
      }
      const res = JSON.parse(r.stdout) as { counts: Record<string, number> };
      totals.runs++;
      for (const k of ['chunksDeleted', 'bytesReclaimed', 'packsDeleted', 'packsRepacked', 'objectsDeleted'] as const) totals[k] += res.counts[k] ?? 0;
    };

    await Promise.all([...agents.map(machineLoop), gcLoop()]);
    // Once more now that everything is quiet, and again once the repacked objects' delay has passed.
    await gcOnce();
    await new Promise((r) => setTimeout(r, 2500));
    await gcOnce();
    assert.deepEqual(failures, []);

    // The server lists exactly the snapshots backed up and not forgotten.
    const listed = (await agents[0]!.agent.json<{ id: string }[]>(['snapshots'])).map((s) => s.id).sort();
    const remaining = backups.filter((b) => !forgotten.has(b.snapshot));
    assert.deepEqual(listed, remaining.map((b) => b.snapshot).sort());
    assert.ok(backups.length >= 9, `only ${backups.length} backups ran`);
    assert.ok(forgotten.size > 0);

    // Every remaining snapshot restores to exactly what was backed up (three at a time).
    const byMachine = new Map(agents.map((a) => [a.machine, a.agent]));
    const queue = [...remaining];
    const restoreNext = async (): Promise<void> => {
      for (let b = queue.shift(); b; b = queue.shift()) {
        const target = tempDir('gc-restore');
        try {
          const r = await byMachine.get(b.machine)!.run(['restore', b.snapshot, '--target', target, '--quiet']);
          expectCode(r, 0, `restore ${b.snapshot} of ${b.machine}`);
          assert.deepEqual(diff(b.tree, describeContent(join(target, b.dir))), [], `snapshot ${b.snapshot} of ${b.machine}`);
        } finally {
          rmSync(target, { recursive: true, force: true });
        }
      }
    };
    await Promise.all([restoreNext(), restoreNext(), restoreNext()]);
    expectCode(await agents[1]!.agent.run(['verify', '--read-data', '--quiet']), 0, 'verify --read-data');

    // And GC did collect, while all this went on.
    process.stderr.write(`gc stress: ${backups.length} backups (${retried} redone after a refused commit), ${forgotten.size} forgotten, ${remaining.length} restored; gc ${JSON.stringify(totals)}\n`);
    assert.ok(totals.runs >= 5, `gc ran ${totals.runs} times`);
    assert.ok(totals.chunksDeleted > 0, 'GC deleted chunks');
    assert.ok(totals.bytesReclaimed > 0, 'GC reclaimed bytes');
    assert.ok(totals.packsDeleted + totals.packsRepacked > 0, 'GC deleted or repacked packs');
    assert.ok(totals.objectsDeleted > 0, 'GC deleted pack objects');
  });
});
