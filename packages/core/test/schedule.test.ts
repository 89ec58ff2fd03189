import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BACKUP_STATUS_SEVERITY, CoffreError, customerStatus, earliestNextRun, machineStatus, nextRunAfter, parseSchedule, worstStatus, type BackupStatus, type MachineStatusInput } from '../src/index.js';

const PARIS = 'Europe/Paris';
const at = (iso: string): Date => new Date(iso);
const iso = (d: Date | null): string | null => (d === null ? null : d.toISOString());

/** The next `n` runs of a schedule strictly after `after`, as ISO strings. */
function runs(schedule: string, timezone: string, after: string, n: number): string[] {
  const out: string[] = [];
  let t: Date | null = at(after);
  for (let i = 0; i < n; i++) {
    t = nextRunAfter({ schedule, timezone }, t);
    if (t === null) break;
    out.push(t.toISOString());
  }
  return out;
}

/** The calendar date (YYYY-MM-DD) of an instant in a time zone. */
function localDate(isoTime: string, timeZone: string): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(at(isoTime));
}

function expectBadRequest(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CoffreError, `expected a CoffreError, got ${String(e)}`);
    assert.equal(e.code, 'BAD_REQUEST');
    assert.match(e.message, message);
    return true;
  });
}

describe('parseSchedule', () => {
  const valid: [expression: string, timezone: string, normalised: string][] = [
    ['0 22 * * 1-5', PARIS, '0 22 * * 1-5'],
    ['  0   22 * *  1-5 ', PARIS, '0 22 * * 1-5'],
    ['0\t22\t*  *\t*', PARIS, '0 22 * * *'],
    ['*/15 * * * *', 'UTC', '*/15 * * * *'],
    ['30 2 1,15 * *', 'America/New_York', '30 2 1,15 * *'],
    ['0 1 31 * *', 'Asia/Tokyo', '0 1 31 * *'],
    ['0 22 * * 0', PARIS, '0 22 * * 0'],
    ['59 23 31 12 6', PARIS, '59 23 31 12 6'],
    ['@daily', PARIS, '@daily'],
    ['@weekly', PARIS, '@weekly'],
    ['@monthly', PARIS, '@monthly'],
    ['@hourly', PARIS, '@hourly'],
    ['  @daily  ', PARIS, '@daily'],
  ];
  for (const [expression, timezone, normalised] of valid) {
    it(`accepts ${JSON.stringify(expression)} in ${timezone} as ${JSON.stringify(normalised)}`, () => {
      assert.equal(parseSchedule(expression, timezone), normalised);
    });
  }

  const invalid: [what: string, expression: string, timezone: string, message: RegExp][] = [
    ['six fields (seconds)', '0 0 22 * * *', PARIS, /invalid schedule "0 0 22 \* \* \*".*five fields/],
    ['six fields (year)', '0 22 1 1 * 2027', PARIS, /invalid schedule "0 22 1 1 \* 2027".*five fields/],
    ['four fields', '0 22 * *', PARIS, /invalid schedule "0 22 \* \*".*five fields/],
    ['one word of garbage', 'garbage', PARIS, /invalid schedule "garbage".*five fields/],
    ['an empty string', '', PARIS, /invalid schedule "".*five fields/],
    ['blanks only', '   ', PARIS, /five fields/],
    ['an unknown nickname', '@reboot', PARIS, /invalid schedule "@reboot".*five fields/],
    ['five fields of garbage', 'a b c d e', PARIS, /invalid schedule "a b c d e".*illegal characters/],
    ['minute 60', '60 * * * *', PARIS, /invalid schedule "60 \* \* \* \*".*minute/],
    ['hour 24', '0 24 * * *', PARIS, /invalid schedule "0 24 \* \* \*".*hour/],
    ['day of month 32', '0 0 32 * *', PARIS, /invalid schedule "0 0 32 \* \*": the day-of-month \(1-31\) field is out of range$/],
    ['day of month 0', '0 0 0 * *', PARIS, /invalid schedule "0 0 0 \* \*".*day/],
    ['month 13', '0 0 * 13 *', PARIS, /invalid schedule "0 0 \* 13 \*": the month \(1-12\) field is out of range$/],
    ['day of week 8', '0 0 * * 8', PARIS, /invalid schedule "0 0 \* \* 8".*day-of-week \(0-7/],
    ['an unknown time zone', '0 22 * * *', 'Mars/Olympus', /unknown time zone "Mars\/Olympus".*IANA/],
    ['a misspelt time zone', '0 22 * * *', 'Europe/Pariss', /unknown time zone "Europe\/Pariss"/],
    ['an empty time zone', '0 22 * * *', '', /unknown time zone ""/],
  ];
  for (const [what, expression, timezone, message] of invalid) {
    it(`rejects ${what}: BAD_REQUEST naming the problem`, () => {
      expectBadRequest(() => parseSchedule(expression, timezone), message);
      // The run-time functions refuse it the same way rather than guessing.
      expectBadRequest(() => nextRunAfter({ schedule: expression, timezone }, at('2026-03-02T09:00:00Z')), message);
    });
  }
});

describe('nextRunAfter', () => {
  it('"0 22 * * *" in Paris is 21:00Z in winter, 20:00Z in summer (spring forward 2026-03-29)', () => {
    assert.deepEqual(runs('0 22 * * *', PARIS, '2026-03-27T12:00:00Z', 4), [
      '2026-03-27T21:00:00.000Z',
      '2026-03-28T21:00:00.000Z',
      '2026-03-29T20:00:00.000Z',
      '2026-03-30T20:00:00.000Z',
    ]);
  });

  it('"0 22 * * *" in Paris goes back to 21:00Z after the fall back (2026-10-25)', () => {
    assert.deepEqual(runs('0 22 * * *', PARIS, '2026-10-23T12:00:00Z', 4), [
      '2026-10-23T20:00:00.000Z',
      '2026-10-24T20:00:00.000Z',
      '2026-10-25T21:00:00.000Z',
      '2026-10-26T21:00:00.000Z',
    ]);
  });

  it('"30 2 * * *" on 2026-03-29 (02:30 does not exist in Paris): at most once that day, after the gap, then 00:30Z the next day', () => {
    const r = runs('30 2 * * *', PARIS, '2026-03-27T12:00:00Z', 5);
    assert.equal(r[0], '2026-03-28T01:30:00.000Z', 'the day before: 02:30 CET');
    const thatDay = r.filter((t) => localDate(t, PARIS) === '2026-03-29');
    assert.ok(thatDay.length <= 1, `fires at most once on the day of the change, got ${thatDay.join(', ')}`);
    for (const t of thatDay) {
      // 01:00Z is 03:00 CEST, the first instant after the gap; nothing later than 03:30 CEST.
      assert.ok(t >= '2026-03-29T01:00:00.000Z' && t <= '2026-03-29T01:30:00.000Z', `sane time on the day of the change: ${t}`);
    }
    const nextDay = r.filter((t) => localDate(t, PARIS) === '2026-03-30');
    assert.deepEqual(nextDay, ['2026-03-30T00:30:00.000Z'], '02:30 CEST the day after');
    assert.ok(r.includes('2026-03-31T00:30:00.000Z'));
    assert.deepEqual([...r].sort(), r, 'runs are increasing');
  });

  it('"30 2 * * *" on 2026-10-25 (02:30 happens twice in Paris) fires once, not twice', () => {
    const r = runs('30 2 * * *', PARIS, '2026-10-24T12:00:00Z', 3);
    const thatDay = r.filter((t) => localDate(t, PARIS) === '2026-10-25');
    assert.equal(thatDay.length, 1, `once on the day of the change, got ${thatDay.join(', ')}`);
    assert.ok(['2026-10-25T00:30:00.000Z', '2026-10-25T01:30:00.000Z'].includes(thatDay[0]!), `one of the two 02:30s: ${thatDay[0]}`);
    assert.equal(r[1], '2026-10-26T01:30:00.000Z', '02:30 CET the day after');
    assert.equal(r[2], '2026-10-27T01:30:00.000Z');
  });

  it('"0 1 31 * *" skips the months without a 31st', () => {
    assert.deepEqual(runs('0 1 31 * *', PARIS, '2026-03-01T00:00:00Z', 5), [
      '2026-03-30T23:00:00.000Z', // 31 March 01:00 CEST
      '2026-05-30T23:00:00.000Z',
      '2026-07-30T23:00:00.000Z',
      '2026-08-30T23:00:00.000Z',
      '2026-10-31T00:00:00.000Z', // 31 October 01:00 CET, after the fall back
    ]);
  });

  it('"0 22 * * 1-5" skips the weekend', () => {
    // 2026-03-05 is a Thursday.
    assert.deepEqual(runs('0 22 * * 1-5', PARIS, '2026-03-05T12:00:00Z', 4), [
      '2026-03-05T21:00:00.000Z',
      '2026-03-06T21:00:00.000Z',
      '2026-03-09T21:00:00.000Z',
      '2026-03-10T21:00:00.000Z',
    ]);
  });

  it('nicknames mean what cron means, in the given zone', () => {
    const after = '2026-03-02T09:00:00Z'; // Monday, CET
    assert.deepEqual(runs('@hourly', PARIS, after, 2), ['2026-03-02T10:00:00.000Z', '2026-03-02T11:00:00.000Z']);
    assert.deepEqual(runs('@daily', PARIS, after, 1), ['2026-03-02T23:00:00.000Z']);
    assert.deepEqual(runs('@weekly', PARIS, after, 1), ['2026-03-07T23:00:00.000Z'], 'Sunday 00:00 CET');
    assert.deepEqual(runs('@monthly', PARIS, after, 1), ['2026-03-31T22:00:00.000Z'], '1 April 00:00 CEST');
  });

  it('is strictly after the given time, to the millisecond', () => {
    const s = { schedule: '0 22 * * *', timezone: PARIS };
    assert.equal(iso(nextRunAfter(s, at('2026-03-02T20:59:59.999Z'))), '2026-03-02T21:00:00.000Z');
    assert.equal(iso(nextRunAfter(s, at('2026-03-02T21:00:00.000Z'))), '2026-03-03T21:00:00.000Z');
    assert.equal(iso(nextRunAfter(s, at('2026-03-02T21:00:00.001Z'))), '2026-03-03T21:00:00.000Z');
  });

  it('reads the same expression in each zone', () => {
    const after = '2026-03-02T09:00:00Z';
    assert.deepEqual(runs('0 22 * * *', 'UTC', after, 1), ['2026-03-02T22:00:00.000Z']);
    assert.deepEqual(runs('0 22 * * *', 'America/New_York', after, 1), ['2026-03-03T03:00:00.000Z']);
    assert.deepEqual(runs('0 22 * * *', 'Asia/Tokyo', after, 1), ['2026-03-02T13:00:00.000Z']);
  });

  it('parseSchedule refuses a schedule that never fires (February 30th); nextRunAfter just finds no run', () => {
    expectBadRequest(() => parseSchedule('0 0 30 2 *', PARIS), /invalid schedule "0 0 30 2 \*": it never fires/);
  });

  it('returns null for a valid schedule that never fires', () => {
    assert.equal(nextRunAfter({ schedule: '0 0 30 2 *', timezone: PARIS }, at('2026-01-01T00:00:00Z')), null);
  });
});

describe('earliestNextRun', () => {
  const paris = { schedule: '0 22 * * *', timezone: PARIS }; // 21:00Z in March
  const utcNoon = { schedule: '0 12 * * *', timezone: 'UTC' };
  const tokyo = { schedule: '0 6 * * *', timezone: 'Asia/Tokyo' }; // 21:00Z the day before
  const never = { schedule: '0 0 30 2 *', timezone: PARIS };

  const cases: [what: string, schedules: (typeof paris)[], after: string, expected: string | null][] = [
    ['no schedule', [], '2026-03-02T09:00:00Z', null],
    ['only a schedule that never fires', [never], '2026-03-02T09:00:00Z', null],
    ['one schedule', [paris], '2026-03-02T09:00:00Z', '2026-03-02T21:00:00.000Z'],
    ['three zones, UTC noon first', [paris, utcNoon, tokyo], '2026-03-02T09:00:00Z', '2026-03-02T12:00:00.000Z'],
    ['three zones in another order', [tokyo, paris, utcNoon], '2026-03-02T09:00:00Z', '2026-03-02T12:00:00.000Z'],
    ['three zones after noon: Paris and Tokyo tie', [utcNoon, paris, tokyo], '2026-03-02T13:00:00Z', '2026-03-02T21:00:00.000Z'],
    ['three zones after 21:00Z: noon next day', [paris, tokyo, utcNoon], '2026-03-02T21:30:00Z', '2026-03-03T12:00:00.000Z'],
    ['a never-firing schedule is ignored', [never, paris], '2026-03-02T09:00:00Z', '2026-03-02T21:00:00.000Z'],
    ['after the spring forward: Paris moves, Tokyo does not', [paris, tokyo], '2026-03-29T12:00:00Z', '2026-03-29T20:00:00.000Z'],
  ];
  for (const [what, schedules, after, expected] of cases) {
    it(what, () => {
      assert.equal(iso(earliestNextRun(schedules, at(after))), expected);
    });
  }
});

describe('machineStatus', () => {
  const daily = { schedule: '0 22 * * *', timezone: PARIS }; // 2026-03-02T21:00Z, 2026-03-03T21:00Z…
  const GRACE = 3 * 3_600_000;
  const base: MachineStatusInput = {
    schedules: [daily],
    lastSuccessAt: null,
    latestRunFailed: false,
    since: at('2026-03-02T09:00:00Z'),
    graceMs: GRACE,
    now: at('2026-03-02T10:00:00Z'),
  };
  const status = (patch: Partial<MachineStatusInput>) => {
    const s = machineStatus({ ...base, ...patch });
    return { status: s.status, overdue: s.overdue, missedAt: iso(s.missedAt), nextExpectedAt: iso(s.nextExpectedAt) };
  };

  const cases: [what: string, patch: Partial<MachineStatusInput>, expected: ReturnType<typeof status>][] = [
    [
      'failed beats everything, even without a schedule',
      { latestRunFailed: true, schedules: [] },
      { status: 'failed', overdue: false, missedAt: null, nextExpectedAt: null },
    ],
    [
      'failed beats overdue and never (overdue still reported for the missed alert)',
      { latestRunFailed: true, now: at('2026-03-03T06:00:00Z') },
      { status: 'failed', overdue: true, missedAt: '2026-03-02T21:00:00.000Z', nextExpectedAt: '2026-03-03T21:00:00.000Z' },
    ],
    [
      'failed beats ok',
      { latestRunFailed: true, lastSuccessAt: at('2026-03-02T09:30:00Z') },
      { status: 'failed', overdue: false, missedAt: null, nextExpectedAt: '2026-03-02T21:00:00.000Z' },
    ],
    ['no schedule, never backed up', { schedules: [] }, { status: 'no_schedule', overdue: false, missedAt: null, nextExpectedAt: null }],
    [
      'no schedule, backed up long ago: never late',
      { schedules: [], lastSuccessAt: at('2026-01-01T00:00:00Z'), now: at('2026-06-01T00:00:00Z') },
      { status: 'no_schedule', overdue: false, missedAt: null, nextExpectedAt: null },
    ],
    ['never, nothing due yet', {}, { status: 'never', overdue: false, missedAt: null, nextExpectedAt: '2026-03-02T21:00:00.000Z' }],
    [
      'never, first run within its grace',
      { now: at('2026-03-02T23:59:59.999Z') },
      { status: 'never', overdue: false, missedAt: null, nextExpectedAt: '2026-03-03T21:00:00.000Z' },
    ],
    [
      'never and overdue: missed the first run after since',
      { now: at('2026-03-03T00:00:00.001Z') },
      { status: 'never', overdue: true, missedAt: '2026-03-02T21:00:00.000Z', nextExpectedAt: '2026-03-03T21:00:00.000Z' },
    ],
    [
      'never, since is after today\'s run: tomorrow\'s is the first owed',
      { since: at('2026-03-02T21:30:00Z'), now: at('2026-03-03T06:00:00Z') },
      { status: 'never', overdue: false, missedAt: null, nextExpectedAt: '2026-03-03T21:00:00.000Z' },
    ],
    [
      'ok: backed up, next run not due yet',
      { lastSuccessAt: at('2026-03-02T09:30:00Z') },
      { status: 'ok', overdue: false, missedAt: null, nextExpectedAt: '2026-03-02T21:00:00.000Z' },
    ],
    [
      'ok: the run is past but within the grace',
      { lastSuccessAt: at('2026-03-02T09:30:00Z'), now: at('2026-03-02T23:00:00Z') },
      { status: 'ok', overdue: false, missedAt: null, nextExpectedAt: '2026-03-03T21:00:00.000Z' },
    ],
    [
      'ok at exactly scheduled time + grace',
      { lastSuccessAt: at('2026-03-02T09:30:00Z'), now: at('2026-03-03T00:00:00.000Z') },
      { status: 'ok', overdue: false, missedAt: null, nextExpectedAt: '2026-03-03T21:00:00.000Z' },
    ],
    [
      'late one millisecond after scheduled time + grace',
      { lastSuccessAt: at('2026-03-02T09:30:00Z'), now: at('2026-03-03T00:00:00.001Z') },
      { status: 'late', overdue: true, missedAt: '2026-03-02T21:00:00.000Z', nextExpectedAt: '2026-03-03T21:00:00.000Z' },
    ],
    [
      'late: missedAt is the first run after the last success, not the latest one',
      { lastSuccessAt: at('2026-03-02T21:05:00Z'), now: at('2026-03-05T08:00:00Z') },
      { status: 'late', overdue: true, missedAt: '2026-03-03T21:00:00.000Z', nextExpectedAt: '2026-03-05T21:00:00.000Z' },
    ],
    [
      'the last success counts, not since',
      { since: at('2026-01-01T00:00:00Z'), lastSuccessAt: at('2026-03-02T21:05:00Z'), now: at('2026-03-03T08:00:00Z') },
      { status: 'ok', overdue: false, missedAt: null, nextExpectedAt: '2026-03-03T21:00:00.000Z' },
    ],
    [
      'zero grace: late one millisecond after the scheduled time',
      { graceMs: 0, lastSuccessAt: at('2026-03-02T09:30:00Z'), now: at('2026-03-02T21:00:00.001Z') },
      { status: 'late', overdue: true, missedAt: '2026-03-02T21:00:00.000Z', nextExpectedAt: '2026-03-03T21:00:00.000Z' },
    ],
    [
      'several schedules: the earliest one owed decides',
      {
        schedules: [daily, { schedule: '0 12 * * *', timezone: 'UTC' }],
        lastSuccessAt: at('2026-03-02T09:30:00Z'),
        now: at('2026-03-02T15:00:00.001Z'),
      },
      { status: 'late', overdue: true, missedAt: '2026-03-02T12:00:00.000Z', nextExpectedAt: '2026-03-02T21:00:00.000Z' },
    ],
    [
      'a schedule that never fires owes nothing',
      { schedules: [{ schedule: '0 0 30 2 *', timezone: PARIS }], now: at('2027-01-01T00:00:00Z') },
      { status: 'never', overdue: false, missedAt: null, nextExpectedAt: null },
    ],
  ];
  for (const [what, patch, expected] of cases) {
    it(what, () => {
      assert.deepEqual(status(patch), expected);
    });
  }

  it('uses the grace it is given', () => {
    const patch = { lastSuccessAt: at('2026-03-02T09:30:00Z'), now: at('2026-03-02T22:00:00Z') }; // one hour after the run
    assert.equal(status({ ...patch, graceMs: 59 * 60_000 }).status, 'late');
    assert.equal(status({ ...patch, graceMs: 60 * 60_000 }).status, 'ok');
  });
});

describe('worstStatus', () => {
  // Most severe first, written out independently of BACKUP_STATUS_SEVERITY.
  const ORDER: BackupStatus[] = ['failed', 'late', 'never', 'no_schedule', 'ok'];

  it('is never for no status at all (a customer without machines)', () => {
    assert.equal(worstStatus([]), 'never');
    assert.equal(worstStatus(new Set<BackupStatus>()), 'never');
  });

  it('is the status itself for one status', () => {
    for (const s of ORDER) assert.equal(worstStatus([s]), s);
  });

  const table: [BackupStatus[], BackupStatus][] = [
    [['ok', 'ok'], 'ok'],
    [['ok', 'no_schedule'], 'no_schedule'],
    [['no_schedule', 'never'], 'never'],
    [['ok', 'never', 'ok'], 'never'],
    [['never', 'late'], 'late'],
    [['ok', 'late', 'no_schedule'], 'late'],
    [['late', 'failed'], 'failed'],
    [['ok', 'ok', 'ok', 'failed'], 'failed'],
    [['ok', 'no_schedule', 'never', 'late', 'failed'], 'failed'],
    [['failed', 'late', 'never', 'no_schedule', 'ok'], 'failed'],
  ];
  for (const [input, expected] of table) {
    it(`[${input.join(', ')}] → ${expected}`, () => {
      assert.equal(worstStatus(input), expected);
      assert.equal(worstStatus([...input].reverse()), expected, 'whatever the order');
    });
  }

  it('every pair, both ways, gives the more severe one', () => {
    for (const a of ORDER) {
      for (const b of ORDER) {
        const expected = ORDER.indexOf(a) <= ORDER.indexOf(b) ? a : b;
        assert.equal(worstStatus([a, b]), expected, `${a} vs ${b}`);
        assert.equal(worstStatus([b, a]), expected, `${b} vs ${a}`);
      }
    }
  });

  it('takes any iterable', () => {
    function* gen(): Generator<BackupStatus> {
      yield 'ok';
      yield 'late';
      yield 'no_schedule';
    }
    assert.equal(worstStatus(gen()), 'late');
  });

  it('BACKUP_STATUS_SEVERITY sorts most severe first (the dashboard order)', () => {
    const sorted = (Object.keys(BACKUP_STATUS_SEVERITY) as BackupStatus[]).sort((x, y) => BACKUP_STATUS_SEVERITY[x] - BACKUP_STATUS_SEVERITY[y]);
    assert.deepEqual(sorted, ORDER);
  });
});

describe('customerStatus: the worst of the active machines', () => {
  const mk = (status: BackupStatus, revoked = false, lastSuccessAt: string | null = null) => ({ status, revoked, lastSuccessAt });
  const cases: [what: string, machines: ReturnType<typeof mk>[], expected: BackupStatus][] = [
    ['no machine at all', [], 'never'],
    ['one ok machine', [mk('ok', false, '2026-03-01T00:00:00Z')], 'ok'],
    ['a revoked failed machine does not make a healthy customer failed', [mk('ok', false, '2026-03-01T00:00:00Z'), mk('failed', true)], 'ok'],
    ['a revoked machine that never backed up does not make it never', [mk('ok'), mk('never', true)], 'ok'],
    ['active machines: the worst wins', [mk('ok'), mk('late'), mk('no_schedule')], 'late'],
    ['only revoked machines, with backups: nothing will back it up', [mk('failed', true, '2026-03-01T00:00:00Z')], 'no_schedule'],
    ['only revoked machines, never backed up', [mk('never', true)], 'never'],
  ];
  for (const [what, machines, expected] of cases) {
    it(what, () => assert.equal(customerStatus(machines), expected));
  }
});
