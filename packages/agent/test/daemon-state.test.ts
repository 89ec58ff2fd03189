import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DaemonStateStore, EMPTY_STATE, keepJobs, parseState, withJobDone, withRestoreTestDone } from '../src/daemon/state.js';

const t = (s: string) => new Date(s);

test('state transitions are pure and record the scheduled time, the result and when', () => {
  const a = withJobDone(EMPTY_STATE, 'soir', t('2025-06-01T20:00:00Z'), 'success', t('2025-06-01T20:03:00Z'));
  assert.deepEqual(EMPTY_STATE.jobs, {}, 'the input is not changed');
  assert.deepEqual(a.jobs.soir, { lastCompleted: '2025-06-01T20:00:00.000Z', lastResult: 'success', lastRunAt: '2025-06-01T20:03:00.000Z' });
  const b = withRestoreTestDone(a, t('2025-06-01T10:00:00Z'), 'failed', t('2025-06-01T10:01:00Z'));
  assert.equal(b.restoreTest?.lastResult, 'failed');
  assert.deepEqual(keepJobs(withJobDone(b, 'midi', t('2025-06-01T10:00:00Z'), 'success', t('2025-06-01T10:00:00Z')), ['midi']).jobs.soir, undefined);
});

test('parseState: round trip; unknown versions and garbage refused; bad entries dropped', () => {
  const s = withJobDone(EMPTY_STATE, 'soir', t('2025-06-01T20:00:00Z'), 'success', t('2025-06-01T20:03:00Z'));
  assert.deepEqual(parseState(JSON.stringify(s)), s);
  assert.throws(() => parseState('{"v":2,"jobs":{}}'));
  assert.throws(() => parseState('not json'));
  const dropped = parseState('{"v":1,"jobs":{"a":{"lastCompleted":"yesterday-ish"},"b":{"lastCompleted":"2025-06-01T20:00:00Z"}},"restoreTest":null}');
  assert.deepEqual(Object.keys(dropped.jobs), ['b']);
});

test('DaemonStateStore: atomic save (mode 0600, no temporary file left), load, damaged file moved aside', () => {
  const dir = mkdtempSync(join(tmpdir(), 'coffre-state-'));
  try {
    const store = new DaemonStateStore(dir);
    assert.deepEqual(store.load(), { state: EMPTY_STATE, problem: null });
    const s = withJobDone(EMPTY_STATE, 'soir', t('2025-06-01T20:00:00Z'), 'success', t('2025-06-01T20:03:00Z'));
    store.save(s);
    assert.deepEqual(readdirSync(dir), ['daemon-state.json']);
    assert.equal(statSync(store.file).mode & 0o777, 0o600);
    assert.deepEqual(store.load().state, s);
    writeFileSync(store.file, '{"v":1,"jobs":');
    const r = store.load();
    assert.deepEqual(r.state, EMPTY_STATE);
    assert.match(r.problem ?? '', /could not be read/);
    assert.ok(existsSync(`${store.file}.damaged`));
    assert.equal(readFileSync(`${store.file}.damaged`, 'utf8'), '{"v":1,"jobs":');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
