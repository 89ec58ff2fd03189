import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, openSync, readSync, rmSync, statSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { basename, join } from 'node:path';
import { S3_ENDPOINT } from '../src/backends.js';
import { COFFRE_SERVER, run, tempDir, type RunResult } from '../src/kit.js';
import {
  Agent,
  NO_BACKEND_ENV,
  ServerProcess,
  WatchedProcess,
  backendEnv,
  buildBinaryTree,
  completeSetup,
  dropDatabase,
  filesUnder,
  freshBackendEnv,
  listStoreKeys,
  ok,
  peopleClient,
  pgQuery,
  pgTables,
  readSettings,
  restoreDiff,
  serverCli,
  signInWithTotp,
  startUntilExit,
  type Env,
  type SnapshotInfo,
} from '../src/scale-kit.js';
import { TcpProxy } from '../src/tcp-proxy.js';

/**
 * `coffre-server migrate-storage --data-dir DIR --to-database URL --to-store s3://BUCKET/PREFIX`
 * (S3 endpoint and credentials from the environment): an embedded installation (SQLite +
 * DIR/objects) with customers, agents' backups, people and an audit trail moves to
 * PostgreSQL + S3 (always those, whatever COFFRE_TEST_BACKEND says); the server started on
 * them serves the same data and the agents keep working unchanged. Refused while a server
 * uses DIR, onto another installation's prefix, and on a damaged pack; resumable.
 */

interface MigrateReport {
  installationId: string;
  objects: { copied: number; skipped: number; bytes: number; packsVerified: number; refsVerified: number };
  rows: Record<string, number>;
  alreadyDone: boolean;
}

interface CustomerJson {
  id: string;
  name: string;
  machines: number;
  createdAt: string;
}

const MARKERS = ['coffre-installation.json', 'coffre-migration-in-progress.json'];
/** Markers and the audit heads: objects the migration writes itself, not copies. */
const isMarker = (k: string): boolean => MARKERS.includes(k) || k.startsWith('audit/');

/** The acceptance form: `coffre-server migrate-storage --data-dir DIR --to-database URL --to-store s3://BUCKET/PREFIX [--json]`. */
function migrateArgs(dir: string, to: { database: string; store: string }, json = false): string[] {
  return ['migrate-storage', '--data-dir', dir, '--to-database', to.database, '--to-store', to.store, ...(json ? ['--json'] : [])];
}

function migrate(dir: string, to: { database: string; store: string }, env: Env, json = false): Promise<RunResult> {
  return run(COFFRE_SERVER, migrateArgs(dir, to, json), { env, timeoutMs: 600_000 });
}

function copyDir(dir: string, name: string, scratch: string[]): string {
  const parent = tempDir(name);
  scratch.push(parent);
  const copy = join(parent, 'data');
  execFileSync('cp', ['-a', dir, copy]);
  return copy;
}

