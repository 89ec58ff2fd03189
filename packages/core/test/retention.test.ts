import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  CoffreError,
  DEFAULT_PROTECT_DAYS,
  DEFAULT_RETENTION,
  RETENTION_RULES,
  parseRetentionArgs,
  parseRetentionDuration,
  parseRetentionPolicy,
  planRetention,
  retentionBuckets,
  retentionCutoff,
  retentionPolicyArgs,
  type RetentionPlan,
  type RetentionPolicy,
  type RetentionSnapshot,
} from '../src/index.js';

const PARIS = 'Europe/Paris';

function expectBadRequest(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CoffreError, `expected a CoffreError, got ${String(e)}`);
    assert.equal(e.code, 'BAD_REQUEST');
    assert.match(e.message, message);
    return true;
  });
}

const snap = (id: string, time: string, machineId = 'm1'): RetentionSnapshot => ({ id, time, machineId });

/** The plan as {keep: {id: [reason texts]}, remove: {id: reason text}}, the golden files' shape. */
function outcome(plan: RetentionPlan): { keep: Record<string, string[]>; remove: Record<string, string> } {
  const keep: Record<string, string[]> = {};
  const remove: Record<string, string> = {};
  for (const d of plan.decisions) {
    if (d.action === 'keep') keep[d.id] = d.reasons.map((r) => r.text);
    else remove[d.id] = d.reason.text;
  }
  return { keep, remove };
}

