import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { hash as argon2Hash } from '@node-rs/argon2';
import { base32Decode, DEFAULT_ARGON2 } from '@coffre/core';
import { dictionary } from '@zxcvbn-ts/language-common';
import { checkPassword, PASSWORD_PROBLEM_MESSAGES, PASSWORD_PROBLEMS } from '../src/auth/password-policy.js';
import type { PasswordProblem } from '../src/auth/password-policy.js';
import { argon2Params, dummyVerify, hashPassword, needsRehash, verifyPassword } from '../src/auth/passwords.js';
import { hashRecoveryCode, newRecoveryCodes, normaliseRecoveryCode, RECOVERY_ALPHABET } from '../src/auth/recovery-codes.js';
import { newTotpSecret, otpauthUri, totpCode, totpSecretToBase32, totpStep, verifyTotp } from '../src/auth/totp.js';

const CHEAP_ARGON2 = '256,1,1';
process.env.COFFRE_TEST_ARGON2 = CHEAP_ARGON2;

/** Runs `fn` with COFFRE_TEST_ARGON2 set to `value` (unset when undefined), then restores the cheap setting. */
async function withArgon2Env<T>(value: string | undefined, fn: () => T | Promise<T>): Promise<T> {
  if (value === undefined) delete process.env.COFFRE_TEST_ARGON2;
  else process.env.COFFRE_TEST_ARGON2 = value;
  try {
    return await fn();
  } finally {
    process.env.COFFRE_TEST_ARGON2 = CHEAP_ARGON2;
  }
}

