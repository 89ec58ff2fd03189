import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AgentProcess, TestAgent, TestServer, expectCode, tempDir } from '../src/kit.js';
import { signUp, type PeopleClient } from '../src/people.js';

interface MachineLine {
  name: string;
  status: string;
  jobs: { name: string; schedule: string; timezone: string }[];
  lastSuccessAt: string | null;
}
interface Run {
  job: string | null;
  trigger: string | null;
  result: string;
  snapshotId: string | null;
  errorCode: string | null;
  files: number;
}
type Event = Record<string, unknown>;

/**
 * `coffre daemon` with real processes (issue 5, points 1 and 6, agent side). One daemon runs
 * three jobs scheduled every minute — a good one with pre and post commands, one whose post
 * command fails, one whose pre command fails — and the restore test; then the server goes
 * away before the next minute and comes back; then the daemon is restarted to check the
 * catch-up and restart rules. Waits are for log events, at most about two scheduled minutes.
 */
describe('coffre daemon', { timeout: 300_000 }, () => {
  const customer = 'Cabinet Démon';
  let server: TestServer;
  let agent: TestAgent;
  let viewer: PeopleClient;
  let orgId: string;
  let daemon: AgentProcess;
  const data = tempDir('daemon-data');
  const other = tempDir('daemon-other');
  const work = tempDir('daemon-work');
  const hooksLog = join(work, 'hooks.log');
  /** Every event of every daemon run in this file, in order. */
  const allEvents: Event[] = [];
  const daemonEnv = { COFFRE_HEARTBEAT_SECONDS: '1', COFFRE_RETRY_BASE_SECONDS: '1', COFFRE_RETRY_MAX_SECONDS: '4', TZ: 'UTC' };

  const machines = async (): Promise<MachineLine[]> => {
    const r = await server.admin(['machine', 'list', '--customer', customer, '--json']);
    expectCode(r, 0, 'machine list');
    return JSON.parse(r.stdout) as MachineLine[];
  };
  const runs = async (): Promise<Run[]> => {
    const r = await viewer.request('GET', `/orgs/${orgId}/runs`);
    assert.equal(r.status, 200, r.text);
    return r.json<{ runs: Run[] }>().runs;
  };
  const machineView = async () => {
    const r = await viewer.request('GET', `/orgs/${orgId}/machines`);
    assert.equal(r.status, 200, r.text);
    return r.json<{ machines: { lastHeartbeatAt: string | null; lastRestoreTest: { snapshotId: string; result: string } | null }[] }>().machines[0]!;
  };
  const snapshots = async () => agent.json<{ id: string; paths: string[] }[]>(['snapshots']);
  const hookLines = () => (existsSync(hooksLog) ? readFileSync(hooksLog, 'utf8').trim().split('\n') : []);
  const stopDaemon = async (signal: NodeJS.Signals = 'SIGTERM') => {
    const r = await daemon.stop(signal);
    allEvents.push(...daemon.events());
    return r;
  };
  const event = (e: Event, fields: Event) => Object.entries(fields).every(([k, v]) => e[k] === v);

  before(async () => {
    server = await TestServer.start();
    await server.createCustomer(customer);
    agent = new TestAgent(server);
    expectCode(await agent.enroll(customer, 'accueil'), 0, 'enroll');
    mkdirSync(join(data, 'dossiers'));
    writeFileSync(join(data, 'dossiers', 'patient-001.txt'), 'compte rendu\n'.repeat(200));
    writeFileSync(join(other, 'base.db'), 'base\n'.repeat(100));
    const customers = JSON.parse((await server.admin(['customer', 'list', '--json'])).stdout) as { id: string; name: string }[];
    orgId = customers.find((c) => c.name === customer)!.id;
    viewer = (await signUp(server, { role: 'customer-viewer', org: customer })).client;
    const add = async (args: string[]) => expectCode(await agent.run(['job', 'add', ...args]), 0, `job add ${args[0]}`);
    // Names sort in the order the daemon runs them at the same minute.
    await add(['cabinet', '--path', data, '--schedule', '* * * * *', '--timezone', 'UTC', '--pre', `echo "pre $COFFRE_JOB" >> ${hooksLog}; echo dump > ${join(data, 'dump.sql')}; echo "dump written"`, '--post', `echo "post $COFFRE_JOB $COFFRE_RESULT" >> ${hooksLog}`]);
    await add(['poste', '--path', other, '--schedule', '* * * * *', '--timezone', 'UTC', '--post', `echo "post $COFFRE_JOB $COFFRE_RESULT" >> ${hooksLog}; exit 4`]);
    await add(['sauvegarde-base', '--path', other, '--schedule', '* * * * *', '--timezone', 'UTC', '--pre', `echo "pre $COFFRE_JOB" >> ${hooksLog}; echo "base verrouillée" >&2; exit 3`, '--post', `echo "post $COFFRE_JOB $COFFRE_RESULT" >> ${hooksLog}`]);
    daemon = AgentProcess.start(agent, ['daemon', '--restore-test-schedule', '* * * * *', '--restore-test-sample', '100'], daemonEnv);
  });
  after(async () => {
    if (daemon) await daemon.stop('SIGKILL').catch(() => undefined);
    await server?.stop();
    server?.cleanup();
    agent?.cleanup();
    for (const d of [data, other, work]) rmSync(d, { recursive: true, force: true });
  });

  test('at start: the server learns the schedule and gets heartbeats, every second here', async () => {
    await daemon.waitForEvent((e) => e.event === 'schedule-reported', 20_000);
    await daemon.waitForEvent((e) => e.event === 'heartbeat', 20_000);
    const [m] = await machines();
    assert.deepEqual(m!.jobs.map((j) => j.name), ['cabinet', 'poste', 'sauvegarde-base']);
    const first = (await machineView()).lastHeartbeatAt;
    assert.ok(first, 'the server recorded a heartbeat');
    await new Promise((r) => setTimeout(r, 2500));
    const later = (await machineView()).lastHeartbeatAt;
    assert.ok(later && later > first, `heartbeats keep coming (${first} → ${later})`);
  });

  test('a second daemon on the same configuration directory refuses to start (exit 14)', async () => {
    const r = await agent.run(['daemon'], daemonEnv, 30_000);
    expectCode(r, 14, 'second daemon');
    assert.match(r.stderr, new RegExp(`another coffre daemon \\(process ${daemon.pid}\\) is already running`));
    assert.equal(readFileSync(join(agent.configDir, 'daemon.pid'), 'utf8').trim(), String(daemon.pid), 'the first keeps its lock');
  });

  test('at the scheduled minute: each job runs in turn with its commands; runs are reported with job and trigger', async () => {
    const end = (job: string) => daemon.waitForEvent((e) => event(e, { event: 'run-end', job }), 80_000);
    const good = await end('cabinet');
    const post = await end('poste');
    const failed = await end('sauvegarde-base');
    const rt = await daemon.waitForEvent((e) => e.event === 'restore-test-end', 30_000);
    const events = daemon.events();

    // The good job: pre before the backup (the dump is in the snapshot), post after, success.
    assert.equal(good.result, 'success');
    assert.equal(good.trigger, 'schedule');
    const snaps = await snapshots();
    const goodSnap = snaps.find((s) => s.id === good.snapshot);
    assert.ok(goodSnap, 'the snapshot exists');
    const ls = await agent.run(['ls', String(good.snapshot)]);
    assert.match(ls.stdout, /\/dump\.sql$/m, 'the pre command ran before the backup');
    assert.ok(events.some((e) => event(e, { event: 'pre-output', job: 'cabinet', msg: 'dump written' })), "the pre command's output is in the daemon's log");

    // A failing post command after a good backup: partial, the snapshot stays.
    assert.equal(post.result, 'partial');
    assert.equal(post.errorCode, 'POST_COMMAND_FAILED');
    assert.ok(snaps.some((s) => s.id === post.snapshot), 'the snapshot is kept');

    // A failing pre command: nothing backed up, a failed run, the post command still runs.
    assert.equal(failed.result, 'failed');
    assert.equal(failed.errorCode, 'PRE_COMMAND_FAILED');
    assert.equal(failed.snapshot, null);
    assert.equal(snaps.length, 2, 'two snapshots: the failed job made none');
    assert.ok(events.some((e) => event(e, { event: 'pre-output', job: 'sauvegarde-base', msg: 'base verrouillée', stream: 'stderr' })));
    assert.deepEqual(hookLines(), ['pre cabinet', 'post cabinet success', 'post poste success', 'pre sauvegarde-base', 'post sauvegarde-base failed']);

    // Never two at once: each run starts after the previous one ended.
    const idx = (pred: (e: Event) => boolean) => events.findIndex(pred);
    assert.ok(idx((e) => event(e, { event: 'run-start', job: 'poste' })) > idx((e) => event(e, { event: 'run-end', job: 'cabinet' })));
    assert.ok(idx((e) => event(e, { event: 'run-start', job: 'sauvegarde-base' })) > idx((e) => event(e, { event: 'run-end', job: 'poste' })));
    assert.ok(idx((e) => e.event === 'restore-test-start') > idx((e) => event(e, { event: 'run-end', job: 'sauvegarde-base' })));

    // What the server knows: the runs with job and trigger, the machine failed, the restore test.
    const reported = await runs();
    const pick = (job: string) => reported.filter((r) => r.job === job).map(({ trigger, result, snapshotId, errorCode }) => ({ trigger, result, snapshotId, errorCode }));
    assert.deepEqual(pick('cabinet'), [{ trigger: 'schedule', result: 'success', snapshotId: good.snapshot, errorCode: null }]);
    assert.deepEqual(pick('poste'), [{ trigger: 'schedule', result: 'partial', snapshotId: post.snapshot, errorCode: 'POST_COMMAND_FAILED' }]);
    assert.deepEqual(pick('sauvegarde-base'), [{ trigger: 'schedule', result: 'failed', snapshotId: null, errorCode: 'PRE_COMMAND_FAILED' }]);
    assert.equal((await machines())[0]!.status, 'failed', 'the latest run failed');
    assert.equal(rt.result, 'success');
    assert.equal(rt.snapshot, post.snapshot, "the restore test takes this machine's newest snapshot");
    const test = (await machineView()).lastRestoreTest as { snapshotId: string; result: string; sampledFiles: number; comparedFiles: number; mismatches: number } | null;
    assert.ok(test, 'the server has the restore test');
    assert.deepEqual([test.snapshotId, test.result, test.sampledFiles, test.comparedFiles, test.mismatches], [post.snapshot, 'success', 1, 1, 0]);
  });

  test('jobs.json changes are picked up without a restart', async () => {
    const from = daemon.events().length;
    expectCode(await agent.run(['job', 'remove', 'poste']), 0, 'job remove poste');
    expectCode(await agent.run(['job', 'remove', 'sauvegarde-base']), 0, 'job remove sauvegarde-base');
    await daemon.waitForEvent((e) => e.event === 'reload' && JSON.stringify(e.jobs) === '["cabinet"]', 10_000, from);
  });

  test('network loss: the run that cannot reach the server is retried once it is back; one snapshot for that minute', async () => {
    const before = (await snapshots()).length;
    const from = daemon.events().length;
    await server.stop();
    const lost = await daemon.waitForEvent((e) => event(e, { event: 'run-unreachable', job: 'cabinet' }), 80_000, from);
    const scheduled = daemon.events().slice(from).find((e) => event(e, { event: 'run-start', job: 'cabinet' }))!.scheduled;
    assert.equal(lost.errorCode, 'UNREACHABLE');
    await daemon.waitForEvent((e) => event(e, { event: 'retry-scheduled', job: 'cabinet' }), 10_000, from);
    await server.restart();
    const retried = await daemon.waitForEvent((e) => event(e, { event: 'run-end', job: 'cabinet', trigger: 'retry' }), 50_000, from);
    assert.equal(retried.result, 'success');
    const retryStarts = daemon.events().slice(from).filter((e) => event(e, { event: 'run-start', job: 'cabinet', trigger: 'retry' }));
    assert.ok(retryStarts.length >= 1 && retryStarts.every((e) => e.scheduled === scheduled), 'the retries are for the same scheduled minute');
    const ends = daemon.events().slice(from).filter((e) => event(e, { event: 'run-end', job: 'cabinet' }) && e.snapshot);
    assert.equal(ends.filter((e) => e.trigger === 'retry').length, 1, 'one snapshot for the minute that was retried');
    const snaps = await snapshots();
    assert.equal(snaps.length, before + ends.length, 'no snapshot the daemon did not account for');
    assert.ok(snaps.some((s) => s.id === retried.snapshot));
    const reported = await runs();
    assert.ok(reported.some((r) => r.job === 'cabinet' && r.trigger === 'retry' && r.result === 'success' && r.snapshotId === retried.snapshot), 'the server has the retried run');
    assert.equal((await machines())[0]!.status, 'ok');
  });

  test('SIGTERM: exit 0, the lock is released, the state file holds the last completed minute', async () => {
    const ends = daemon.events().filter((e) => event(e, { event: 'run-end', job: 'cabinet' }));
    const { code } = await stopDaemon('SIGTERM');
    assert.equal(code, 0);
    assert.ok(allEvents.some((e) => e.event === 'stopped'));
    assert.equal(existsSync(join(agent.configDir, 'daemon.pid')), false);
    const state = JSON.parse(readFileSync(join(agent.configDir, 'daemon-state.json'), 'utf8')) as { jobs: Record<string, { lastCompleted: string; lastResult: string }> };
    const lastScheduled = allEvents.filter((e) => event(e, { event: 'run-start', job: 'cabinet' })).at(-1)!.scheduled;
    assert.equal(state.jobs.cabinet!.lastCompleted, lastScheduled);
    assert.equal(state.jobs.cabinet!.lastResult, ends.at(-1)!.result);
    assert.deepEqual(Object.keys(state.jobs), ['cabinet'], 'removed jobs are forgotten');
  });

  test('restart: a run missed while the daemon was down is caught up once; SIGTERM lets it finish; a second restart repeats nothing', async () => {
    // A nightly job whose last completed run was two days ago: last night's 03:00 (UTC) was missed.
    expectCode(await agent.run(['job', 'add', 'cabinet', '--path', data, '--schedule', '0 3 * * *', '--timezone', 'UTC', '--pre', `echo "pre nuit" >> ${hooksLog}; sleep 2`, '--post', `echo "post nuit $COFFRE_RESULT" >> ${hooksLog}`]), 0, 'job add (nightly)');
    const now = new Date();
    const lastNight = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), 3));
    if (lastNight > now) lastNight.setUTCDate(lastNight.getUTCDate() - 1);
    const twoNightsAgo = new Date(lastNight.getTime() - 86_400_000);
    writeFileSync(join(agent.configDir, 'daemon-state.json'), JSON.stringify({ v: 1, jobs: { cabinet: { lastCompleted: twoNightsAgo.toISOString() } }, restoreTest: null }));
    const snapsBefore = (await snapshots()).length;
    const runsBefore = (await runs()).length;

    daemon = AgentProcess.start(agent, ['daemon', '--restore-test-schedule', 'off'], daemonEnv);
    const sched = await daemon.waitForEvent((e) => event(e, { event: 'scheduled', job: 'cabinet' }), 20_000);
    assert.equal(sched.catchUp, lastNight.toISOString(), 'only the latest missed night');
    await daemon.waitForEvent((e) => event(e, { event: 'pre-start', job: 'cabinet' }), 20_000);
    const { code } = await stopDaemon('SIGTERM');
    assert.equal(code, 0);
    const tail = allEvents.slice(allEvents.findLastIndex((e) => e.event === 'start'));
    const stopping = tail.findIndex((e) => e.event === 'stopping');
    const end = tail.findIndex((e) => event(e, { event: 'run-end', job: 'cabinet' }));
    assert.ok(stopping >= 0 && end > stopping, 'the running backup finished after the stop was asked');
    assert.equal(tail[end]!.result, 'success');
    assert.equal(tail[end]!.trigger, 'schedule');
    assert.equal((await snapshots()).length, snapsBefore + 1);
    assert.equal((await runs()).length, runsBefore + 1, 'the caught-up run is reported');
    assert.ok(hookLines().includes('post nuit success'), 'the post command ran');

    daemon = AgentProcess.start(agent, ['daemon', '--restore-test-schedule', 'off'], daemonEnv);
    const again = await daemon.waitForEvent((e) => event(e, { event: 'scheduled', job: 'cabinet' }), 20_000);
    assert.equal(again.catchUp, null, 'nothing to catch up: last night is done');
    assert.equal(again.lastCompleted, lastNight.toISOString());
    await daemon.waitForEvent((e) => e.event === 'heartbeat', 20_000);
    const r = await stopDaemon('SIGINT');
    assert.equal(r.code, 0);
    assert.equal(daemon.events().filter((e) => e.event === 'run-start').length, 0, 'no run');
    assert.equal((await snapshots()).length, snapsBefore + 1);
  });
});