/** Deterministic shuffle (a small LCG), so a failure is reproducible. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

describe('retention durations', () => {
  const valid: [string, { years: number; months: number; weeks: number; days: number; hours: number }][] = [
    ['36h', { years: 0, months: 0, weeks: 0, days: 0, hours: 36 }],
    ['30d', { years: 0, months: 0, weeks: 0, days: 30, hours: 0 }],
    ['12w', { years: 0, months: 0, weeks: 12, days: 0, hours: 0 }],
    ['6m', { years: 0, months: 6, weeks: 0, days: 0, hours: 0 }],
    ['1y', { years: 1, months: 0, weeks: 0, days: 0, hours: 0 }],
    ['1y6m2w3d4h', { years: 1, months: 6, weeks: 2, days: 3, hours: 4 }],
    ['0y30d', { years: 0, months: 0, weeks: 0, days: 30, hours: 0 }],
  ];
  for (const [text, parsed] of valid) {
    it(`parses ${text}`, () => assert.deepEqual(parseRetentionDuration(text), parsed));
  }
  const invalid: [string, RegExp][] = [
    ['', /invalid duration "": .*"30d"/],
    ['30', /invalid duration "30"/],
    ['d', /invalid duration "d"/],
    ['30D', /invalid duration "30D"/],
    ['30 d', /invalid duration "30 d"/],
    ['-5d', /invalid duration "-5d"/],
    ['1.5d', /invalid duration "1.5d"/],
    ['30min', /invalid duration "30min"/],
    ['6m1y', /invalid duration "6m1y".*order y m w d h/],
    ['0d', /invalid duration "0d": it is zero, so it would keep nothing/],
    ['0y0h', /it is zero/],
    ['1001y', /longer than 1000 years/],
    ['99999999999999999999d', /longer than 1000 years/],
  ];
  for (const [text, message] of invalid) {
    it(`rejects ${JSON.stringify(text)}`, () => expectBadRequest(() => parseRetentionDuration(text), message));
  }
});

describe('retention policies', () => {
  it('the default is one snapshot a day for 90 calendar days, plus the newest (R9), frozen; protection defaults to 7 days', () => {
    assert.deepEqual({ ...DEFAULT_RETENTION }, { keepLast: 1, withinDaily: '90d' });
    assert.ok(Object.isFrozen(DEFAULT_RETENTION));
    assert.equal(DEFAULT_PROTECT_DAYS, 7);
    assert.deepEqual(retentionPolicyArgs(DEFAULT_RETENTION), ['--keep-last', '1', '--keep-within-daily', '90d']);
  });

  it('normalises: canonical key order and duration spelling, frozen', () => {
    const p = parseRetentionPolicy({ within: '0y30d', yearly: 2, keepLast: 3 });
    assert.deepEqual(Object.entries(p), [['keepLast', 3], ['yearly', 2], ['within', '30d']]);
    assert.ok(Object.isFrozen(p));
  });

  const invalid: [string, unknown, RegExp][] = [
    ['an empty policy (keeps nothing)', {}, /a retention policy must keep something: give at least one of --keep-last, --keep-daily/],
    ['null', null, /must be an object/],
    ['an array', [{ daily: 3 }], /must be an object/],
    ['a string', '--keep-daily 3', /must be an object/],
    ['an unknown rule', { hourly: 24 }, /unknown retention rule "hourly"; expected one of keepLast, daily/],
    ['a misspelt rule', { keepDaily: 3 }, /unknown retention rule "keepDaily"/],
    ['a zero count', { daily: 0 }, /daily must be a whole number from 1 .*omit it to disable the rule.*got 0/],
    ['a negative count', { weekly: -1 }, /weekly must be a whole number.*got -1/],
    ['a fractional count', { monthly: 1.5 }, /monthly must be a whole number.*got 1\.5/],
    ['a count given as a string', { yearly: '3' }, /yearly must be a whole number.*got "3"/],
    ['NaN', { keepLast: Number.NaN }, /keepLast must be a whole number/],
    ['Infinity', { keepLast: Number.POSITIVE_INFINITY }, /keepLast must be a whole number/],
    ['a huge count', { daily: 10_000_000 }, /daily must be a whole number from 1 to 1000000/],
    ['null for a rule', { daily: null }, /daily must be a whole number.*got null/],
    ['a duration given as a number', { within: 30 }, /within must be a duration string such as "30d", got 30/],
    ['a malformed duration', { withinDaily: '90 days' }, /withinDaily: invalid duration "90 days"/],
    ['a zero duration', { within: '0d' }, /within: invalid duration "0d": it is zero/],
  ];
  for (const [what, input, message] of invalid) {
    it(`refuses ${what}`, () => {
      expectBadRequest(() => parseRetentionPolicy(input), message);
      // planRetention refuses it the same way rather than keeping or removing everything.
      expectBadRequest(() => planRetention([snap('s1', '2026-01-01T00:00:00Z')], input as RetentionPolicy, { now: new Date('2026-02-01T00:00:00Z'), timeZone: PARIS, protectDays: 0 }), message);
    });
  }
});

describe('retention command-line options', () => {
  const valid: [string[], RetentionPolicy][] = [
    [['--keep-daily', '30'], { daily: 30 }],
    [['--keep-daily=30'], { daily: 30 }],
    [['--keep-last', '3', '--keep-weekly', '4', '--keep-monthly', '12', '--keep-yearly', '5'], { keepLast: 3, weekly: 4, monthly: 12, yearly: 5 }],
    [['--keep-within', '30d'], { within: '30d' }],
    [['--keep-within-daily', '90d', '--keep-within-weekly=12w', '--keep-within-monthly', '1y6m', '--keep-within-yearly', '10y'], { withinDaily: '90d', withinWeekly: '12w', withinMonthly: '1y6m', withinYearly: '10y' }],
    [['--keep-within', '0y36h'], { within: '36h' }],
  ];
  for (const [args, policy] of valid) {
    it(`reads ${args.join(' ')}`, () => {
      const p = parseRetentionArgs(args);
      assert.deepEqual({ ...p }, policy);
      // And the options written back read the same policy.
      assert.deepEqual({ ...parseRetentionArgs(retentionPolicyArgs(p)) }, policy);
    });
  }

  const invalid: [string, string[], RegExp][] = [
    ['no option (keeps nothing)', [], /a retention policy must keep something/],
    ['an unknown option', ['--keep-hourly', '24'], /unknown retention option "--keep-hourly"; expected one of --keep-last, --keep-daily/],
    ['an unknown option with =', ['--keep-everything=1'], /unknown retention option "--keep-everything"/],
    ['a stray argument', ['30'], /unexpected argument "30": retention options look like --keep-daily 30/],
    ['a missing value at the end', ['--keep-daily'], /--keep-daily needs a value, e.g. --keep-daily 30$/],
    ['a missing value before the next option', ['--keep-within', '--keep-daily', '3'], /--keep-within needs a value, e.g. --keep-within 30d$/],
    ['an empty value', ['--keep-daily='], /--keep-daily expects a whole number from 1 to 1000000, got ""/],
    ['a word for a count', ['--keep-daily', 'thirty'], /--keep-daily expects a whole number.*got "thirty"/],
    ['zero', ['--keep-last', '0'], /--keep-last expects a whole number from 1.*got "0"/],
    ['a negative count', ['--keep-weekly=-2'], /--keep-weekly expects a whole number.*got "-2"/],
    ['a fractional count', ['--keep-monthly', '1.5'], /--keep-monthly expects a whole number.*got "1\.5"/],
    ['an exponent', ['--keep-yearly', '1e3'], /--keep-yearly expects a whole number.*got "1e3"/],
    ['a duration for a count', ['--keep-daily', '30d'], /--keep-daily expects a whole number.*got "30d"/],
    ['a count for a duration', ['--keep-within', '30'], /--keep-within: invalid duration "30"/],
    ['minutes', ['--keep-within-daily', '90min'], /--keep-within-daily: invalid duration "90min"/],
    ['an option given twice', ['--keep-daily', '3', '--keep-daily=4'], /--keep-daily is given twice/],
  ];
  for (const [what, args, message] of invalid) {
    it(`refuses ${what}`, () => expectBadRequest(() => parseRetentionArgs(args), message));
  }
});

describe('retention calendar', () => {
  const cutoffs: [now: string, duration: string, zone: string, cutoff: string, why: string][] = [
    ['2026-06-01T00:00:00Z', '36h', PARIS, '2026-05-30T12:00:00.000Z', 'hours are exact'],
    ['2026-04-01T10:00:00Z', '7d', PARIS, '2026-03-25T11:00:00.000Z', 'seven local days across the spring change are 167 h'],
    ['2026-03-30T00:30:00Z', '1d', PARIS, '2026-03-29T01:30:00.000Z', 'a missing local time (02:30 on the spring day) moves forward to 03:30'],
    ['2026-10-26T00:30:00Z', '1d', PARIS, '2026-10-24T23:30:00.000Z', 'one local day across the autumn change is 25 h'],
    ['2026-10-26T01:30:00Z', '1d', PARIS, '2026-10-25T00:30:00.000Z', 'a local time that happens twice (02:30) is the earlier one'],
    ['2026-04-10T20:30:00Z', '90d', PARIS, '2026-01-10T21:30:00.000Z', '90 local days back over the spring change'],
    ['2026-04-10T20:30:00Z', '90d', 'UTC', '2026-01-10T20:30:00.000Z', 'the same in UTC is 90 × 24 h'],
    ['2026-04-10T20:30:00Z', '2160h', PARIS, '2026-01-10T20:30:00.000Z', '2160h is exactly 90 × 24 h'],
    ['2028-03-31T08:00:00Z', '1m', PARIS, '2028-02-29T09:00:00.000Z', '31 March minus a month is 29 February in a leap year'],
    ['2027-03-31T08:00:00Z', '1m', PARIS, '2027-02-28T09:00:00.000Z', '…and 28 February otherwise'],
    ['2026-05-31T10:00:00Z', '1m', 'UTC', '2026-04-30T10:00:00.000Z', '31 May minus a month is 30 April (clamped, not 1 May)'],
    ['2028-02-29T12:00:00Z', '1y', PARIS, '2027-02-28T12:00:00.000Z', 'a year before 29 February is 28 February'],
    ['2026-05-01T10:00:00Z', '1d', PARIS, '2026-04-30T10:00:00.000Z', 'over a month end'],
    ['2026-01-15T12:00:00Z', '1y1m1w1d1h', 'UTC', '2024-12-07T11:00:00.000Z', 'years and months first, then weeks and days, then hours'],
  ];
  for (const [now, duration, zone, cutoff, why] of cutoffs) {
    it(`${now} − ${duration} in ${zone} = ${cutoff}: ${why}`, () => assert.equal(retentionCutoff(new Date(now), duration, zone).toISOString(), cutoff));
  }

  const buckets: [time: string, zone: string, daily: string, weekly: string, monthly: string, yearly: string][] = [
    ['2026-03-28T23:30:00Z', PARIS, '2026-03-29', '2026-W13', '2026-03', '2026'],
    ['2026-03-29T22:10:00Z', PARIS, '2026-03-30', '2026-W14', '2026-03', '2026'],
    ['2026-03-29T22:10:00Z', 'UTC', '2026-03-29', '2026-W13', '2026-03', '2026'],
    ['2026-12-31T23:30:00Z', PARIS, '2027-01-01', '2026-W53', '2027-01', '2027'],
    ['2026-12-31T23:30:00Z', 'UTC', '2026-12-31', '2026-W53', '2026-12', '2026'],
    ['2027-01-03T12:00:00Z', PARIS, '2027-01-03', '2026-W53', '2027-01', '2027'],
    ['2027-01-04T12:00:00Z', PARIS, '2027-01-04', '2027-W01', '2027-01', '2027'],
    ['2025-12-29T12:00:00Z', PARIS, '2025-12-29', '2026-W01', '2025-12', '2025'],
    ['2025-12-28T12:00:00Z', PARIS, '2025-12-28', '2025-W52', '2025-12', '2025'],
    ['2021-01-03T12:00:00Z', 'UTC', '2021-01-03', '2020-W53', '2021-01', '2021'],
    ['2028-02-29T23:15:00Z', PARIS, '2028-03-01', '2028-W09', '2028-03', '2028'],
    ['2026-04-30T22:30:00Z', PARIS, '2026-05-01', '2026-W18', '2026-05', '2026'],
    ['2026-04-30T22:30:00Z', 'America/New_York', '2026-04-30', '2026-W18', '2026-04', '2026'],
  ];
  for (const [time, zone, daily, weekly, monthly, yearly] of buckets) {
    it(`${time} in ${zone} is ${daily}, ${weekly}, ${monthly}, ${yearly}`, () => {
      assert.deepEqual({ ...retentionBuckets(new Date(time), zone) }, { daily, weekly, monthly, yearly });
    });
  }
});

describe('planRetention: each rule', () => {
  // UTC, one machine, newest first. ISO weeks: 06-29/06-30 are 2026-W27, 06-22 and 06-28 W26,
  // 06-21 W25, 05-31 W22; 2025-12-31 is in 2026-W01 but calendar year 2025.
  const fixture = [
    snap('a', '2026-06-30T18:00:00Z'),
    snap('b', '2026-06-30T09:00:00Z'),
    snap('c', '2026-06-28T12:00:00Z'),
    snap('d', '2026-06-22T12:00:00Z'),
    snap('e', '2026-06-21T12:00:00Z'),
    snap('f', '2026-05-31T12:00:00Z'),
    snap('g', '2026-05-01T12:00:00Z'),
    snap('h', '2026-04-15T12:00:00Z'),
    snap('i', '2025-12-31T12:00:00Z'),
    snap('j', '2025-01-01T12:00:00Z'),
  ];
  const options = { now: new Date('2026-07-01T00:00:00Z'), timeZone: 'UTC', protectDays: 0 };
  const table: [RetentionPolicy, Record<string, string[]>, string][] = [
    [{ keepLast: 1 }, { a: ['last 1'] }, 'the newest'],
    [{ keepLast: 3 }, { a: ['last 3'], b: ['last 3'], c: ['last 3'] }, 'the three newest'],
    [{ keepLast: 100 }, Object.fromEntries(fixture.map((s) => [s.id, ['last 100']])), 'more than there are: all'],
    [{ daily: 1 }, { a: ['daily 2026-06-30'] }, 'the newest of the newest day'],
    [{ daily: 2 }, { a: ['daily 2026-06-30'], c: ['daily 2026-06-28'] }, 'days without snapshots (06-29) do not count'],
    [{ daily: 4 }, { a: ['daily 2026-06-30'], c: ['daily 2026-06-28'], d: ['daily 2026-06-22'], e: ['daily 2026-06-21'] }, 'four snapshot days span ten calendar days'],
    [{ weekly: 2 }, { a: ['weekly 2026-W27'], c: ['weekly 2026-W26'] }, 'the newest of W26 is Sunday 06-28, not Monday 06-22'],
    [{ weekly: 4 }, { a: ['weekly 2026-W27'], c: ['weekly 2026-W26'], e: ['weekly 2026-W25'], f: ['weekly 2026-W22'] }, 'weeks without snapshots do not count'],
    [{ monthly: 3 }, { a: ['monthly 2026-06'], f: ['monthly 2026-05'], h: ['monthly 2026-04'] }, 'the newest of each month'],
    [{ monthly: 4 }, { a: ['monthly 2026-06'], f: ['monthly 2026-05'], h: ['monthly 2026-04'], i: ['monthly 2025-12'] }, 'months without snapshots do not count'],
    [{ yearly: 2 }, { a: ['yearly 2026'], i: ['yearly 2025'] }, 'calendar years (2025-12-31 is ISO week 2026-W01 but year 2025)'],
    [{ yearly: 3 }, { a: ['yearly 2026'], i: ['yearly 2025'] }, 'no third year: nothing more'],
    [{ within: '1d' }, { a: ['within 1d'], b: ['within 1d'] }, 'everything newer than now − 1 day'],
    [{ within: '36h' }, { a: ['within 36h'], b: ['within 36h'] }, 'hours: 06-29 12:00, c is older'],
    [{ within: '3d' }, { a: ['within 3d'], b: ['within 3d'], c: ['within 3d'] }, 'all within 3 days, several a day'],
    [{ within: '2m' }, Object.fromEntries(['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((id) => [id, ['within 2m']])), 'two calendar months back is 05-01 00:00, g (05-01 12:00) is inside'],
    [{ withinDaily: '3d' }, { a: ['daily 2026-06-30 (within 3d)'], c: ['daily 2026-06-28 (within 3d)'] }, 'one a day inside the window'],
    [{ withinWeekly: '2w' }, { a: ['weekly 2026-W27 (within 2w)'], c: ['weekly 2026-W26 (within 2w)'], e: ['weekly 2026-W25 (within 2w)'] }, 'one a week inside the window'],
    [{ withinMonthly: '3m' }, { a: ['monthly 2026-06 (within 3m)'], f: ['monthly 2026-05 (within 3m)'], h: ['monthly 2026-04 (within 3m)'] }, 'one a month inside the window'],
    [{ withinYearly: '2y' }, { a: ['yearly 2026 (within 2y)'], i: ['yearly 2025 (within 2y)'] }, 'one a year inside the window'],
    [{ withinYearly: '1y' }, { a: ['yearly 2026 (within 1y)'], i: ['yearly 2025 (within 1y)'] }, 'the window bounds the snapshots, not the buckets: j (2025-01-01) is outside it'],
    [{ withinDaily: '1d', daily: 1 }, { a: ['daily 2026-06-30', 'daily 2026-06-30 (within 1d)'] }, 'each rule gives its own reason'],
    [{ keepLast: 1, daily: 2, monthly: 2 }, { a: ['last 1', 'daily 2026-06-30', 'monthly 2026-06'], c: ['daily 2026-06-28'], f: ['monthly 2026-05'] }, 'rules add up; reasons in policy order'],
    [{ monthly: 2, keepLast: 2, within: '1d' }, { a: ['last 2', 'monthly 2026-06', 'within 1d'], b: ['last 2', 'within 1d'], f: ['monthly 2026-05'] }, 'reason order follows the rules, not the object'],
  ];
  for (const [policy, keep, why] of table) {
    it(`${JSON.stringify(policy)}: ${why}`, () => {
      const plan = planRetention(fixture, policy, options);
      const remove = Object.fromEntries(fixture.filter((s) => !(s.id in keep)).map((s) => [s.id, 'not kept by any rule']));
      assert.deepEqual(outcome(plan), { keep, remove });
      assert.deepEqual(plan.keep, fixture.filter((s) => s.id in keep).map((s) => s.id));
      assert.deepEqual(plan.remove, Object.keys(remove));
      for (const d of plan.decisions) if (d.action === 'remove') assert.equal(d.reason.rule, 'unmatched');
    });
  }

  it('rule keys of the reasons name the policy fields', () => {
    const plan = planRetention(fixture, { keepLast: 1, daily: 1, weekly: 1, monthly: 1, yearly: 1, within: '1h', withinDaily: '1d', withinWeekly: '1w', withinMonthly: '1m', withinYearly: '1y' }, { ...options, protectDays: 7 });
    const a = plan.decisions[0];
    assert.ok(a && a.action === 'keep');
    assert.deepEqual(a.reasons.map((r) => r.rule), ['keepLast', 'daily', 'weekly', 'monthly', 'yearly', 'withinDaily', 'withinWeekly', 'withinMonthly', 'withinYearly', 'protected']);
    // "within 1h": a (18:00) is six hours old, so that rule does not keep it.
    assert.ok(!a.reasons.some((r) => r.rule === 'within'));
  });

  it('compares times as instants whatever their offset', () => {
    const plan = planRetention(
      [snap('paris-2000', '2026-06-30T20:00:00+02:00'), snap('utc-1900', '2026-06-30T19:00:00Z'), snap('ny-1430', '2026-06-30T14:30:00-04:00')],
      { keepLast: 1 },
      options,
    );
    // 20:00+02:00 = 18:00Z, 14:30-04:00 = 18:30Z, so 19:00Z is the newest.
    assert.deepEqual(plan.decisions.map((d) => d.id), ['utc-1900', 'ny-1430', 'paris-2000']);
    assert.deepEqual(plan.keep, ['utc-1900']);
  });
});

describe('planRetention: machines, protection, summary, determinism', () => {
  const now = new Date('2026-03-10T12:00:00Z');
  const days = (machineId: string, prefix: string, isoDays: string[]): RetentionSnapshot[] => isoDays.map((d) => snap(`${prefix}${d}`, `2026-${d}T10:00:00Z`, machineId));
  const busy = days('busy', 'busy-', ['03-09', '03-08', '03-07', '03-06', '03-05', '03-04', '03-03']);
  const quiet = days('quiet', 'quiet-', ['02-20', '01-15', '01-10']);

  it('applies the rules to each machine on its own: a plan of two machines is the two plans side by side', () => {
    const policy = { keepLast: 2, daily: 3 };
    const opts = { now, timeZone: 'UTC', protectDays: 0 };
    const both = outcome(planRetention([...busy, ...quiet], policy, opts));
    const alone = [outcome(planRetention(busy, policy, opts)), outcome(planRetention(quiet, policy, opts))];
    assert.deepEqual(both, { keep: { ...alone[0]?.keep, ...alone[1]?.keep }, remove: { ...alone[0]?.remove, ...alone[1]?.remove } });
    // And concretely: the quiet machine keeps its three, although busy has seven newer ones.
    assert.deepEqual(both.keep['quiet-02-20'], ['last 2', 'daily 2026-02-20']);
    assert.deepEqual(both.keep['quiet-01-10'], ['daily 2026-01-10']);
    assert.deepEqual(Object.keys(both.remove).sort(), ['busy-03-03', 'busy-03-04', 'busy-03-05', 'busy-03-06']);
  });

  it('protects everything younger than protectDays, without changing what the rules keep', () => {
    const opts = { now, timeZone: 'UTC', protectDays: 0 };
    const without = outcome(planRetention(busy, { keepLast: 1 }, opts));
    assert.deepEqual(Object.keys(without.keep), ['busy-03-09']);
    const withWindow = outcome(planRetention(busy, { keepLast: 1 }, { ...opts, protectDays: 5 }));
    // now − 5 days = 03-05 12:00: 03-06 … 03-09 are younger (03-05 10:00 is not).
    assert.deepEqual(withWindow.keep, {
      'busy-03-09': ['last 1', 'protected (younger than 5 days)'],
      'busy-03-08': ['protected (younger than 5 days)'],
      'busy-03-07': ['protected (younger than 5 days)'],
      'busy-03-06': ['protected (younger than 5 days)'],
    });
    assert.deepEqual(Object.keys(withWindow.remove), ['busy-03-05', 'busy-03-04', 'busy-03-03']);
    // The window does not use up a rule's buckets: daily 2 still takes 03-09 and 03-08, and
    // only 03-09 is protected (now − 2 days = 03-08 12:00; 03-08 10:00 is older).
    const daily = outcome(planRetention(busy, { daily: 2 }, { ...opts, protectDays: 2 }));
    assert.deepEqual(daily.keep, { 'busy-03-09': ['daily 2026-03-09', 'protected (younger than 2 days)'], 'busy-03-08': ['daily 2026-03-08'] });
    // One day protects nothing here: 03-09 10:00 is 26 hours old. The singular is right.
    const oneDay = planRetention([...busy, snap('busy-03-10', '2026-03-10T10:00:00Z', 'busy')], { daily: 2 }, { ...opts, protectDays: 1 });
    assert.deepEqual(oneDay.decisions.filter((d) => d.action === 'keep' && d.reasons.some((r) => r.rule === 'protected')).map((d) => d.id), ['busy-03-10']);
    assert.equal(oneDay.decisions[0]?.action === 'keep' && oneDay.decisions[0].reasons.at(-1)?.text, 'protected (younger than 1 day)');
  });

  it('protects even what no rule would keep, and a snapshot dated after now', () => {
    const plan = planRetention([snap('future', '2026-03-11T00:00:00Z'), snap('old', '2026-01-01T00:00:00Z')], { keepLast: 1 }, { now, timeZone: 'UTC', protectDays: 7 });
    assert.deepEqual(outcome(plan), { keep: { future: ['last 1', 'protected (younger than 7 days)'] }, remove: { old: 'not kept by any rule' } });
    assert.equal(plan.protectedAfter, '2026-03-03T12:00:00.000Z');
    assert.equal(planRetention([], { keepLast: 1 }, { now, timeZone: 'UTC', protectDays: 0 }).protectedAfter, null);
  });

  it('summarises kept, removed, per rule and per machine', () => {
    const plan = planRetention([...busy, ...quiet], { keepLast: 1, daily: 2 }, { now, timeZone: 'UTC', protectDays: 2 });
    // busy: last 1 → 03-09; daily 2 → 03-09, 03-08; protected (after 03-08 12:00) → 03-09. quiet: last 1 → 02-20; daily 2 → 02-20, 01-15.
    assert.deepEqual(plan.summary.total, 10);
    assert.deepEqual(plan.summary.kept, 4);
    assert.deepEqual(plan.summary.removed, 6);
    assert.deepEqual({ ...plan.summary.byRule }, { ...Object.fromEntries(RETENTION_RULES.map((r) => [r, 0])), keepLast: 2, daily: 4, protected: 1, unmatched: 6 });
    assert.deepEqual(plan.summary.machines, [
      { machineId: 'busy', kept: 2, removed: 5 },
      { machineId: 'quiet', kept: 2, removed: 1 },
    ]);
    assert.deepEqual(plan.keep, ['busy-03-09', 'busy-03-08', 'quiet-02-20', 'quiet-01-15']);
    assert.deepEqual({ ...plan.policy }, { keepLast: 1, daily: 2 });
  });

  it('an empty list gives an empty plan', () => {
    const plan = planRetention([], DEFAULT_RETENTION, { now, timeZone: PARIS, protectDays: 7 });
    assert.deepEqual([plan.decisions, plan.keep, plan.remove, plan.summary.total, plan.summary.machines], [[], [], [], 0, []]);
  });

  it('is deterministic: any input order gives the same plan, newest first then by id', () => {
    const all = [...busy, ...quiet, snap('tie-b', '2026-03-09T10:00:00Z', 'tie'), snap('tie-a', '2026-03-09T10:00:00Z', 'tie')];
    const opts = { now, timeZone: PARIS, protectDays: 3 };
    const reference = planRetention(all, { keepLast: 1, daily: 2, weekly: 2 }, opts);
    assert.deepEqual(reference.decisions.slice(0, 3).map((d) => d.id), ['busy-03-09', 'tie-a', 'tie-b']);
    for (let seed = 1; seed <= 20; seed++) assert.deepEqual(planRetention(shuffled(all, seed), { keepLast: 1, daily: 2, weekly: 2 }, opts), reference);
    // tie-a and tie-b share an instant: the smaller id counts as the newer, so it alone is "last 1".
    assert.deepEqual(outcome(reference).keep['tie-a']?.[0], 'last 1');
    assert.ok(!outcome(reference).keep['tie-b']?.includes('last 1'));
    // The input is not modified.
    assert.deepEqual(all.slice(-2).map((s) => s.id), ['tie-b', 'tie-a']);
  });
});

describe('planRetention: invalid input', () => {
  const ok = { now: new Date('2026-03-10T12:00:00Z'), timeZone: PARIS, protectDays: 7 };
  const one = [snap('s1', '2026-03-01T00:00:00Z')];
  const cases: [string, () => unknown, RegExp][] = [
    ['an unknown time zone', () => planRetention(one, { daily: 1 }, { ...ok, timeZone: 'Europe/Pariss' }), /unknown time zone "Europe\/Pariss"/],
    ['an empty time zone', () => planRetention(one, { daily: 1 }, { ...ok, timeZone: '' }), /unknown time zone ""/],
    ['an invalid now', () => planRetention(one, { daily: 1 }, { ...ok, now: new Date('nope') }), /valid "now"/],
    ['now as a string', () => planRetention(one, { daily: 1 }, { ...ok, now: '2026-03-10T12:00:00Z' as unknown as Date }), /valid "now"/],
    ['a negative protectDays', () => planRetention(one, { daily: 1 }, { ...ok, protectDays: -1 }), /protectDays must be a whole number of days from 0 to 36500, got -1/],
    ['a fractional protectDays', () => planRetention(one, { daily: 1 }, { ...ok, protectDays: 1.5 }), /protectDays must be a whole number.*got 1\.5/],
    ['protectDays as a string', () => planRetention(one, { daily: 1 }, { ...ok, protectDays: '7' as unknown as number }), /protectDays must be a whole number.*got 7/],
    ['snapshots not in an array', () => planRetention({} as unknown as RetentionSnapshot[], { daily: 1 }, ok), /snapshots must be an array/],
    ['a null snapshot', () => planRetention([null as unknown as RetentionSnapshot], { daily: 1 }, ok), /every snapshot must be an object/],
    ['an empty id', () => planRetention([snap('', '2026-03-01T00:00:00Z')], { daily: 1 }, ok), /non-empty id/],
    ['an empty machine id', () => planRetention([snap('s1', '2026-03-01T00:00:00Z', '')], { daily: 1 }, ok), /snapshot "s1" needs a non-empty machineId/],
    ['an id given twice (even on two machines)', () => planRetention([snap('s1', '2026-03-01T00:00:00Z', 'a'), snap('s1', '2026-03-02T00:00:00Z', 'b')], { daily: 1 }, ok), /snapshot id "s1" is given twice/],
    ['a date without a time', () => planRetention([snap('s1', '2026-03-01')], { daily: 1 }, ok), /snapshot "s1" has an invalid time "2026-03-01": expected an ISO 8601 UTC time/],
    ['a time without a zone', () => planRetention([snap('s1', '2026-03-01T10:00:00')], { daily: 1 }, ok), /invalid time "2026-03-01T10:00:00"/],
    ['30 February', () => planRetention([snap('s1', '2026-02-30T10:00:00Z')], { daily: 1 }, ok), /invalid time "2026-02-30T10:00:00Z"/],
    ['29 February in a common year', () => planRetention([snap('s1', '2027-02-29T10:00:00Z')], { daily: 1 }, ok), /invalid time "2027-02-29T10:00:00Z"/],
    ['hour 24', () => planRetention([snap('s1', '2026-03-01T24:00:00Z')], { daily: 1 }, ok), /invalid time "2026-03-01T24:00:00Z"/],
    ['month 13', () => planRetention([snap('s1', '2026-13-01T10:00:00Z')], { daily: 1 }, ok), /invalid time "2026-13-01T10:00:00Z"/],
    ['an offset of 25 hours', () => planRetention([snap('s1', '2026-03-01T10:00:00+25:00')], { daily: 1 }, ok), /invalid time/],
    ['words', () => planRetention([snap('s1', 'yesterday')], { daily: 1 }, ok), /invalid time "yesterday"/],
    ['a number', () => planRetention([snap('s1', 1772323200000 as unknown as string)], { daily: 1 }, ok), /invalid time 1772323200000/],
    ['a policy that keeps nothing', () => planRetention(one, {}, ok), /a retention policy must keep something/],
    ['retentionCutoff with an unknown zone', () => retentionCutoff(new Date(), '1d', 'Nowhere/Land'), /unknown time zone "Nowhere\/Land"/],
    ['retentionBuckets with an unknown zone', () => retentionBuckets(new Date(), 'Mars/Olympus'), /unknown time zone "Mars\/Olympus"/],
    ['retentionCutoff with a bad duration', () => retentionCutoff(new Date(), '1 day', PARIS), /invalid duration "1 day"/],
  ];
  for (const [what, fn, message] of cases) it(`refuses ${what}`, () => expectBadRequest(fn, message));

  it('accepts the valid neighbours of those cases', () => {
    const plan = planRetention(
      [snap('leap', '2028-02-29T10:00:00Z'), snap('frac', '2026-03-01T23:59:59.123456Z'), snap('offset', '2026-03-01T10:00:00+14:00')],
      { keepLast: 3 },
      { ...ok, protectDays: 0 },
    );
    assert.deepEqual(plan.keep, ['leap', 'frac', 'offset']);
  });
});

// ---------------------------------------------------------------------------------------------
// Golden files: test/golden/retention/*.json in the source tree (tsc does not copy them to dist).

interface Golden {
  description: string[];
  policy: RetentionPolicy | 'default';
  now: string;
  timeZone: string;
  protectDays: number;
  snapshots: RetentionSnapshot[];
  expected: { keep: Record<string, string[]>; remove: Record<string, string> };
}

/** The source folder, whether this runs compiled (dist/test/) or from the sources (test/). */
function goldenDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.resolve(here, '../../test/golden/retention'), path.resolve(here, 'golden/retention')];
  const found = candidates.find((d) => existsSync(d));
  assert.ok(found, `golden folder not found; looked in ${candidates.join(', ')}`);
  return found;
}

