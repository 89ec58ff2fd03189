import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { AlertListResponse, AlertRecord, CustomerMachineListResponse, CustomerMachineRecord, CustomerSummary, DashboardResponse, MachineJobRecord, Subkeys } from '@coffre/core';
import { adminRevokeMachine, adminSetOrgStatus } from '../src/admin/index.js';
import type { JobResult } from '../src/jobs/job.js';
import { ObservatoryJob } from '../src/jobs/observatory.js';
import { assertError, buildPack, commitTestSnapshot, enrollMachine, snapshotRequest, testKeys, jobContext, testServer, type HttpResponse, type TestMachine, type TestPack, type TestServer } from './kit.js';
import { Browser, nextCode, org, person, type TestPerson } from './people.js';

process.env.COFFRE_TEST_ARGON2 ??= '256,1,1';

const PARIS = 'Europe/Paris';
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** Moves the test clock forward to `iso` (never back). */
function clockTo(ts: TestServer, iso: string): void {
  const delta = Date.parse(iso) - ts.clock.now().getTime();
  assert.ok(delta >= 0, `the clock only moves forward: now ${ts.clock.now().toISOString()}, asked ${iso}`);
  ts.clock.advance(delta);
}

/**
 * People's sessions expire after 30 idle minutes and the tests jump hours ahead: each person
 * gets a fresh sign-in (password + TOTP) whenever the clock moved since their last request.
 */
class People {
  private readonly sessions = new Map<TestPerson, { browser: Browser; usedAt: number; signedAt: number }>();
  constructor(private readonly ts: TestServer) {}

  async signIn(p: TestPerson): Promise<Browser> {
    const b = new Browser(this.ts);
    const login = await b.request('POST', '/auth/login', { json: { email: p.email, password: p.password } });
    assert.equal(login.status, 200, login.body.toString());
    const proof = await b.request('POST', '/auth/second-factor/totp', { json: { code: nextCode(this.ts, p) } });
    assert.equal(proof.status, 200, proof.body.toString());
    const now = this.ts.clock.now().getTime();
    this.sessions.set(p, { browser: b, usedAt: now, signedAt: now });
    return b;
  }

  async request(p: TestPerson, method: string, path: string): Promise<HttpResponse> {
    const now = this.ts.clock.now().getTime();
    const s = this.sessions.get(p);
    const b = s && now - s.usedAt < 20 * MINUTE && now - s.signedAt < 11 * HOUR ? s.browser : await this.signIn(p);
    const res = await b.request(method, path);
    this.sessions.get(p)!.usedAt = this.ts.clock.now().getTime();
    return res;
  }

  async json<T>(p: TestPerson, path: string): Promise<T> {
    const res = await this.request(p, 'GET', path);
    assert.equal(res.status, 200, `GET ${path}: ${res.status} ${res.body.toString()}`);
    return res.json<T>();
  }

  async machines(p: TestPerson, orgId: string): Promise<readonly CustomerMachineRecord[]> {
    return (await this.json<CustomerMachineListResponse>(p, `/orgs/${orgId}/machines`)).machines;
  }

  async machine(p: TestPerson, orgId: string, name: string): Promise<CustomerMachineRecord> {
    const m = (await this.machines(p, orgId)).find((x) => x.name === name);
    assert.ok(m, `machine ${name} listed`);
    return m;
  }

  async customer(p: TestPerson, name: string): Promise<CustomerSummary> {
    const c = (await this.json<DashboardResponse>(p, '/dashboard')).customers.find((x) => x.name === name);
    assert.ok(c, `customer ${name} on the dashboard`);
    return c;
  }

  async alerts(p: TestPerson, orgId: string, state?: 'open' | 'all'): Promise<readonly AlertRecord[]> {
    return (await this.json<AlertListResponse>(p, `/orgs/${orgId}/alerts${state ? `?state=${state}` : ''}`)).alerts;
  }
}

/** A machine that can commit real snapshots (one pack uploaded once, reused by each snapshot). */
class Backups {
  private readonly keys: Subkeys = testKeys();
  private pack: TestPack | null = null;
  constructor(
    private readonly ts: TestServer,
    readonly m: TestMachine,
  ) {}

