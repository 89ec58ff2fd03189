import { test } from 'node:test';
import assert from 'node:assert/strict';
import { catchUpDue, latestDue, retryBeforeNext, retryDelayMs } from '../src/daemon/timing.js';

const at = (s: string) => new Date(s);
const daily22Paris = { schedule: '0 22 * * *', timezone: 'Europe/Paris' };
const everyMinute = { schedule: '* * * * *', timezone: 'UTC' };

test('latestDue: several missed times collapse into the latest one', () => {
  const due = latestDue(everyMinute, at('2025-03-10T10:00:30Z'), at('2025-03-10T10:05:10Z'));
  assert.equal(due?.toISOString(), '2025-03-10T10:05:00.000Z');
});

test('latestDue: nothing due between two scheduled times, and the bound "after" is exclusive', () => {
  assert.equal(latestDue(everyMinute, at('2025-03-10T10:05:00Z'), at('2025-03-10T10:05:59Z')), null);
  assert.equal(latestDue(everyMinute, at('2025-03-10T10:04:59Z'), at('2025-03-10T10:05:00Z'))?.toISOString(), '2025-03-10T10:05:00.000Z', 'a time equal to now is due');
});

test('latestDue: a schedule in Paris stays at 22:00 local across the spring daylight-saving change', () => {
  // 2025-03-30: clocks go from UTC+1 to UTC+2.
  assert.equal(latestDue(daily22Paris, at('2025-03-29T12:00:00Z'), at('2025-03-29T23:00:00Z'))?.toISOString(), '2025-03-29T21:00:00.000Z');
  assert.equal(latestDue(daily22Paris, at('2025-03-30T12:00:00Z'), at('2025-03-30T23:00:00Z'))?.toISOString(), '2025-03-30T20:00:00.000Z');
});

test('catchUpDue: a task never completed catches nothing up (a new job waits for its time)', () => {
  assert.equal(catchUpDue(daily22Paris, null, at('2025-06-02T08:00:00Z'), 7 * 86_400_000), null);
});

test('catchUpDue: the run missed while the daemon was down is caught up once, the latest only', () => {
  // Completed Friday 22:00 Paris; down all weekend; back Monday 08:00 UTC.
  const due = catchUpDue(daily22Paris, at('2025-05-30T20:00:00Z'), at('2025-06-02T08:00:00Z'), 7 * 86_400_000);
  assert.equal(due?.toISOString(), '2025-06-01T20:00:00.000Z', 'Sunday 22:00 Paris, not Saturday too');
});

test('catchUpDue: nothing when the last scheduled time was completed (a restart does not repeat it)', () => {
  assert.equal(catchUpDue(daily22Paris, at('2025-06-01T20:00:00Z'), at('2025-06-02T08:00:00Z'), 7 * 86_400_000), null);
});

test('catchUpDue: a missed time older than the window is not caught up; window 0 turns catch-up off', () => {
  const weekly = { schedule: '0 22 * * 5', timezone: 'Europe/Paris' };
  // Last completed Friday 2025-05-23; Friday 2025-05-30 22:00 Paris was missed; back Monday 08:00 UTC, 58 h later.
  assert.equal(catchUpDue(weekly, at('2025-05-23T20:00:00Z'), at('2025-06-02T08:00:00Z'), 48 * 3_600_000), null, 'missed 58 h ago, window 48 h');
  assert.equal(catchUpDue(weekly, at('2025-05-23T20:00:00Z'), at('2025-06-02T08:00:00Z'), 7 * 86_400_000)?.toISOString(), '2025-05-30T20:00:00.000Z');
  assert.equal(catchUpDue(weekly, at('2025-05-23T20:00:00Z'), at('2025-06-02T08:00:00Z'), 0), null);
});

test('retryDelayMs: 1, 2, 4, 8… times the base, capped, spread by ±10 %', () => {
  const mid = () => 0.5;
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map((n) => retryDelayMs(n, 60_000, 1_800_000, mid)), [60_000, 120_000, 240_000, 480_000, 960_000, 1_800_000, 1_800_000]);
  assert.equal(retryDelayMs(1, 60_000, 1_800_000, () => 0), 54_000);
  assert.ok(retryDelayMs(1, 60_000, 1_800_000, () => 0.999999) <= 66_000);
  assert.equal(retryDelayMs(1000, 1000, 5000, mid), 5000, 'huge attempt numbers do not overflow');
});

test('retryBeforeNext: retries stop at the next scheduled time', () => {
  const scheduled = at('2025-06-02T10:05:00Z');
  assert.equal(retryBeforeNext(everyMinute, scheduled, at('2025-06-02T10:05:59Z')), true);
  assert.equal(retryBeforeNext(everyMinute, scheduled, at('2025-06-02T10:06:00Z')), false);
  assert.equal(retryBeforeNext(daily22Paris, at('2025-06-01T20:00:00Z'), at('2025-06-02T19:59:00Z')), true);
});