/** One snapshot and one expectation a line, in the file's snapshot order, so diffs are readable. */
function formatGolden(g: Golden): string {
  const j = (v: unknown): string => JSON.stringify(v);
  const list = (items: string[], indent: string): string[] => items.map((s, i) => indent + s + (i < items.length - 1 ? ',' : ''));
  const order = g.snapshots.map((s) => s.id);
  const keep = order.filter((id) => id in g.expected.keep).map((id) => `${j(id)}: ${j(g.expected.keep[id])}`);
  const remove = order.filter((id) => id in g.expected.remove).map((id) => `${j(id)}: ${j(g.expected.remove[id])}`);
  return [
    '{',
    '  "description": [',
    ...list(g.description.map(j), '    '),
    '  ],',
    `  "policy": ${j(g.policy)},`,
    `  "now": ${j(g.now)},`,
    `  "timeZone": ${j(g.timeZone)},`,
    `  "protectDays": ${j(g.protectDays)},`,
    '  "snapshots": [',
    ...list(g.snapshots.map((s) => j({ id: s.id, machineId: s.machineId, time: s.time })), '    '),
    '  ],',
    '  "expected": {',
    ...(keep.length ? ['    "keep": {', ...list(keep, '      '), '    },'] : ['    "keep": {},']),
    ...(remove.length ? ['    "remove": {', ...list(remove, '      '), '    }'] : ['    "remove": {}']),
    '  }',
    '}',
    '',
  ].join('\n');
}