  /** Commits a snapshot; returns its server time. */
  async snapshot(): Promise<string> {
    if (!this.pack) {
      this.pack = buildPack(this.keys);
      const put = await this.m.request('PUT', `/packs/${this.pack.id}`, { body: this.pack.data });
      assert.equal(put.status, 200, put.body.toString());
    }
    const res = await this.m.request('POST', '/snapshots', { json: snapshotRequest(this.keys, this.m.machineId, this.pack.chunkIds) });
    assert.equal(res.status, 201, res.body.toString());
    const time = res.json<{ time: string }>().time;
    assert.equal(time, this.ts.clock.now().toISOString());
    return time;
  }
}

async function putJobs(m: TestMachine, jobs: unknown): Promise<HttpResponse> {
  return m.request('PUT', '/jobs', { json: { jobs } });
}

async function report(m: TestMachine, result: 'success' | 'partial' | 'failed', finishedAt: string, errorCode?: string): Promise<void> {
  const startedAt = new Date(Date.parse(finishedAt) - 5 * MINUTE).toISOString();
  // A success names the snapshot it committed (POST /runs refuses one without).
  const snapshotId = result === 'success' ? await commitTestSnapshot(m) : undefined;
  const body = { startedAt, finishedAt, result, files: 10, bytes: 1000, addedBytes: 100, warnings: 0, ...(errorCode ? { errorCode } : {}), ...(snapshotId ? { snapshotId } : {}) };
  const res = await m.request('POST', '/runs', { json: body });
  assert.equal(res.status, 201, res.body.toString());
}

/**
 * The job's alert bookkeeping only: these customers have no alert address, so each alert
 * also yields a "nobody was told" warning item and email counters, which the email tests
 * (alert-emails.test.ts) check; here they are left out.
 */
function observatory(ts: TestServer): () => Promise<JobResult> {
  const job = new ObservatoryJob();
  return async () => {
    const r = await job.run(jobContext(ts));
    const { machines = -1, opened = -1, closed = -1, open = -1 } = r.counts;
    return { ...r, counts: { machines, opened, closed, open }, items: r.items.filter((i) => i.outcome !== 'warning') };
  };
}

const NIGHTLY: MachineJobRecord = { name: 'nuit', schedule: '0 22 * * *', timezone: PARIS };

