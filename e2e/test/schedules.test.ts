import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TestAgent, TestServer, expectCode, tempDir } from '../src/kit.js';

interface MachineLine {
  name: string;
  status: string;
  jobs: { name: string; schedule: string; timezone: string }[];
  lastSuccessAt: string | null;
  nextExpectedAt: string | null;
}

/**
 * Scheduled jobs with real processes (issue 5, point 9's `coffre job add` form; issue 4's
 * "no schedule" status): the agent keeps its jobs locally and tells the server only names,
 * schedules and time zones; bad schedules are refused with exit 2 and change nothing; the
 * server's machine list and observatory job see the schedule.
 */
describe('scheduled jobs (agent ↔ server)', { timeout: 120_000 }, () => {
  let server: TestServer;
  let agent: TestAgent;
  const data = tempDir('sched-data');

  const machines = async (): Promise<MachineLine[]> => {
    const r = await server.admin(['machine', 'list', '--customer', 'Cabinet Horaires', '--json']);
    expectCode(r, 0, 'machine list');
    return JSON.parse(r.stdout) as MachineLine[];
  };

  before(async () => {
    server = await TestServer.start();
    await server.createCustomer('Cabinet Horaires');
    agent = new TestAgent(server);
    expectCode(await agent.enroll('Cabinet Horaires', 'secretariat'), 0, 'enroll');
    mkdirSync(join(data, 'Comptes'), { recursive: true });
    writeFileSync(join(data, 'Comptes', 'janvier.txt'), 'recettes\n'.repeat(500));
    writeFileSync(join(data, 'brouillon.tmp'), 'x');
  });
  after(async () => {
    await server?.stop();
    server?.cleanup();
    agent?.cleanup();
  });

  test('an enrolled machine without jobs has no schedule', async () => {
    const [m] = await machines();
    assert.equal(m!.status, 'no_schedule');
    assert.deepEqual(m!.jobs, []);
    assert.equal(m!.nextExpectedAt, null);
  });

  test('coffre job add NAME --path PATH --schedule CRON --exclude PATTERN: saved locally, the server learns the schedule only', async () => {
    const r = await agent.run(['job', 'add', 'quotidien', '--path', data, '--schedule', '0  22 * * 1-5', '--exclude', '*.tmp', '--timezone', 'Europe/Paris']);
    expectCode(r, 0, 'job add');
    assert.match(r.stdout, /job quotidien saved/);
    assert.match(r.stdout, /next run: \d{4}-\d\d-\d\dT/);
    const list = await agent.json<{ name: string; paths: string[]; excludes: string[]; schedule: string; timezone: string; nextRun: string }[]>(['job', 'list']);
    assert.equal(list.length, 1);
    assert.deepEqual(list[0]!.paths, [data]);
    assert.deepEqual(list[0]!.excludes, ['*.tmp']);
    assert.equal(list[0]!.schedule, '0 22 * * 1-5', 'normalised');
    // 22:00 in Paris is 20:00 or 21:00 UTC, on a weekday.
    const next = new Date(list[0]!.nextRun);
    assert.ok([20, 21].includes(next.getUTCHours()) && next.getUTCMinutes() === 0, list[0]!.nextRun);
    const weekday = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Paris', weekday: 'short' }).format(next);
    assert.ok(!['Sat', 'Sun'].includes(weekday), `never on a weekend in Paris (${weekday})`);

    const [m] = await machines();
    assert.deepEqual(m!.jobs, [{ name: 'quotidien', schedule: '0 22 * * 1-5', timezone: 'Europe/Paris' }]);
    assert.equal(m!.status, 'never', 'scheduled, nothing backed up yet');
    assert.equal(m!.nextExpectedAt, list[0]!.nextRun);
    assert.ok(!JSON.stringify(m).includes(data), 'the server never learns the paths');
  });

  test('bad schedules, time zones and names are refused (exit 2) and change nothing', async () => {
    const cases: [string[], RegExp][] = [
      [['--schedule', '61 22 * * *'], /invalid schedule/],
      [['--schedule', '0 0 22 * * *'], /five fields/],
      [['--schedule', 'tous les soirs'], /invalid schedule|five fields/],
      [['--schedule', '0 22 * * *', '--timezone', 'Mars/Olympus'], /unknown time zone "Mars\/Olympus"/],
    ];
    for (const [extra, message] of cases) {
      const r = await agent.run(['job', 'add', 'autre', '--path', data, ...extra]);
      expectCode(r, 2, `job add ${extra.join(' ')}`);
      assert.match(r.stderr, message);
    }
    const badName = await agent.run(['job', 'add', '../evil', '--path', data, '--schedule', '@daily']);
    expectCode(badName, 2, 'bad job name');
    const missing = await agent.run(['job', 'add', 'absent', '--path', join(data, 'nope'), '--schedule', '@daily']);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /no such file or directory/);
    const noSchedule = await agent.run(['job', 'add', 'vide', '--path', data]);
    expectCode(noSchedule, 2, 'missing --schedule');
    const list = await agent.json<{ name: string }[]>(['job', 'list']);
    assert.deepEqual(list.map((j) => j.name), ['quotidien']);
    assert.equal((await machines())[0]!.jobs.length, 1);
  });

  test('after a backup the machine is OK; the observatory opens nothing', async () => {
    expectCode(await agent.run(['backup', data]), 0, 'backup');
    const [m] = await machines();
    assert.equal(m!.status, 'ok');
    assert.ok(m!.lastSuccessAt);
    const r = await server.admin(['job', 'run', 'observatory', '--json']);
    expectCode(r, 0, 'job run observatory');
    const result = JSON.parse(r.stdout) as { job: string; counts: Record<string, number> };
    assert.equal(result.job, 'observatory');
    assert.equal(result.counts.machines, 1);
    assert.equal(result.counts.opened, 0);
  });

  test('a failed run reported by the machine opens an alert; a success closes it', async () => {
    await agent.reportFailedRun('PRE_COMMAND_FAILED');
    const opened = JSON.parse((await server.admin(['job', 'run', 'observatory', '--json'])).stdout) as { counts: Record<string, number> };
    assert.equal(opened.counts.opened, 1);
    assert.equal(opened.counts.open, 1);
    assert.equal((await machines())[0]!.status, 'failed');
    const again = JSON.parse((await server.admin(['job', 'run', 'observatory', '--json'])).stdout) as { counts: Record<string, number> };
    assert.equal(again.counts.opened, 0, 'idempotent');
    expectCode(await agent.run(['backup', data]), 0, 'backup');
    const closed = JSON.parse((await server.admin(['job', 'run', 'observatory', '--json'])).stdout) as { counts: Record<string, number> };
    assert.equal(closed.counts.closed, 1);
    assert.equal(closed.counts.open, 0);
  });

  test('job run with an unknown name is a usage error; job list names the jobs', async () => {
    const r = await server.admin(['job', 'run', 'nettoyage']);
    expectCode(r, 2, 'unknown job');
    assert.match(r.stderr, /unknown job "?nettoyage"?; known jobs: .*observatory/);
    const list = await server.admin(['job', 'list']);
    assert.match(list.stdout, /observatory\s+0 7 \* \* \*/);
    for (const name of ['observatory', 'reports', 'retention', 'gc', 'verify', 'purge-temp', 'metering']) assert.match(list.stdout, new RegExp(`^${name}\\s`, 'm'), `job ${name} is listed`);
    const noDry = await server.admin(['job', 'run', 'observatory', '--dry-run']);
    expectCode(noDry, 2, 'observatory has no dry run');
    assert.match(noDry.stderr, /has no dry run \(jobs with one: .*gc.*\)|has no dry run \(jobs with one: .*retention.*\)/);
    for (const name of ['gc', 'retention']) {
      const dry = await server.admin(['job', 'run', name, '--dry-run', '--json']);
      expectCode(dry, 0, `${name} --dry-run`);
      assert.equal((JSON.parse(dry.stdout) as { counts: Record<string, number> }).counts.dryRun, 1, `${name} says it was a dry run`);
    }
  });

  test('removing the last job: no schedule again, snapshots kept', async () => {
    const r = await agent.run(['job', 'remove', 'quotidien']);
    expectCode(r, 0, 'job remove');
    const [m] = await machines();
    assert.equal(m!.status, 'no_schedule');
    assert.ok(m!.lastSuccessAt, 'the snapshots stay');
    expectCode(await agent.run(['job', 'remove', 'quotidien']), 1, 'removing an unknown job');
  });

  test('with the server down, a job is still saved and the agent says the server was not told', async () => {
    await server.stop();
    const r = await agent.run(['job', 'add', 'soir', '--path', data, '--schedule', '@daily']);
    expectCode(r, 0, 'job add while the server is down');
    assert.match(r.stderr, /could not be told about the schedule/);
    assert.deepEqual((await agent.json<{ name: string }[]>(['job', 'list'])).map((j) => j.name), ['soir']);
    await server.restart();
  });
});