describe('retention golden files', () => {
  const dir = goldenDir();
  const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  const update = process.env.UPDATE_GOLDEN === '1';

  it('are all there', () => {
    for (const name of [
      'all-rules-combined-utc.json',
      'daily-dst-autumn-paris.json',
      'daily-monthly-apr30-may1-paris.json',
      'daily-weekly-dst-spring-paris.json',
      'default-120-days.json',
      'default-skipped-days-and-stopped-machine.json',
      'monthly-yearly-month-ends-2028.json',
      'per-machine-and-ties.json',
      'protection-window-dst.json',
      'weekly-yearly-iso-week-53.json',
      'within-1d-dst-autumn-paris.json',
      'within-1d-dst-spring-paris.json',
      'within-monthly-month-end-paris.json',
    ]) {
      assert.ok(files.includes(name), `missing golden file ${name}`);
    }
  });

  for (const file of files) {
    it(file, () => {
      const full = path.join(dir, file);
      const g = JSON.parse(readFileSync(full, 'utf8')) as Golden;
      assert.deepEqual(Object.keys(g).sort(), ['description', 'expected', 'now', 'policy', 'protectDays', 'snapshots', 'timeZone'], 'golden file keys');
      assert.ok(Array.isArray(g.description) && g.description.length > 0, 'a golden file explains its expectations');
      const policy = g.policy === 'default' ? DEFAULT_RETENTION : g.policy;
      const options = { now: new Date(g.now), timeZone: g.timeZone, protectDays: g.protectDays };
      const plan = planRetention(g.snapshots, policy, options);
      const actual = outcome(plan);
      if (update) {
        writeFileSync(full, formatGolden({ ...g, expected: actual }));
        return;
      }
      assert.deepEqual(actual, g.expected);
      // Every snapshot is decided exactly once, and the order of the input does not matter.
      assert.equal(Object.keys(actual.keep).length + Object.keys(actual.remove).length, g.snapshots.length);
      assert.deepEqual(planRetention([...g.snapshots].reverse(), policy, options), plan);
      assert.deepEqual(planRetention(shuffled(g.snapshots, 7), policy, options), plan);
      // The file is in the canonical layout, so UPDATE_GOLDEN=1 only shows real changes.
      assert.equal(readFileSync(full, 'utf8'), formatGolden(g), `${file} is not in the canonical layout; run with UPDATE_GOLDEN=1 and review the diff`);
    });
  }
});