describe('PUT /jobs: a machine reports its scheduled jobs', () => {
  let ts: TestServer;
  let people: People;
  let op: TestPerson;
  let customerId: string;
  let m: TestMachine;

  before(async () => {
    ts = await testServer();
    people = new People(ts);
    customerId = await org(ts, 'Cabinet Horloge', 'customer');
    op = await person(ts, 'operator-admin', 'operator');
    m = await enrollMachine(ts, 'Cabinet Horloge', 'accueil');
  });
  after(() => ts.close());

  const jobsOf = async () => (await people.machine(op, customerId, 'accueil')).jobs;

  it('an enrolled machine that reported nothing has no schedule', async () => {
    const rec = await people.machine(op, customerId, 'accueil');
    assert.deepEqual(
      { jobs: rec.jobs, scheduleReportedAt: rec.scheduleReportedAt, status: rec.status, nextExpectedAt: rec.nextExpectedAt, lastSuccessAt: rec.lastSuccessAt },
      { jobs: [], scheduleReportedAt: null, status: 'no_schedule', nextExpectedAt: null, lastSuccessAt: null },
    );
  });

  it('stores the jobs (schedules normalised); the machine list shows them, the next expected run and the status', async () => {
    const now = ts.clock.now().toISOString(); // 2026-03-02T09:00Z, a Monday
    const res = await putJobs(m, [
      { name: 'soir', schedule: '  0   22 * *  1-5 ', timezone: PARIS },
      { name: 'minuit-utc', schedule: '@daily', timezone: 'UTC' },
    ]);
    assert.equal(res.status, 200, res.body.toString());
    assert.deepEqual(res.json(), {
      jobs: [
        { name: 'soir', schedule: '0 22 * * 1-5', timezone: PARIS },
        { name: 'minuit-utc', schedule: '@daily', timezone: 'UTC' },
      ],
    });
    const rec = await people.machine(op, customerId, 'accueil');
    assert.deepEqual(rec.jobs, [
      { name: 'minuit-utc', schedule: '@daily', timezone: 'UTC' },
      { name: 'soir', schedule: '0 22 * * 1-5', timezone: PARIS },
    ]);
    assert.equal(rec.scheduleReportedAt, now);
    // 22:00 in Paris (21:00Z) comes before midnight UTC.
    assert.equal(rec.nextExpectedAt, '2026-03-02T21:00:00.000Z');
    assert.equal(rec.status, 'never');
    assert.equal(rec.lastSuccessAt, null);
  });

  it('replaces the whole list each time (idempotent); an empty list means no schedule again', async () => {
    ts.clock.advance(MINUTE);
    const weekly = { name: 'hebdo', schedule: '@weekly', timezone: 'America/New_York' };
    for (let i = 0; i < 2; i++) {
      const res = await putJobs(m, [weekly]);
      assert.equal(res.status, 200, res.body.toString());
      const rec = await people.machine(op, customerId, 'accueil');
      assert.deepEqual(rec.jobs, [weekly]);
      assert.equal(rec.scheduleReportedAt, ts.clock.now().toISOString());
      // Sunday 8 March 00:00 EST (New York changes to summer time at 02:00 that day).
      assert.equal(rec.nextExpectedAt, '2026-03-08T05:00:00.000Z');
    }
    const res = await putJobs(m, []);
    assert.equal(res.status, 200, res.body.toString());
    assert.deepEqual(res.json(), { jobs: [] });
    const rec = await people.machine(op, customerId, 'accueil');
    assert.deepEqual([rec.jobs, rec.status, rec.nextExpectedAt], [[], 'no_schedule', null]);
    assert.equal(rec.scheduleReportedAt, ts.clock.now().toISOString(), 'an empty report is still a report');
  });

  it('accepts exactly 50 jobs', async () => {
    const fifty = Array.from({ length: 50 }, (_, i) => ({ name: `job-${String(i).padStart(2, '0')}`, schedule: `${i} 3 * * *`, timezone: PARIS }));
    const res = await putJobs(m, fifty);
    assert.equal(res.status, 200, res.body.toString());
    assert.equal((await jobsOf()).length, 50);
  });

  describe('refuses an invalid report with 400 BAD_REQUEST and keeps the jobs it had', () => {
    before(async () => {
      assert.equal((await putJobs(m, [NIGHTLY])).status, 200);
    });

    const valid = { name: 'autre', schedule: '0 12 * * *', timezone: PARIS };
    const cases: [what: string, body: unknown, details?: { job: string; reason: RegExp }][] = [
      ['an invalid cron value (hour 25)', { jobs: [valid, { name: 'tard', schedule: '0 25 * * *', timezone: PARIS }] }, { job: 'tard', reason: /invalid schedule "0 25 \* \* \*".*hour/ }],
      ['six fields', { jobs: [{ name: 'sec', schedule: '0 0 22 * * *', timezone: PARIS }] }, { job: 'sec', reason: /five fields/ }],
      ['cron garbage', { jobs: [{ name: 'x', schedule: 'tous les soirs', timezone: PARIS }] }, { job: 'x', reason: /five fields/ }],
      ['an unknown time zone', { jobs: [{ name: 'lutece', schedule: '0 22 * * *', timezone: 'Europe/Lutece' }] }, { job: 'lutece', reason: /unknown time zone "Europe\/Lutece"/ }],
      ['duplicate job names', { jobs: [NIGHTLY, { ...valid, name: 'nuit' }] }, { job: 'nuit', reason: /duplicate job name/ }],
      ['more than 50 jobs', { jobs: Array.from({ length: 51 }, (_, i) => ({ name: `j${i}`, schedule: '0 3 * * *', timezone: PARIS })) }],
      ['a paths field on a job', { jobs: [{ ...NIGHTLY, paths: ['/patients'] }] }],
      ['an extra top-level property', { jobs: [NIGHTLY], paths: ['/patients'] }],
      ['a job without a time zone', { jobs: [{ name: 'nuit', schedule: '0 22 * * *' }] }],
      ['a job name with a space', { jobs: [{ ...NIGHTLY, name: 'la nuit' }] }],
      ['an empty schedule', { jobs: [{ ...NIGHTLY, schedule: '' }] }],
      ['jobs that is not a list', { jobs: NIGHTLY }],
      ['no jobs field', {}],
    ];
    for (const [what, body, details] of cases) {
      it(what, async () => {
        const err = assertError(await m.request('PUT', '/jobs', { json: body }), 400, 'BAD_REQUEST');
        if (details) {
          const d = err.details as { job: string; reason: string };
          assert.equal(d.job, details.job);
          assert.match(d.reason, details.reason);
        }
        assert.deepEqual(await jobsOf(), [NIGHTLY]);
      });
    }
  });

  it("a person's session cannot report jobs (401); neither can an unknown credential", async () => {
    const b = await people.signIn(op);
    assertError(await b.request('PUT', '/jobs', { json: { jobs: [{ name: 'intrus', schedule: '@hourly', timezone: 'UTC' }] } }), 401, 'UNAUTHORIZED');
    assertError(await ts.request('PUT', '/jobs', { token: `cfm_${'A'.repeat(43)}`, json: { jobs: [] } }), 401, 'UNAUTHORIZED');
    assertError(await ts.request('PUT', '/jobs', { json: { jobs: [] } }), 401, 'UNAUTHORIZED');
    assert.deepEqual(await jobsOf(), [NIGHTLY]);
  });
});

