/** Property-based tests of key-slot opening and recovery-key parsing: key slots come from the server, recovery keys from people. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  CoffreError,
  base32Encode,
  formatRecoveryKey,
  keysEqual,
  makePassphraseSlot,
  makeRecoverySlot,
  newMasterKey,
  newRecoveryKey,
  openWithPassphrase,
  openWithRecoveryKey,
  parseRecoveryKey,
  type KeySlot,
} from '../src/index.js';
import { fuzzParams, mutate, mutation } from './fuzz.js';

async function orError<T>(codes: ReadonlySet<string>, f: () => T | Promise<T>): Promise<T | CoffreError> {
  try {
    return await f();
  } catch (e) {
    if (!(e instanceof CoffreError) || !codes.has(e.code)) throw new Error(`unexpected error: ${String(e)}`, { cause: e });
    return e;
  }
}

const RECOVERY_ERRORS = new Set(['WRONG_RECOVERY_KEY']);
const SLOT_ERRORS = new Set(['WRONG_RECOVERY_KEY', 'WRONG_PASSPHRASE', 'NO_KEY', 'FORMAT']);
const raw32 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b));

test('recovery key round trip, whatever the case, spacing and dashes people type', async () => {
  await fc.assert(
    fc.asyncProperty(raw32, fc.constantFrom('as-is', 'lower', 'spaces', 'nodash', 'padded'), async (raw, style) => {
      let text = formatRecoveryKey(raw);
      if (style === 'lower') text = text.toLowerCase();
      if (style === 'spaces') text = ` ${text.replace(/-/g, ' ')}\n`;
      if (style === 'nodash') text = base32Encode(raw);
      if (style === 'padded') text = `${base32Encode(raw)}====`;
      assert.ok(keysEqual(parseRecoveryKey(text), raw));
    }),
    fuzzParams(300),
  );
});

test('recovery key parsing: arbitrary text (unicode included) is a 32-byte key or WRONG_RECOVERY_KEY', async () => {
  const text = fc.oneof(
    fc.string({ maxLength: 80 }),
    fc.string({ unit: 'binary', maxLength: 80 }),
    fc.tuple(raw32, mutation).map(([raw, m]) => mutate(Buffer.from(formatRecoveryKey(raw), 'latin1'), m).out.toString('latin1')),
  );
  await fc.assert(
    fc.asyncProperty(text, async (t) => {
      const r = await orError(RECOVERY_ERRORS, () => parseRecoveryKey(t));
      if (!(r instanceof CoffreError)) assert.equal(r.length, 32);
    }),
    fuzzParams(2000),
  );
});

const master = newMasterKey();
const recovery = newRecoveryKey();
const recoverySlot = makeRecoverySlot(master, recovery.raw);
const cheap = { m: 8, t: 1, p: 1 };
const passphrase = 'correct horse';
const passphraseSlotP = makePassphraseSlot(master, passphrase, cheap);

/** A slot with one field (or one field of its kdf) replaced by anything: what a hostile or broken server could send. */
function tamperedSlot(base: fc.Arbitrary<KeySlot>): fc.Arbitrary<unknown> {
  const anyValue = fc.oneof(
    fc.jsonValue({ maxDepth: 2 }),
    fc.constantFrom(null, 0, -1, 1, 2, '', 'AAAA', 'argon2id', 'hkdf-sha256', 'passphrase', 'recovery', 1e9, [], { toString: 0 }, 'AAAAAAAAAAAAAAAAAAAAAA=='),
  );
  // Argon2 costs stay small: the maximum allowed (4 GiB) is a real cost, not a parser bug.
  const smallCost = fc.record({ m: fc.integer({ min: -1, max: 64 }), t: fc.integer({ min: -1, max: 2 }), p: fc.integer({ min: -1, max: 17 }) });
  return fc.oneof(
    fc.tuple(base, fc.constantFrom('v', 'id', 'kind', 'kdf', 'nonce', 'wrapped', 'created'), anyValue).map(([s, f, v]) => ({ ...s, [f]: v })),
    fc.tuple(base, fc.constantFrom('alg', 'salt', 'm', 't', 'p'), anyValue).map(([s, f, v]) => ({ ...s, kdf: { ...s.kdf, [f]: v } })),
    fc.tuple(base, smallCost).map(([s, c]) => ({ ...s, kdf: { ...s.kdf, ...c } })),
    fc.tuple(base, fc.constantFrom('nonce', 'wrapped', 'salt'), mutation).map(([s, f, m]) => {
      const src = f === 'salt' ? s.kdf.salt : s[f];
      const out = mutate(Buffer.from(src, 'base64'), m).out.toString('base64');
      return f === 'salt' ? { ...s, kdf: { ...s.kdf, salt: out } } : { ...s, [f]: out };
    }),
    fc.jsonValue({ maxDepth: 2 }),
  ).map((s) => JSON.parse(JSON.stringify(s)) as unknown); // as the agent receives slots: JSON
}

test('recovery slots from the server: the right key opens an intact slot; anything else is a CoffreError', async () => {
  await fc.assert(
    fc.asyncProperty(tamperedSlot(fc.constant(recoverySlot)), fc.boolean(), async (slot, withGood) => {
      const slots = (withGood ? [slot, recoverySlot] : [slot]) as KeySlot[];
      const r = await orError(SLOT_ERRORS, () => openWithRecoveryKey(slots, recovery.text));
      if (!(r instanceof CoffreError)) assert.ok(keysEqual(r, master), 'a slot opened to a wrong key');
      if (withGood) assert.ok(!(r instanceof CoffreError), 'a bad slot hid the good one');
    }),
    fuzzParams(500),
  );
});

test('passphrase slots from the server: the right passphrase opens an intact slot; anything else is a CoffreError', async () => {
  const good = await passphraseSlotP;
  await fc.assert(
    fc.asyncProperty(tamperedSlot(fc.constant(good)), async (slot) => {
      const r = await orError(SLOT_ERRORS, () => openWithPassphrase([slot as KeySlot], passphrase));
      if (!(r instanceof CoffreError)) assert.ok(keysEqual(r, master), 'a slot opened to a wrong key');
    }),
    fuzzParams(300),
  );
});

test('a wrong passphrase or recovery key never opens a slot', async () => {
  const good = await passphraseSlotP;
  await fc.assert(
    fc.asyncProperty(fc.string({ minLength: 1, maxLength: 30 }), raw32, async (pp, raw) => {
      fc.pre(pp !== passphrase && pp.normalize('NFC') !== passphrase);
      const a = await orError(SLOT_ERRORS, () => openWithPassphrase([good], pp));
      assert.ok(a instanceof CoffreError && a.code === 'WRONG_PASSPHRASE');
      const b = await orError(SLOT_ERRORS, () => openWithRecoveryKey([recoverySlot], formatRecoveryKey(raw)));
      assert.ok(b instanceof CoffreError && b.code === 'WRONG_RECOVERY_KEY');
    }),
    fuzzParams(100),
  );
});
