import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clearThrottle, recordFailure, throttleKey, waitFor } from '../src/db/queries/throttle.js';
import { DEFAULT_AUTH_THROTTLE } from '../src/datadir.js';
import type { OrgRow } from '../src/db/queries/orgs.js';
import { mayGrant, ROLE_ACTIONS, ROLES, ROLES_BY_ORG_TYPE, roleAllows, USER_ACTIONS } from '../src/http/roles.js';
import { reviewDueAt, reviewOverdue } from '../src/routes/access-review/report.js';
import { newTemporaryPassword } from '../src/secrets.js';
import { ServerKeys } from '../src/auth/server-key.js';
import { testDatabase } from './kit.js';

describe('roles', () => {
  it('the auditor holds no permission that changes anything', () => {
    const writes = USER_ACTIONS.filter((a) => !/:(read|verify)$/.test(a));
    for (const w of writes) assert.equal(roleAllows('auditor', w), false, w);
    assert.equal(roleAllows('auditor', 'audit:read'), true);
  });
  it('only the operator-admin holds every permission; customer roles never verify the global chain', () => {
    for (const r of ROLES) assert.equal(USER_ACTIONS.every((a) => roleAllows(r, a)), r === 'operator-admin', r);
    assert.equal(roleAllows('customer-admin', 'audit:verify'), false);
    assert.ok(ROLE_ACTIONS['customer-viewer'].every((a) => a.endsWith(':read')));
  });
  const grants: [Parameters<typeof mayGrant>[0], Parameters<typeof mayGrant>[1], Parameters<typeof mayGrant>[2], boolean][] = [
    ['operator-admin', 'operator-admin', 'operator', true],
    ['operator-admin', 'reseller-admin', 'reseller', true],
    ['operator-admin', 'reseller-admin', 'customer', false], // not a customer role
    ['reseller-admin', 'operator-admin', 'operator', false],
    ['reseller-admin', 'reseller-admin', 'reseller', true],
    ['reseller-admin', 'customer-admin', 'customer', true],
    ['customer-admin', 'customer-viewer', 'customer', true],
    ['customer-admin', 'reseller-admin', 'reseller', false],
    ['customer-admin', 'technician', 'customer', false],
    ['technician', 'customer-viewer', 'customer', false],
    ['auditor', 'auditor', 'customer', false],
  ];
  for (const [granter, role, type, ok] of grants) {
    it(`${granter} ${ok ? 'may' : 'may not'} give ${role} in a ${type} organisation`, () => assert.equal(mayGrant(granter, role, type), ok));
  }
  it('every role belongs to at least one organisation type', () => {
    for (const r of ROLES) assert.ok(Object.values(ROLES_BY_ORG_TYPE).some((list) => list.includes(r)), r);
  });
});

describe('guessing protection (throttle)', () => {
  it('free failures, then doubling delays, then a 15-minute lock; success clears the account key', async () => {
    const t = await testDatabase();
    const db = t.db;
    try {
      const key = throttleKey('account', 'Someone@Example.fr');
      assert.equal(key, 'account:someone@example.fr');
      const t0 = Date.parse('2026-03-02T09:00:00Z');
      const at = (s: number) => new Date(t0 + s * 1000);
      const waits: number[] = [];
      for (let i = 1; i <= DEFAULT_AUTH_THROTTLE.accountLockAfter; i++) {
        await recordFailure(db, DEFAULT_AUTH_THROTTLE, 'account', key, at(i));
        waits.push(Math.round((await waitFor(db, key, at(i))) / 1000));
      }
      // 3 free failures, then 1, 2, 4, 8, 16, 32 s; the 10th locks for 15 minutes.
      assert.deepEqual(waits, [0, 0, 1, 2, 4, 8, 16, 32, 60, 900]);
      assert.equal(await waitFor(db, key, at(10 + 901)), 0, 'the lock ends');
      await clearThrottle(db, key);
      assert.equal(await waitFor(db, key, at(11)), 0);
    } finally {
      await t.close();
    }
  });
  it('failures older than the window are forgotten', async () => {
    const t = await testDatabase();
    const db = t.db;
    try {
      const key = throttleKey('ip', '10.0.0.1');
      const t0 = Date.parse('2026-03-02T09:00:00Z');
      for (let i = 0; i < 9; i++) await recordFailure(db, DEFAULT_AUTH_THROTTLE, 'ip', key, new Date(t0 + i));
      assert.equal(await waitFor(db, key, new Date(t0 + 10)), 0, '9 failures from an IP are free');
      await recordFailure(db, DEFAULT_AUTH_THROTTLE, 'ip', key, new Date(t0 + 16 * 60_000));
      assert.equal(await waitFor(db, key, new Date(t0 + 16 * 60_000)), 0, 'a new window starts from one failure');
    } finally {
      await t.close();
    }
  });
});

describe('access review due dates', () => {
  const org = { created_at: '2026-01-01T00:00:00.000Z' } as OrgRow;
  it('is due six months after creation when never reviewed, then six months after each review', () => {
    assert.equal(reviewDueAt(org, null), '2026-07-02T00:00:00.000Z');
    assert.equal(reviewOverdue(org, null, new Date('2026-07-01T23:59:59Z')), false);
    assert.equal(reviewOverdue(org, null, new Date('2026-07-02T00:00:00Z')), true);
    const last = { reviewedAt: '2026-06-30T10:00:00.000Z', reviewedBy: 'u', reviewerName: 'A' };
    assert.equal(reviewOverdue(org, last, new Date('2026-12-01T00:00:00Z')), false);
    assert.equal(reviewOverdue(org, last, new Date('2026-12-29T10:00:00Z')), true);
  });
});

describe('server secrets', () => {
  it('temporary passwords: 4 groups of 5 unambiguous characters, all different', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const p = newTemporaryPassword();
      assert.match(p, /^[a-hjkmnp-z2-9]{5}(-[a-hjkmnp-z2-9]{5}){3}$/);
      seen.add(p);
    }
    assert.equal(seen.size, 500);
  });
  it('sealed values open only with the same key and purpose; CSRF tokens are per session', () => {
    const k = new ServerKeys(Buffer.alloc(32, 7));
    const sealed = k.seal(Buffer.from('totp secret'), 'totp:u1');
    assert.equal(k.open(sealed, 'totp:u1').toString(), 'totp secret');
    assert.throws(() => k.open(sealed, 'totp:u2'));
    assert.throws(() => new ServerKeys(Buffer.alloc(32, 8)).open(sealed, 'totp:u1'));
    const flipped = sealed.slice(0, -2) + (sealed.endsWith('A') ? 'BB' : 'AA');
    assert.throws(() => k.open(flipped, 'totp:u1'));
    assert.notEqual(k.csrfToken('cfs_a'), k.csrfToken('cfs_b'));
    assert.equal(k.csrfMatches('cfs_a', k.csrfToken('cfs_a')), true);
    assert.equal(k.csrfMatches('cfs_a', k.csrfToken('cfs_b')), false);
    assert.equal(k.csrfMatches('cfs_a', undefined), false);
  });
});