describe('statuses from schedules, and the observatory job', () => {
  let ts: TestServer;
  let people: People;
  let run: () => Promise<JobResult>;
  let nordId: string;
  let sudId: string;
  let lumiereId: string;
  let voisinId: string;
  let nord: TestPerson;
  let sud: TestPerson;
  let viewer: TestPerson;
  let m: TestMachine;
  let backups: Backups;
  let graceMs: number;
  let lastSuccess: string;
  let missedAlertId: string;

  before(async () => {
    ts = await testServer();
    people = new People(ts);
    run = observatory(ts);
    graceMs = ts.admin.dataDir.settings.observatoryGraceMinutes * MINUTE;
    nordId = await org(ts, 'Revendeur Nord', 'reseller');
    sudId = await org(ts, 'Revendeur Sud', 'reseller');
    lumiereId = await org(ts, 'Cabinet Lumière', 'customer', 'Revendeur Nord');
    voisinId = await org(ts, 'Cabinet Voisin', 'customer', 'Revendeur Nord');
    await org(ts, 'Cabinet Sud', 'customer', 'Revendeur Sud');
    nord = await person(ts, 'reseller-admin', 'Revendeur Nord');
    sud = await person(ts, 'reseller-admin', 'Revendeur Sud');
    viewer = await person(ts, 'customer-viewer', 'Cabinet Lumière');
    m = await enrollMachine(ts, 'Cabinet Lumière', 'serveur');
    backups = new Backups(ts, m);
  });
  after(() => ts.close());

  const status = async () => {
    const rec = await people.machine(nord, lumiereId, 'serveur');
    const dash = await people.customer(nord, 'Cabinet Lumière');
    return { machine: rec.status, dashboard: dash.backupStatus, nextExpectedAt: rec.nextExpectedAt, lastSuccessAt: rec.lastSuccessAt };
  };

  it('the grace defaults to 180 minutes', () => {
    assert.equal(graceMs, 180 * MINUTE);
  });

  it('an enrolled machine without jobs: no_schedule on the machine list and the dashboard', async () => {
    assert.deepEqual(await status(), { machine: 'no_schedule', dashboard: 'no_schedule', nextExpectedAt: null, lastSuccessAt: null });
    const r = await run();
    assert.equal(r.job, 'observatory');
    assert.deepEqual(r.counts, { machines: 1, opened: 0, closed: 0, open: 0 });
  });

  it('with a daily job and no snapshot: never, next expected at 22:00 Paris', async () => {
    assert.equal((await putJobs(m, [NIGHTLY])).status, 200);
    assert.deepEqual(await status(), { machine: 'never', dashboard: 'never', nextExpectedAt: '2026-03-02T21:00:00.000Z', lastSuccessAt: null });
    assert.equal((await run()).counts.opened, 0, 'nothing is due yet');
  });

  it('after a real snapshot: ok, with the server time of the commit as last success', async () => {
    ts.clock.advance(30 * MINUTE);
    lastSuccess = await backups.snapshot();
    assert.equal(lastSuccess, '2026-03-02T09:30:00.000Z');
    assert.deepEqual(await status(), { machine: 'ok', dashboard: 'ok', nextExpectedAt: '2026-03-02T21:00:00.000Z', lastSuccessAt: lastSuccess });
    assert.equal((await people.customer(nord, 'Cabinet Lumière')).lastSuccessAt, lastSuccess);
  });

  it('still ok up to the scheduled time plus the grace; late one minute after, on the machine list and the dashboard', async () => {
    const due = Date.parse('2026-03-02T21:00:00.000Z');
    clockTo(ts, new Date(due + graceMs - MINUTE).toISOString());
    assert.equal((await status()).machine, 'ok');
    clockTo(ts, new Date(due + graceMs).toISOString());
    assert.deepEqual(await status(), { machine: 'ok', dashboard: 'ok', nextExpectedAt: '2026-03-03T21:00:00.000Z', lastSuccessAt: lastSuccess });
    assert.equal((await run()).counts.opened, 0, 'not overdue at exactly the grace');
    clockTo(ts, new Date(due + graceMs + MINUTE).toISOString());
    assert.deepEqual(await status(), { machine: 'late', dashboard: 'late', nextExpectedAt: '2026-03-03T21:00:00.000Z', lastSuccessAt: lastSuccess });
    // The other customers of the reseller are not affected.
    assert.equal((await people.customer(nord, 'Cabinet Voisin')).backupStatus, 'never');
  });

  it('the observatory opens one backup_missed alert, and only one however often it runs', async () => {
    const openedAt = ts.clock.now().toISOString();
    const first = await run();
    assert.deepEqual(first.counts, { machines: 1, opened: 1, closed: 0, open: 1 });
    assert.equal(first.items.length, 1);
    assert.equal(first.items[0]!.outcome, 'changed');
    assert.match(first.items[0]!.detail, /opened backup_missed for machine serveur/);
    missedAlertId = first.items[0]!.id;

    ts.clock.advance(MINUTE);
    const second = await run();
    assert.deepEqual(second.counts, { machines: 1, opened: 0, closed: 0, open: 1 });
    assert.deepEqual(second.items, []);

    const alerts = await people.alerts(nord, lumiereId);
    assert.deepEqual(alerts, [
      {
        id: missedAlertId,
        customerId: lumiereId,
        customerName: 'Cabinet Lumière',
        machineId: m.machineId,
        machineName: 'serveur',
        kind: 'backup_missed',
        openedAt,
        closedAt: null,
        since: '2026-03-02T21:00:00.000Z',
        errorCode: null,
      },
    ]);
    assert.deepEqual(await people.alerts(nord, lumiereId, 'open'), alerts, 'open is the default');
    assert.equal((await people.customer(nord, 'Cabinet Lumière')).openAlerts, 1);
    assert.equal((await people.customer(nord, 'Cabinet Voisin')).openAlerts, 0);
  });

  it('tenancy: the reseller and the customer see the alert; another reseller gets 404', async () => {
    assert.deepEqual((await people.alerts(nord, nordId)).map((a) => a.id), [missedAlertId], "the reseller's own org covers its customers");
    assert.deepEqual(await people.alerts(nord, voisinId), []);
    assert.deepEqual((await people.alerts(viewer, lumiereId)).map((a) => a.id), [missedAlertId], 'a customer viewer sees its own');
    assertError(await people.request(viewer, 'GET', `/orgs/${voisinId}/alerts`), 404, 'NOT_FOUND');
    assertError(await people.request(sud, 'GET', `/orgs/${lumiereId}/alerts`), 404, 'NOT_FOUND');
    assertError(await people.request(sud, 'GET', `/orgs/${lumiereId}/alerts?state=all`), 404, 'NOT_FOUND');
    assert.deepEqual(await people.alerts(sud, sudId), []);
    assert.ok(!(await people.json<DashboardResponse>(sud, '/dashboard')).customers.some((c) => c.name === 'Cabinet Lumière'));
    assertError(await m.request('GET', `/orgs/${lumiereId}/alerts`), 401, 'UNAUTHORIZED');
    assertError(await people.request(nord, 'GET', `/orgs/${lumiereId}/alerts?state=closed`), 400, 'BAD_REQUEST');
  });

  it('a new snapshot closes it: gone from state=open, listed with closedAt by state=all', async () => {
    ts.clock.advance(HOUR);
    lastSuccess = await backups.snapshot();
    assert.equal((await status()).machine, 'ok');
    const closedAt = ts.clock.now().toISOString();
    const r = await run();
    assert.deepEqual(r.counts, { machines: 1, opened: 0, closed: 1, open: 0 });
    assert.deepEqual(r.items.map((i) => [i.id, i.detail]), [[missedAlertId, 'closed backup_missed for machine serveur']]);
    assert.deepEqual(await people.alerts(nord, lumiereId, 'open'), []);
    const all = await people.alerts(nord, lumiereId, 'all');
    assert.equal(all.length, 1);
    assert.deepEqual([all[0]!.id, all[0]!.kind, all[0]!.closedAt, all[0]!.since], [missedAlertId, 'backup_missed', closedAt, '2026-03-02T21:00:00.000Z']);
    assert.equal((await people.customer(nord, 'Cabinet Lumière')).openAlerts, 0);
    assert.deepEqual((await run()).counts, { machines: 1, opened: 0, closed: 0, open: 0 }, 'closing is idempotent too');
  });

  it('a failed run report opens backup_failed; a later success closes it', async () => {
    ts.clock.advance(MINUTE);
    const finishedAt = new Date(ts.clock.now().getTime() - 10_000).toISOString();
    await report(m, 'failed', finishedAt, 'DISK_FULL');
    assert.deepEqual([(await status()).machine, (await status()).dashboard], ['failed', 'failed']);
    const opened = await run();
    assert.deepEqual(opened.counts, { machines: 1, opened: 1, closed: 0, open: 1 });
    assert.match(opened.items[0]!.detail, /opened backup_failed for machine serveur/);
    const [alert, ...rest] = await people.alerts(nord, lumiereId);
    assert.deepEqual(rest, []);
    assert.deepEqual([alert!.kind, alert!.machineName, alert!.since, alert!.errorCode, alert!.closedAt], ['backup_failed', 'serveur', finishedAt, 'DISK_FULL', null]);
    assert.equal((await people.customer(nord, 'Cabinet Lumière')).openAlerts, 1);
    assert.equal((await run()).counts.opened, 0, 'idempotent');

    ts.clock.advance(MINUTE);
    await report(m, 'success', ts.clock.now().toISOString());
    assert.equal((await status()).machine, 'ok');
    const closed = await run();
    assert.deepEqual(closed.counts, { machines: 1, opened: 0, closed: 1, open: 0 });
    assert.deepEqual(closed.items.map((i) => i.id), [alert!.id]);
    assert.deepEqual(await people.alerts(nord, lumiereId), []);
    assert.deepEqual((await people.alerts(nord, lumiereId, 'all')).map((a) => [a.kind, a.closedAt !== null]), [
      ['backup_failed', true],
      ['backup_missed', true],
    ]);
  });

  it('revoking the machine closes its alerts on the next run', async () => {
    // Last success around 2026-03-03T01:00Z: the next 22:00 Paris run is 2026-03-03T21:00Z.
    assert.match(lastSuccess, /^2026-03-03T01:/);
    clockTo(ts, new Date(Date.parse('2026-03-03T21:00:00.000Z') + graceMs + MINUTE).toISOString());
    await report(m, 'failed', ts.clock.now().toISOString(), 'UNREACHABLE');
    const opened = await run();
    assert.deepEqual(opened.counts, { machines: 1, opened: 2, closed: 0, open: 2 });
    const open = await people.alerts(nord, lumiereId);
    assert.deepEqual(open.map((a) => a.kind).sort(), ['backup_failed', 'backup_missed']);
    assert.equal(open.find((a) => a.kind === 'backup_missed')!.since, '2026-03-03T21:00:00.000Z');
    assert.equal((await people.customer(nord, 'Cabinet Lumière')).openAlerts, 2);

    ts.clock.advance(MINUTE);
    await adminRevokeMachine(ts.admin, 'Cabinet Lumière', 'serveur');
    const closedAt = ts.clock.now().toISOString();
    const closed = await run();
    assert.deepEqual(closed.counts, { machines: 1, opened: 0, closed: 2, open: 0 });
    assert.deepEqual(closed.items.map((i) => i.id).sort(), open.map((a) => a.id).sort());
    assert.deepEqual(await people.alerts(nord, lumiereId), []);
    const all = await people.alerts(nord, lumiereId, 'all');
    assert.deepEqual(all.filter((a) => open.some((o) => o.id === a.id)).map((a) => a.closedAt), [closedAt, closedAt]);
    assert.equal((await people.customer(nord, 'Cabinet Lumière')).openAlerts, 0);
    const rec = await people.machine(nord, lumiereId, 'serveur');
    assert.equal(rec.revoked, true);
    assert.equal(rec.nextExpectedAt, null, 'a revoked machine owes nothing');
    assert.notEqual(rec.status, 'late');
    ts.clock.advance(2 * 24 * HOUR);
    assert.deepEqual((await run()).counts, { machines: 1, opened: 0, closed: 0, open: 0 }, 'nothing reopens later');
    // Its last run failed, but a revoked machine cannot clear that: the customer is judged on
    // its active machines (none left, backups exist: nothing will back it up → no_schedule).
    assert.equal(rec.status, 'failed', "the machine's own history");
    assert.equal((await people.customer(nord, 'Cabinet Lumière')).backupStatus, 'no_schedule');
  });
});