describe('TOTP', () => {
  // RFC 6238 appendix B, SHA-1 column: 8-digit values; the 6-digit code is the value mod 10^6.
  const RFC_SECRET = Buffer.from('12345678901234567890', 'ascii');
  const RFC_VECTORS: [number, string][] = [
    [59, '94287082'],
    [1111111109, '07081804'],
    [1111111111, '14050471'],
    [1234567890, '89005924'],
    [2000000000, '69279037'],
    [20000000000, '65353130'],
  ];
  const sixDigits = (eight: string): string => String(Number(eight) % 1e6).padStart(6, '0');

  for (const [seconds, eight] of RFC_VECTORS) {
    it(`matches RFC 6238 at T=${seconds}`, () => {
      const code = totpCode(RFC_SECRET, totpStep(seconds * 1000));
      assert.equal(code, sixDigits(eight));
      assert.deepEqual(verifyTotp(RFC_SECRET, code, seconds * 1000, null), { ok: true, step: Math.floor(seconds / 30) });
    });
  }

  it('keeps leading zeros (RFC value 07081804)', () => {
    const code = totpCode(RFC_SECRET, totpStep(1111111109 * 1000));
    assert.equal(code.length, 6);
    assert.match(code, /^0/);
  });

  it('cuts steps every 30 seconds', () => {
    assert.equal(totpStep(0), 0);
    assert.equal(totpStep(29_999), 0);
    assert.equal(totpStep(30_000), 1);
    assert.equal(totpStep(59_999), 1);
  });

  it('mints 160-bit secrets and encodes them as unpadded RFC 4648 base32', () => {
    const a = newTotpSecret();
    assert.equal(a.length, 20);
    assert.notDeepEqual(newTotpSecret(), a);
    const b32 = totpSecretToBase32(a);
    assert.match(b32, /^[A-Z2-7]{32}$/);
    assert.deepEqual(base32Decode(b32), a);
    // RFC 4648 §10 alphabet applied to the RFC 6238 secret, as authenticator apps compute it.
    assert.equal(totpSecretToBase32(RFC_SECRET), 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ');
  });

  const secret = newTotpSecret();
  const now = 1_700_000_012_345;
  const N = totpStep(now);

  it('accepts the previous, current and next step with window 1 and returns the step matched', () => {
    for (const d of [-1, 0, 1]) {
      assert.deepEqual(verifyTotp(secret, totpCode(secret, N + d), now, null), { ok: true, step: N + d }, `offset ${d}`);
    }
  });

  it('refuses steps outside the window', () => {
    for (const d of [-3, -2, 2, 3]) {
      assert.deepEqual(verifyTotp(secret, totpCode(secret, N + d), now, null), { ok: false, reason: 'invalid' }, `offset ${d}`);
    }
    assert.deepEqual(verifyTotp(secret, totpCode(secret, N - 1), now, null, 0), { ok: false, reason: 'invalid' });
    assert.deepEqual(verifyTotp(secret, totpCode(secret, N - 2), now, null, 2), { ok: true, step: N - 2 });
  });

  it('refuses a code made with another secret', () => {
    const other = newTotpSecret();
    const code = totpCode(other, N);
    // One chance in a million that the other secret yields the same code at some step of the window.
    const collides = [N - 1, N, N + 1].some((s) => totpCode(secret, s) === code);
    assert.equal(verifyTotp(secret, code, now, null).ok, collides);
  });

  it('refuses a code used twice', () => {
    const code = totpCode(secret, N);
    const first = verifyTotp(secret, code, now, null);
    assert.ok(first.ok);
    assert.deepEqual(verifyTotp(secret, code, now, first.step), { ok: false, reason: 'replayed' });
    assert.deepEqual(verifyTotp(secret, code, now + 29_000, first.step), { ok: false, reason: 'replayed' });
  });

  it('refuses an older code after a newer one, accepts a newer one after an older one', () => {
    assert.deepEqual(verifyTotp(secret, totpCode(secret, N - 1), now, N), { ok: false, reason: 'replayed' });
    assert.deepEqual(verifyTotp(secret, totpCode(secret, N + 1), now, N), { ok: true, step: N + 1 });
    assert.deepEqual(verifyTotp(secret, totpCode(secret, N), now, N - 1), { ok: true, step: N });
  });

  it('strips spaces from the input', () => {
    const code = totpCode(secret, N);
    for (const typed of [`${code.slice(0, 3)} ${code.slice(3)}`, ` ${code} `, `${code.slice(0, 2)}\t${code.slice(2)}`]) {
      assert.deepEqual(verifyTotp(secret, typed, now, null), { ok: true, step: N }, JSON.stringify(typed));
    }
  });

  it('calls anything but 6 digits malformed', () => {
    const code = totpCode(secret, N);
    for (const bad of ['', '     ', code.slice(0, 5), `${code}0`, 'abcdef', `${code.slice(0, 5)}x`, `-${code.slice(1)}`, `${code.slice(0, 5)}\uff11`, `${code.slice(0, 3)}-${code.slice(3)}`]) {
      assert.deepEqual(verifyTotp(secret, bad, now, null), { ok: false, reason: 'malformed' }, JSON.stringify(bad));
    }
  });

  it('builds an otpauth URI that apps and URL parsers read back', () => {
    const s = newTotpSecret();
    const issuer = 'Coffre Santé & Co';
    const account = 'dr.martin+2fa@cabinet:accueil.fr';
    const uri = otpauthUri({ secret: s, account, issuer });
    assert.ok(!uri.includes(' ') && !uri.includes('+'), uri);
    const u = new URL(uri);
    assert.equal(u.protocol, 'otpauth:');
    assert.equal(u.host, 'totp');
    const label = u.pathname.slice(1);
    assert.equal(label.split(':').length, 2, 'only the issuer separator is a literal colon');
    assert.deepEqual(label.split(':').map(decodeURIComponent), [issuer, account]);
    assert.equal(u.searchParams.get('secret'), totpSecretToBase32(s));
    assert.equal(u.searchParams.get('issuer'), issuer);
    assert.equal(u.searchParams.get('algorithm'), 'SHA1');
    assert.equal(u.searchParams.get('digits'), '6');
    assert.equal(u.searchParams.get('period'), '30');
  });
});

describe('checkPassword', () => {
  const who = { email: 'hd-secretariat@cabinet.fr', name: 'Hélène Dupont' };
  const cases: [string, string, { email: string; name: string }, PasswordProblem[]][] = [
    ['a good passphrase', 'correct horse battery staple', who, []],
    ['too short', 'pluie 7', who, ['too_short']],
    ['11 accented code points', 'éèêëàâîïôûù', who, ['too_short']],
    ['12 accented code points', 'éèêëàâîïôûùç', who, []],
    ['11 emoji (22 UTF-16 units)', '🔒'.repeat(11), who, ['too_short']],
    ['12 emoji', '🔒'.repeat(12), who, []],
    ['11 decomposed é (22 code points before NFC)', 'e\u0301'.repeat(11), who, ['too_short']],
    ['12 decomposed é', 'e\u0301'.repeat(12), who, []],
    ['256 code points', 'pluie verte '.repeat(22).slice(0, 255) + '🔒', who, []],
    ['257 code points', 'pluie verte '.repeat(22).slice(0, 256) + '🔒', who, ['too_long']],
    ['common with trailing digits and symbols', 'password2024!!!', who, ['common']],
    ['common in capitals', 'PASSWORD2024!!!', who, ['common']],
    ['common with trailing digits', 'sunshine12345', who, ['common']],
    ['common with trailing spaced year', 'sunshine 2024 !', who, ['common']],
    ['common word followed by letters', 'sunshine blue kettle', who, []],
    ['a stem shorter than 4 is not checked', 'abc123456789!', who, []],
    ['first name without accents', 'jaimehelene2024', who, ['contains_name']],
    ['first name in capitals with accents', 'Jaime HÉLÈNE beaucoup', who, ['contains_name']],
    ['last name', 'le-grand-dupont-42', who, ['contains_name']],
    ['name given decomposed', 'jaimehelene2024', { ...who, name: 'He\u0301le\u0300ne Dupont' }, ['contains_name']],
    ['name parts under 3 letters are ignored', 'lilies are jolly', { ...who, name: 'Jo Li' }, []],
    ['hyphenated first name part', 'pierre qui roule', { ...who, name: 'Jean-Pierre Roux' }, ['contains_name']],
    ['email local part', 'moi HD-Secretariat ici', who, ['contains_email']],
    ['short local part alone is allowed', 'hd and a long phrase', { ...who, email: 'hd@cab.fr' }, []],
    ['short local part: whole email refused', 'write to HD@cab.fr now', { ...who, email: 'hd@cab.fr' }, ['contains_email']],
    ['several problems at once', 'dupont', who, ['too_short', 'common', 'contains_name']],
  ];
  for (const [title, password, person, expected] of cases) {
    it(`${title} → ${JSON.stringify(expected)}`, () => assert.deepEqual(checkPassword(password, person), expected));
  }

  it('refuses the long entries of the bundled list, in any case', () => {
    const long = dictionary['passwords-common'].filter((p) => [...p].length >= 12).slice(0, 20);
    assert.ok(long.length > 0);
    for (const p of long) {
      assert.ok(checkPassword(p, who).includes('common'), p);
      assert.ok(checkPassword(p.toUpperCase(), who).includes('common'), p.toUpperCase());
    }
  });

  it('has an English and a French message for every problem', () => {
    assert.deepEqual(Object.keys(PASSWORD_PROBLEM_MESSAGES).sort(), [...PASSWORD_PROBLEMS].sort());
    const all = new Set<string>();
    for (const p of PASSWORD_PROBLEMS) {
      const { en, fr } = PASSWORD_PROBLEM_MESSAGES[p];
      assert.ok(en.length > 10 && fr.length > 10 && en !== fr, p);
      all.add(en).add(fr);
    }
    assert.equal(all.size, 2 * PASSWORD_PROBLEMS.length, 'messages are distinct');
  });
});

describe('password hashing', () => {
  it('reads COFFRE_TEST_ARGON2 as "m,t,p" and defaults to 64 MiB, 3 passes, 1 lane', async () => {
    assert.deepEqual(argon2Params(), { m: 256, t: 1, p: 1 });
    const defaults = await withArgon2Env(undefined, argon2Params);
    assert.deepEqual(defaults, { m: 65536, t: 3, p: 1 });
    assert.ok(DEFAULT_ARGON2.m >= 256 * 1024, 'key slots cost at least 256 MiB');
    for (const bad of ['256,1', '256,1,1,1', 'a,b,c', '4,1,1', '256,0,1', '16,1,4', '256.5,1,1']) {
      await withArgon2Env(bad, () => assert.throws(() => argon2Params(), /COFFRE_TEST_ARGON2/, bad));
    }
  });

  it('round-trips a password into an Argon2id PHC string with a fresh salt', async () => {
    const pw = 'correct horse battery staple';
    const h = await hashPassword(pw);
    assert.match(h, /^\$argon2id\$v=19\$m=256,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    assert.equal(await verifyPassword(h, pw), true);
    assert.notEqual(await hashPassword(pw), h);
  });

  it('refuses a wrong password', async () => {
    const h = await hashPassword('correct horse battery staple');
    for (const wrong of ['correct horse battery stapl', 'Correct horse battery staple', '', 'correct horse battery staple ']) {
      assert.equal(await verifyPassword(h, wrong), false, JSON.stringify(wrong));
    }
  });

  it('verifies the same password typed composed or decomposed', async () => {
    const h = await hashPassword('Hélène aime la pluie');
    assert.equal(await verifyPassword(h, 'He\u0301le\u0300ne aime la pluie'), true);
  });

  it('returns false, never throws, on a malformed stored hash', async () => {
    const good = await hashPassword('pw');
    const malformed = ['', 'abc', '$argon2id$v=19$m=256,t=1,p=1$xx$yy', good.slice(0, -10), good.replace('$argon2id$', '$argon2xx$'), '$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW'];
    for (const stored of malformed) {
      assert.equal(await verifyPassword(stored, 'pw'), false, JSON.stringify(stored));
    }
  });

  it('asks for a rehash when the algorithm or cost differs from the current one', async () => {
    const h = await hashPassword('pw');
    assert.equal(needsRehash(h), false);
    await withArgon2Env('512,1,1', () => assert.equal(needsRehash(h), true));
    await withArgon2Env('256,2,1', () => assert.equal(needsRehash(h), true));
    await withArgon2Env(undefined, () => assert.equal(needsRehash(h), true));
    const argon2i = await argon2Hash('pw', { algorithm: 1, memoryCost: 256, timeCost: 1, parallelism: 1 });
    assert.equal(needsRehash(argon2i), true);
    const longer = await argon2Hash('pw', { algorithm: 2, memoryCost: 256, timeCost: 1, parallelism: 1, outputLen: 64 });
    assert.equal(needsRehash(longer), true);
    assert.equal(needsRehash('not a hash'), true);
  });

  it('dummyVerify costs about what a real verification costs', async () => {
    // A cost high enough for timer noise not to matter; a dummyVerify that skipped the work would take ~0 ms.
    await withArgon2Env('16384,2,1', async () => {
      const h = await hashPassword('the real one');
      assert.equal(await dummyVerify('warm-up: builds the dummy hash'), undefined);
      const time = async (fn: () => Promise<unknown>): Promise<number> => {
        const t0 = process.hrtime.bigint();
        for (let i = 0; i < 4; i++) await fn();
        return Number(process.hrtime.bigint() - t0);
      };
      const real = await time(() => verifyPassword(h, 'a guess'));
      const dummy = await time(() => dummyVerify('a guess'));
      assert.ok(dummy > real * 0.4, `dummy ${dummy} ns vs real ${real} ns`);
    });
  });
});

describe('recovery codes', () => {
  const SHAPE = new RegExp(`^[${RECOVERY_ALPHABET}]{4}-[${RECOVERY_ALPHABET}]{4}-[${RECOVERY_ALPHABET}]{4}$`);

  it('uses an unambiguous alphabet giving at least 55 bits per code', () => {
    assert.equal(new Set(RECOVERY_ALPHABET).size, RECOVERY_ALPHABET.length);
    for (const c of '0o1li') assert.ok(!RECOVERY_ALPHABET.includes(c), c);
    assert.equal(RECOVERY_ALPHABET, RECOVERY_ALPHABET.toLowerCase());
    assert.ok(12 * Math.log2(RECOVERY_ALPHABET.length) >= 55);
  });

  it('mints distinct, well-formed codes, 10 by default', () => {
    assert.equal(newRecoveryCodes().length, 10);
    assert.equal(newRecoveryCodes(3).length, 3);
    const all: string[] = [];
    for (let i = 0; i < 300; i++) all.push(...newRecoveryCodes());
    for (const c of all) assert.match(c, SHAPE);
    assert.equal(new Set(all).size, all.length);
    for (const n of [0, -1, 1.5, 101]) assert.throws(() => newRecoveryCodes(n), RangeError, String(n));
  });

  it('draws every symbol about equally often', () => {
    const counts = new Map<string, number>();
    const codes: string[] = [];
    for (let i = 0; i < 1000; i++) codes.push(...newRecoveryCodes());
    for (const c of codes.join('').replace(/-/g, '')) counts.set(c, (counts.get(c) ?? 0) + 1);
    const expected = (codes.length * 12) / RECOVERY_ALPHABET.length;
    assert.equal(counts.size, RECOVERY_ALPHABET.length);
    // ~3900 draws per symbol, standard deviation ~62: ±20 % is over 12 deviations.
    for (const [c, n] of counts) assert.ok(Math.abs(n - expected) < expected * 0.2, `${c}: ${n} vs ${expected}`);
  });

  it('normalises what users type', () => {
    assert.equal(normaliseRecoveryCode(' K7Q2 M9XP-4TZW '), 'k7q2-m9xp-4tzw');
    assert.equal(normaliseRecoveryCode('k7q2m9xp4tzw'), 'k7q2-m9xp-4tzw');
    assert.equal(normaliseRecoveryCode('k7-q2m9 -xp4t\tzw'), 'k7q2-m9xp-4tzw');
    for (const c of newRecoveryCodes()) assert.equal(normaliseRecoveryCode(c.toUpperCase().replace(/-/g, ' ')), c);
  });

  it('rejects bad characters and lengths', () => {
    for (const bad of ['', 'k7q2-m9xp-4tz', 'k7q2-m9xp-4tzwa', 'k7q0-m9xp-4tzw', 'k7qo-m9xp-4tzw', 'k7q1-m9xp-4tzw', 'k7ql-m9xp-4tzw', 'k7qi-m9xp-4tzw', 'k7q2_m9xp_4tzw', 'k7q2-m9xp-4tzé', 'k7q2.m9xp.4tzw']) {
      assert.equal(normaliseRecoveryCode(bad), null, JSON.stringify(bad));
    }
  });

  it('hashes the canonical form with SHA-256', () => {
    const h = hashRecoveryCode(' K7Q2 M9XP-4TZW ');
    assert.equal(h, createHash('sha256').update('k7q2-m9xp-4tzw').digest('hex'));
    assert.equal(hashRecoveryCode('k7q2-m9xp-4tzw'), h);
    assert.notEqual(hashRecoveryCode('k7q2-m9xp-4tzx'), h);
    assert.throws(() => hashRecoveryCode('k7q2-m9xp-4tz0'));
  });
});