describe('migrate-storage: an embedded installation moves to PostgreSQL + S3', () => {
  let dir: string;
  let embedded: ServerProcess;
  let agent1: Agent;
  let agent2: Agent;
  let src1: string;
  let src2: string;
  const person = { email: 'dr.martin@cabinet-migration.fr', password: 'Stethoscope-Horizon-Violon-64', secret: '', step: 0 };
  let customersBefore: CustomerJson[];
  let auditCountBefore: number;
  let snaps1: string[];
  const scratch: string[] = [];
  const agents: Agent[] = [];
  const databases: string[] = [];
  const servers: ServerProcess[] = [];

  /** A fresh target, dropped at the end. */
  async function target(): Promise<{ database: string; store: string; env: Env }> {
    const t = await freshBackendEnv();
    databases.push(t.database);
    return t;
  }

  before(async () => {
    const parent = tempDir('embedded');
    scratch.push(parent);
    dir = join(parent, 'data');
    embedded = await ServerProcess.start(dir, NO_BACKEND_ENV);
    servers.push(embedded);
    assert.ok(existsSync(join(dir, 'coffre.db')), 'an embedded installation');
    await ok(serverCli(dir, ['customer', 'create', 'cabinet-migration'], NO_BACKEND_ENV), 'customer create');
    await ok(serverCli(dir, ['customer', 'create', 'cabinet-voisin'], NO_BACKEND_ENV), 'customer create');

    agent1 = new Agent();
    agent2 = new Agent();
    agents.push(agent1, agent2);
    for (const [agent, machine] of [[agent1, 'poste-1'], [agent2, 'poste-2']] as const) {
      const token = (await ok(serverCli(dir, ['enroll-token', 'create', '--customer', 'cabinet-migration'], NO_BACKEND_ENV), 'token')).trim();
      await ok(agent.enroll(embedded, token, machine), `enroll ${machine}`);
    }
    src1 = join(tempDir('src1'), 'donnees');
    src2 = join(tempDir('src2'), 'donnees');
    scratch.push(join(src1, '..'), join(src2, '..'));
    buildBinaryTree(src1, { files: 30, big: 1, bigMiB: 6 });
    buildBinaryTree(src2, { files: 60, big: 3, bigMiB: 9 });
    await ok(agent1.run(['backup', src1, '--json']), 'backup 1');
    await ok(agent2.run(['backup', src2, '--json']), 'backup 2');
    appendFileSync(join(src1, 'vide.txt'), 'plus vide\n');
    writeFileSync(join(src1, 'nouveau.bin'), Buffer.alloc(70_000, 7));
    await ok(agent1.run(['backup', src1, '--json']), 'backup 1 again');

    // A person created with the command line, set up through the embedded server.
    const temporary = (await ok(serverCli(dir, ['user', 'create', '--email', person.email, '--name', 'Dr Claire Martin', '--role', 'customer-admin', '--org', 'cabinet-migration'], NO_BACKEND_ENV), 'user create')).trim();
    const c = peopleClient(embedded.url, dir);
    assert.equal((await c.login(person.email, temporary)).status, 200);
    Object.assign(person, await completeSetup(c, temporary, person.password));

    customersBefore = JSON.parse(await ok(serverCli(dir, ['customer', 'list', '--json'], NO_BACKEND_ENV), 'customer list')) as CustomerJson[];
    const verdict = JSON.parse(await ok(serverCli(dir, ['audit', 'verify', '--json'], NO_BACKEND_ENV), 'audit verify')) as { ok: boolean; count: number };
    assert.equal(verdict.ok, true);
    auditCountBefore = verdict.count;
    assert.ok(auditCountBefore >= 8, `audit entries: ${auditCountBefore}`);
    snaps1 = (await agent1.json<SnapshotInfo[]>(['snapshots'])).map((s) => s.id).sort();
    assert.equal(snaps1.length, 3);
  });

  after(async () => {
    for (const s of servers) await s.kill('SIGTERM');
    for (const a of agents) a.cleanup();
    for (const d of scratch) rmSync(d, { recursive: true, force: true });
    for (const d of databases) await dropDatabase(d);
  });

  test('refused while the server uses the data directory: exit 5, a clear message, nothing copied', async () => {
    assert.ok(embedded.running);
    const to = await target();
    const r = await migrate(dir, to, to.env);
    assert.equal(r.code, 5, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
    assert.match(r.stderr, /in use by a running coffre-server/);
    assert.match(r.stderr, new RegExp(`pid ${embedded.pid}`));
    assert.match(r.stderr, /stop it first/);
    assert.deepEqual(await pgTables(to.database), [], 'nothing written to the database');
    assert.deepEqual(await listStoreKeys(to.store), [], 'nothing written to the store');
    const stopped = await embedded.kill('SIGTERM');
    assert.equal(stopped.code, 0, embedded.output);
  });

  test('a damaged pack in the source fails the migration naming the pack; the target is refused until a migration completes', async () => {
    const copy = copyDir(dir, 'damaged', scratch);
    const packs = filesUnder(join(copy, 'objects')).filter((f) => f.startsWith('packs/'));
    assert.ok(packs.length >= 3, packs.join(', '));
    const victim = packs.map((f) => ({ f, size: statSync(join(copy, 'objects', f)).size })).sort((x, y) => y.size - x.size)[0]!;
    const file = join(copy, 'objects', victim.f);
    const fd = openSync(file, 'r+');
    const at = Math.floor(victim.size / 2);
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, at);
    writeSync(fd, Buffer.from([byte[0]! ^ 0x5a]), 0, 1, at);
    closeSync(fd);

    const to = await target();
    const r = await migrate(copy, to, to.env);
    assert.notEqual(r.code, 0, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`pack .*${basename(victim.f)}.* damaged`), r.stderr);
    assert.ok(!(await listStoreKeys(to.store)).includes(victim.f), 'the damaged pack was not copied');
    assert.equal(readSettings(copy).database ?? null, null, 'server.json still names the embedded database');
    // The unfinished target is refused by a server.
    const start = await startUntilExit(copy, to.env);
    assert.equal(start.code, 3, `stdout: ${start.stdout}\nstderr: ${start.stderr}`);
    assert.match(start.stderr, /migrate-storage .* has not completed/);
  });

  test("a target bucket prefix holding another installation's data is refused (exit 3), nothing written to the database", async () => {
    const other = await target();
    const otherDir = join(tempDir('other-installation'), 'data');
    scratch.push(join(otherDir, '..'));
    const o = await ServerProcess.start(otherDir, other.env);
    await o.kill('SIGTERM');
    const keysBefore = await listStoreKeys(other.store);
    assert.ok(keysBefore.includes('coffre-installation.json'));

    const to = await target();
    const r = await migrate(dir, { database: to.database, store: other.store }, backendEnv(to.database, other.store));
    assert.equal(r.code, 3, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
    assert.match(r.stderr, /another installation/);
    assert.ok(r.stderr.includes(other.store), r.stderr);
    assert.deepEqual(await pgTables(to.database), [], 'nothing written to the database');
    assert.deepEqual(await listStoreKeys(other.store), keysBefore, "the other installation's store is unchanged");
    assert.equal(readSettings(dir).database ?? null, null);
  });

  test('interrupted (kill -9) then run again: completes, copying only what was missing, and the result restores byte-identical', async (t) => {
    const copy = copyDir(dir, 'resume', scratch);
    const sourceKeys = filesUnder(join(copy, 'objects')).filter((f) => !f.split('/').some((p) => p.startsWith('.')) && !isMarker(f));
    const to = await target();
    // The first run goes through a slow link to S3, so that the kill lands among the objects.
    const s3 = new URL(S3_ENDPOINT);
    const slow = await TcpProxy.start({ host: s3.hostname, port: Number(s3.port) }, { delayMs: 15 });
    try {
      const first = WatchedProcess.spawn(COFFRE_SERVER, migrateArgs(copy, to), { ...to.env, COFFRE_S3_ENDPOINT: `http://${slow.address}` });
      const line = await first.waitForLine(/^\d+ % objects \d+\/\d+/, 180_000);
      const killed = await first.kill('SIGKILL');
      assert.equal(killed.signal, 'SIGKILL', `the first run was killed, not finished: ${first.output}`);
      t.diagnostic(`killed after: ${line}`);
    } finally {
      await slow.close();
    }
    const partial = (await listStoreKeys(to.store)).filter((k) => !isMarker(k));
    assert.ok(partial.length < sourceKeys.length, `the first run was interrupted among the objects (${partial.length} of ${sourceKeys.length})`);
    const refused = await startUntilExit(copy, to.env);
    assert.equal(refused.code, 3, 'a half-copied target is refused');
    assert.match(refused.stderr, /has not completed/);

    const second = await migrate(copy, to, to.env, true);
    assert.equal(second.code, 0, `stdout: ${second.stdout}\nstderr: ${second.stderr}`);
    const report = JSON.parse(second.stdout) as MigrateReport;
    t.diagnostic(`second run: ${JSON.stringify(report.objects)}`);
    assert.equal(report.alreadyDone, false);
    assert.ok(report.objects.skipped > 0, 'objects already copied were skipped');
    assert.ok(report.objects.skipped <= partial.length, `only objects the first run finished are skipped (${report.objects.skipped} ≤ ${partial.length})`);
    assert.equal(report.objects.copied + report.objects.skipped, sourceKeys.length, 'every object of the source is accounted for');
    const copied = (await listStoreKeys(to.store)).filter((k) => !isMarker(k));
    assert.deepEqual(copied, sourceKeys, 'the target holds exactly the objects of the source');
    assert.ok(!(await listStoreKeys(to.store)).includes('coffre-migration-in-progress.json'));

    const server = await ServerProcess.start(copy, to.env);
    servers.push(server);
    const verdict = JSON.parse(await ok(server.cli(['audit', 'verify', '--json']), 'audit verify')) as { ok: boolean; count: number };
    assert.equal(verdict.ok, true);
    assert.ok(verdict.count >= auditCountBefore);
    const viaCopy = agent1.copyTo(server.url);
    agents.push(viaCopy);
    const list = await viaCopy.json<SnapshotInfo[]>(['snapshots']);
    assert.deepEqual(list.map((s) => s.id).sort(), snaps1, 'the same snapshots');
    const latest2 = list.filter((s) => s.machine === 'poste-2').at(-1)!;
    assert.deepEqual(await restoreDiff(viaCopy, latest2.id, src2), [], 'restored byte-identical from the resumed copy');
    await server.kill('SIGTERM');
  });

  test('migrates: a report, exit 0; the server on the new backends (with and without the environment) serves the same customers, people, audit trail and agents', async (t) => {
    const to = await target();
    const t0 = Date.now();
    const r = await migrate(dir, to, to.env);
    t.diagnostic(`migrate-storage took ${Date.now() - t0} ms`);
    assert.equal(r.code, 0, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
    assert.match(r.stdout, /^Installation [0-9a-f-]{36} copied to postgres:\/\/\S+ and s3:\/\//m);
    assert.match(r.stdout, /^Objects: \d+ copied \([\d.]+ MB; \d+ packs and \d+ reference lists verified\), 0 already there\.$/m);
    assert.match(r.stdout, /^Rows: .*customers 2/m);
    assert.match(r.stdout, /server\.json now names them/);
    assert.ok(!r.stdout.includes(`:${new URL(to.database).password}@`) && !r.stderr.includes(`:${new URL(to.database).password}@`), 'the report never shows the database password');
    const settings = readSettings(dir);
    assert.equal(settings.database, to.database);
    assert.equal(settings.store, to.store);
    assert.ok(existsSync(join(dir, 'coffre.db')), 'the embedded copy is left as it was');

    // Same address as before: the agents' configurations are unchanged.
    let server = await ServerProcess.start(dir, to.env, { listen: embedded.listen });
    servers.push(server);
    assert.equal(server.fingerprint, embedded.fingerprint);
    const backendsLog = server.events().find((e) => e.msg === 'backends')!;
    assert.match(String(backendsLog.database), /^postgres:/);
    assert.match(String(backendsLog.store), /^s3:/);

    const customers = JSON.parse(await ok(server.cli(['customer', 'list', '--json']), 'customer list')) as CustomerJson[];
    assert.deepEqual(customers, customersBefore);
    const signedIn = await signInWithTotp(peopleClient(server.url, dir), person.email, person.password, person.secret, person.step);
    assert.equal(signedIn.stage, 'full', 'the person signs in with password and TOTP');
    person.step = signedIn.step;
    const verdict = JSON.parse(await ok(server.cli(['audit', 'verify', '--json']), 'audit verify')) as { ok: boolean; count: number };
    assert.equal(verdict.ok, true, JSON.stringify(verdict));
    assert.ok(verdict.count > auditCountBefore, `${verdict.count} entries after, ${auditCountBefore} before`);

    assert.deepEqual((await agent1.json<SnapshotInfo[]>(['snapshots'])).map((s) => s.id).sort(), snaps1);
    assert.deepEqual(await restoreDiff(agent1, 'latest', src1), [], 'agent 1 restores byte-identical');
    const mine2 = (await agent2.json<SnapshotInfo[]>(['snapshots', '--machine', 'poste-2']));
    assert.equal(mine2.length, 1);
    assert.deepEqual(await restoreDiff(agent2, mine2[0]!.id, src2), [], 'agent 2 restores byte-identical');
    writeFileSync(join(src2, 'apres-migration.txt'), 'sauvegardé sur PostgreSQL + S3\n');
    const after = JSON.parse(await ok(agent2.run(['backup', src2, '--json']), 'a new backup')) as { snapshot: string };
    assert.deepEqual(await restoreDiff(agent2, after.snapshot, src2), [], 'the new backup restores byte-identical');
    await server.kill('SIGTERM');

    // Without the environment: server.json names the backends (credentials still from AWS_*).
    server = await ServerProcess.start(dir, NO_BACKEND_ENV, { listen: embedded.listen });
    servers.push(server);
    const again = server.events().find((e) => e.msg === 'backends')!;
    assert.equal(again.installation, backendsLog.installation);
    assert.equal(again.database, backendsLog.database);
    assert.equal(again.store, backendsLog.store);
    assert.deepEqual(JSON.parse(await ok(serverCli(dir, ['customer', 'list', '--json'], NO_BACKEND_ENV), 'customer list without env')) as CustomerJson[], customersBefore);
    const all = (await agent1.json<SnapshotInfo[]>(['snapshots'])).map((s) => s.id).sort();
    assert.deepEqual(all, [...snaps1, after.snapshot].sort());
    assert.equal((await pgQuery<{ n: number }>(to.database, 'select count(*)::int as n from snapshots'))[0]!.n, snaps1.length + 1);
    await server.kill('SIGTERM');
  });
});