describe('the observatory skips suspended customers', () => {
  let ts: TestServer;
  let people: People;
  let run: () => Promise<JobResult>;
  let op: TestPerson;
  let actifId: string;
  let suspenduId: string;

  before(async () => {
    ts = await testServer();
    people = new People(ts);
    run = observatory(ts);
    actifId = await org(ts, 'Cabinet Actif', 'customer');
    suspenduId = await org(ts, 'Cabinet Suspendu', 'customer');
    op = await person(ts, 'operator-admin', 'operator');
    for (const name of ['Cabinet Actif', 'Cabinet Suspendu']) {
      const m = await enrollMachine(ts, name, 'poste');
      assert.equal((await putJobs(m, [NIGHTLY])).status, 200);
    }
    // Both never backed up; their first run (2026-03-02T21:00Z) is overdue after the grace.
    clockTo(ts, new Date(Date.parse('2026-03-02T21:00:00.000Z') + ts.admin.dataDir.settings.observatoryGraceMinutes * MINUTE + MINUTE).toISOString());
  });
  after(() => ts.close());

  it('opens nothing for a suspended customer, and opens it once the customer is active again', async () => {
    assert.equal((await people.machine(op, suspenduId, 'poste')).status, 'never');
    await adminSetOrgStatus(ts.admin, 'Cabinet Suspendu', 'suspended');
    const r = await run();
    assert.deepEqual(r.counts, { machines: 1, opened: 1, closed: 0, open: 1 });
    assert.equal((await people.alerts(op, actifId)).length, 1);
    assert.deepEqual(await people.alerts(op, suspenduId, 'all'), []);

    ts.clock.advance(MINUTE);
    await adminSetOrgStatus(ts.admin, 'Cabinet Suspendu', 'active');
    const resumed = await run();
    assert.deepEqual(resumed.counts, { machines: 2, opened: 1, closed: 0, open: 2 });
    const [a] = await people.alerts(op, suspenduId);
    assert.deepEqual([a?.kind, a?.machineName, a?.since], ['backup_missed', 'poste', '2026-03-02T21:00:00.000Z']);
  });

  it('leaves the open alerts of a customer suspended afterwards as they are', async () => {
    ts.clock.advance(MINUTE);
    await adminSetOrgStatus(ts.admin, 'Cabinet Suspendu', 'suspended');
    const r = await run();
    assert.deepEqual(r.counts, { machines: 1, opened: 0, closed: 0, open: 2 });
    assert.equal((await people.alerts(op, suspenduId)).length, 1);
  });
});

