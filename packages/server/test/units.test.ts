import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ListenAddressError, parseListen, urlFor } from '../src/listen.js';
import { InProcessLocks } from '../src/db/engine.js';
import { isValidName } from '../src/names.js';
import { parseRange } from '../src/routes/packs/range.js';
import { CREDENTIAL_PREFIX, ENROLL_TOKEN_PREFIX, hashSecret, looksLikeSecret, newCredential, newEnrollToken } from '../src/secrets.js';

describe('parseListen', () => {
  const ok: [string, string, number, string][] = [
    ['127.0.0.1:8443', '127.0.0.1', 8443, 'https://127.0.0.1:8443'],
    ['0.0.0.0:0', '0.0.0.0', 0, 'https://0.0.0.0:0'],
    ['[::1]:9000', '::1', 9000, 'https://[::1]:9000'],
    ['backup.example.fr:443', 'backup.example.fr', 443, 'https://backup.example.fr:443'],
  ];
  for (const [input, host, port, url] of ok) {
    it(`accepts ${input}`, () => {
      assert.deepEqual(parseListen(input), { host, port });
      assert.equal(urlFor(host, port), url);
    });
  }
  for (const bad of ['8443', '127.0.0.1', '127.0.0.1:', ':8443', '127.0.0.1:70000', '::1:8443', 'a b:1', '127.0.0.1:84x']) {
    it(`refuses ${JSON.stringify(bad)}`, () => assert.throws(() => parseListen(bad), ListenAddressError));
  }
});

describe('parseRange (object of 100 bytes)', () => {
  const cases: [string | undefined, { offset: number; length: number } | null | undefined][] = [
    [undefined, null],
    ['bytes=0-9', { offset: 0, length: 10 }],
    ['bytes=10-10', { offset: 10, length: 1 }],
    ['bytes=90-200', { offset: 90, length: 10 }],
    ['bytes=95-', { offset: 95, length: 5 }],
    ['bytes=-5', { offset: 95, length: 5 }],
    ['bytes=-500', { offset: 0, length: 100 }],
    ['bytes=100-', undefined],
    ['bytes=100-200', undefined],
    ['bytes=5-4', undefined],
    ['bytes=-0', undefined],
    ['bytes=-', undefined],
    ['bytes=0-1,3-4', undefined],
    ['bytes=a-b', undefined],
    ['pages=0-1', undefined],
    ['bytes=1234567890123456-', undefined],
  ];
  for (const [header, expected] of cases) {
    it(`${String(header)} → ${JSON.stringify(expected)}`, () => assert.deepEqual(parseRange(header, 100), expected));
  }
});

describe('names and secrets', () => {
  it('accepts display names and refuses control characters and padding', () => {
    for (const good of ['a', 'Cabinet Dr Martin', 'PC-ACCUEIL.local', 'Laboratoire d’analyses', 'x'.repeat(128)]) assert.ok(isValidName(good), good);
    for (const bad of ['', ' a', 'a ', 'a\nb', 'a\tb', '\u0000', 'x'.repeat(129)]) assert.ok(!isValidName(bad), JSON.stringify(bad));
  });
  it('mints prefixed 256-bit secrets and recognises their shape only', () => {
    const t = newEnrollToken();
    const c = newCredential();
    assert.ok(looksLikeSecret(t, ENROLL_TOKEN_PREFIX) && !looksLikeSecret(t, CREDENTIAL_PREFIX));
    assert.ok(looksLikeSecret(c, CREDENTIAL_PREFIX));
    assert.notEqual(newCredential(), c);
    assert.equal(hashSecret(c).length, 64);
    assert.ok(!looksLikeSecret(`${c}x`, CREDENTIAL_PREFIX));
  });
});

describe('InProcessLocks', () => {
  it('serialises sections with the same key and not others', async () => {
    const mutex = new InProcessLocks();
    const events: string[] = [];
    const section = (key: string, name: string, ms: number) =>
      mutex.run(key, async () => {
        events.push(`${name}+`);
        await new Promise((r) => setTimeout(r, ms));
        events.push(`${name}-`);
      });
    await Promise.all([section('a', 'a1', 20), section('a', 'a2', 1), section('b', 'b1', 5)]);
    assert.deepEqual(events.filter((e) => e.startsWith('a')), ['a1+', 'a1-', 'a2+', 'a2-']);
    assert.ok(events.indexOf('b1-') < events.indexOf('a1-'), 'another key must not wait');
  });
  it('releases the lock when a section throws', async () => {
    const mutex = new InProcessLocks();
    await assert.rejects(mutex.run('k', async () => Promise.reject(new Error('boom'))));
    assert.equal(await mutex.run('k', async () => 42), 42);
  });
});