describe('a schedule is owed from when the agent first reported it', () => {
  let ts: TestServer;
  let people: People;
  let run: () => Promise<JobResult>;
  let op: TestPerson;
  let customerId: string;
  let m: TestMachine;
  let graceMs: number;

  before(async () => {
    ts = await testServer();
    people = new People(ts);
    run = observatory(ts);
    graceMs = ts.admin.dataDir.settings.observatoryGraceMinutes * MINUTE;
    customerId = await org(ts, 'Cabinet Tardif', 'customer');
    op = await person(ts, 'operator-admin', 'operator');
    m = await enrollMachine(ts, 'Cabinet Tardif', 'poste'); // 2026-03-02T09:00Z
  });
  after(() => ts.close());

  it('runs scheduled between enrolment and the first report are not missed', async () => {
    // Monday's 22:00 Paris run (21:00Z) and its grace are long past when the agent first reports.
    clockTo(ts, '2026-03-03T10:00:00.000Z');
    assert.equal((await putJobs(m, [NIGHTLY])).status, 200);
    const rec = await people.machine(op, customerId, 'poste');
    assert.deepEqual([rec.status, rec.nextExpectedAt], ['never', '2026-03-03T21:00:00.000Z']);
    assert.deepEqual((await run()).counts, { machines: 1, opened: 0, closed: 0, open: 0 });
  });

  it('reporting the same schedule again does not move the date it is owed from', async () => {
    clockTo(ts, new Date(Date.parse('2026-03-03T21:00:00.000Z') + graceMs - MINUTE).toISOString());
    assert.equal((await putJobs(m, [NIGHTLY, { name: 'matin', schedule: '0 6 * * *', timezone: PARIS }])).status, 200);
    assert.equal((await run()).counts.opened, 0);
    clockTo(ts, new Date(Date.parse('2026-03-03T21:00:00.000Z') + graceMs + MINUTE).toISOString());
    const r = await run();
    assert.equal(r.counts.opened, 1);
    const [a] = await people.alerts(op, customerId);
    assert.deepEqual([a?.kind, a?.since], ['backup_missed', '2026-03-03T21:00:00.000Z']);
    assert.equal((await people.machine(op, customerId, 'poste')).status, 'never');
  });

  it('emptying the schedule shows no_schedule (never ok); a new schedule is owed from its report', async () => {
    ts.clock.advance(MINUTE);
    assert.equal((await putJobs(m, [])).status, 200);
    const emptied = await people.machine(op, customerId, 'poste');
    assert.deepEqual([emptied.status, emptied.nextExpectedAt], ['no_schedule', null]);
    assert.equal((await people.customer(op, 'Cabinet Tardif')).backupStatus, 'no_schedule');
    ts.clock.advance(MINUTE);
    assert.equal((await putJobs(m, [NIGHTLY])).status, 200);
    const rec = await people.machine(op, customerId, 'poste');
    assert.deepEqual([rec.status, rec.nextExpectedAt], ['never', '2026-03-04T21:00:00.000Z']);
    const r = await run();
    assert.deepEqual(r.counts, { machines: 1, opened: 0, closed: 1, open: 0 }, 'the missed alert closes: nothing is owed yet under the new schedule');
  });
});
