import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  WebAuthnError,
  authenticationOptions,
  credentialIdOf,
  registrationOptions,
  verifyAuthentication,
  verifyRegistration,
} from '../src/auth/webauthn.js';
import type { RelyingParty, StoredCredential, WebAuthnFailure } from '../src/auth/webauthn.js';
import { SoftAuthenticator, encodeCbor } from './soft-authenticator.js';
import type { AuthenticationJSON, Cbor, RegistrationJSON } from './soft-authenticator.js';

const rp: RelyingParty = { id: 'backup.example.fr', name: 'Coffre', origin: 'https://backup.example.fr:8443' };
const ORIGIN = rp.origin;
const user = { id: 'usr_1', email: 'martin@cabinet.example', name: 'Dr Martin' };

/** Asserts a WebAuthnError of the given kind (and so not a TypeError or a library Error). */
async function refused(p: Promise<unknown>, kind: WebAuthnFailure): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof WebAuthnError, `expected a WebAuthnError, got ${String(e)}`);
    assert.equal(e.kind, kind);
    return true;
  });
}

async function enrol(auth = new SoftAuthenticator(), at = ORIGIN, party = rp): Promise<StoredCredential> {
  const { options, challenge } = await registrationOptions(party, user, []);
  return verifyRegistration(party, auth.register(options, at), challenge);
}

async function assertion(auth: SoftAuthenticator, allow: readonly StoredCredential[], at = ORIGIN): Promise<{ response: AuthenticationJSON; challenge: string }> {
  const { options, challenge } = await authenticationOptions(rp, allow);
  return { response: auth.authenticate(options, at), challenge };
}

const clone = <T>(v: T): T => structuredClone(v);
const b64 = (s: string): Buffer => Buffer.from(s, 'base64url');

function editClientData(r: { response: { clientDataJSON: string } }, edit: (cd: Record<string, unknown>) => void): void {
  const cd = JSON.parse(b64(r.response.clientDataJSON).toString('utf8')) as Record<string, unknown>;
  edit(cd);
  r.response.clientDataJSON = Buffer.from(JSON.stringify(cd)).toString('base64url');
}

describe('webauthn options', () => {
  it('registration options carry the policy and a fresh challenge', async () => {
    const stored: StoredCredential = { id: 'AAEC', publicKey: new Uint8Array([1]), counter: 0, transports: ['usb', 'bogus'] };
    const a = await registrationOptions(rp, user, [stored]);
    const b = await registrationOptions(rp, user, []);
    const o = a.options as {
      challenge: string;
      rp: unknown;
      user: unknown;
      attestation: string;
      authenticatorSelection: { residentKey: string; requireResidentKey: boolean; userVerification: string };
      pubKeyCredParams: { alg: number }[];
      excludeCredentials: unknown[];
    };
    assert.equal(o.challenge, a.challenge);
    assert.notEqual(a.challenge, b.challenge);
    assert.ok(b64(a.challenge).length >= 16, 'challenge has at least 128 bits');
    assert.deepEqual(o.rp, { name: 'Coffre', id: 'backup.example.fr' });
    assert.deepEqual(o.user, { id: Buffer.from('usr_1').toString('base64url'), name: user.email, displayName: user.name });
    assert.equal(o.attestation, 'none');
    assert.equal(o.authenticatorSelection.residentKey, 'discouraged');
    assert.equal(o.authenticatorSelection.requireResidentKey, false);
    assert.equal(o.authenticatorSelection.userVerification, 'preferred');
    assert.deepEqual(
      o.pubKeyCredParams.map((p) => p.alg),
      [-7, -257],
    );
    assert.deepEqual(o.excludeCredentials, [{ id: 'AAEC', transports: ['usb'], type: 'public-key' }]);
    assert.deepEqual((b.options as { excludeCredentials: unknown[] }).excludeCredentials, []);
    // JSON-safe: what the browser receives is what we built.
    assert.deepEqual(JSON.parse(JSON.stringify(a.options)), a.options);
  });

  it('authentication options list the allowed credentials', async () => {
    const stored = await enrol();
    const { options, challenge } = await authenticationOptions(rp, [stored]);
    const o = options as { challenge: string; rpId: string; userVerification: string; allowCredentials: { id: string; type: string }[] };
    assert.equal(o.challenge, challenge);
    assert.equal(o.rpId, rp.id);
    assert.equal(o.userVerification, 'preferred');
    assert.deepEqual(
      o.allowCredentials.map((c) => [c.id, c.type]),
      [[stored.id, 'public-key']],
    );
  });
});

describe('webauthn registration', () => {
  it('round trip with an ES256 software authenticator', async () => {
    const auth = new SoftAuthenticator();
    const stored = await enrol(auth);
    assert.equal(stored.id, auth.credentialId);
    assert.equal(stored.counter, 0);
    assert.deepEqual(stored.transports, ['usb']);
    assert.ok(stored.publicKey instanceof Uint8Array && stored.publicKey.length > 64);
  });

  it('accepts RS256 and refuses EdDSA (not in the offered algorithms)', async () => {
    const rsa = new SoftAuthenticator({ alg: 'RS256' });
    const stored = await enrol(rsa);
    const { response, challenge } = await assertion(rsa, [stored]);
    assert.deepEqual(await verifyAuthentication(rp, response, challenge, stored), { newCounter: 1 });

    // A real browser would not even ask such an authenticator; a forged response must still fail.
    const ed = new SoftAuthenticator({ alg: 'EdDSA' });
    const { options, challenge: c2 } = await registrationOptions(rp, user, []);
    assert.throws(() => ed.register(options, ORIGIN), /NotSupportedError/);
    const offered = { ...(options as object), pubKeyCredParams: [{ alg: -8, type: 'public-key' }] };
    await refused(verifyRegistration(rp, ed.register(offered, ORIGIN), c2), 'unsupported-algorithm');
  });

  it('normalises a default port in rp.origin as browsers do', async () => {
    const party = { ...rp, origin: 'https://backup.example.fr:443' };
    const stored = await enrol(new SoftAuthenticator(), 'https://backup.example.fr', party);
    assert.ok(stored.id.length > 0);
    await refused(enrol(new SoftAuthenticator(), 'https://backup.example.fr:443', party), 'wrong-origin');
  });

  it('refuses a wrong origin, RP id, challenge or ceremony type', async () => {
    await refused(enrol(new SoftAuthenticator(), 'https://backup.example.fr.evil.example:8443'), 'wrong-origin');
    await refused(enrol(new SoftAuthenticator(), 'http://backup.example.fr:8443'), 'wrong-origin');
    await refused(enrol(new SoftAuthenticator({ rpId: 'evil.example' })), 'wrong-rp-id');

    const auth = new SoftAuthenticator();
    const first = await registrationOptions(rp, user, []);
    const second = await registrationOptions(rp, user, []);
    const response = auth.register(first.options, ORIGIN);
    await assert.rejects(verifyRegistration(rp, response, second.challenge), (e: unknown) => {
      assert.ok(e instanceof WebAuthnError && e.kind === 'wrong-challenge');
      assert.ok(!e.message.includes(first.challenge) && !e.message.includes(second.challenge), 'message quotes no challenge');
      return true;
    });

    const asGet = clone(response);
    editClientData(asGet, (cd) => (cd.type = 'webauthn.get'));
    await refused(verifyRegistration(rp, asGet, first.challenge), 'wrong-type');
    // The untouched response was fine all along.
    assert.equal((await verifyRegistration(rp, response, first.challenge)).id, auth.credentialId);
  });

  it('refuses a response whose id is not the attested credential', async () => {
    const { options, challenge } = await registrationOptions(rp, user, []);
    const r = new SoftAuthenticator().register(options, ORIGIN);
    const other = await enrol();
    r.id = other.id;
    r.rawId = other.id;
    await refused(verifyRegistration(rp, r, challenge), 'credential-mismatch');
  });

  it('refuses authenticator data without user presence', async () => {
    const { options, challenge } = await registrationOptions(rp, user, []);
    const r: RegistrationJSON = new SoftAuthenticator().register(options, ORIGIN);
    const authData = b64(r.response.authenticatorData);
    authData[32] = (authData[32] ?? 0) & ~0x01;
    // Attestation "none" signs nothing, so only the UP check stands in the way.
    r.response.attestationObject = encodeCbor(
      new Map<string, Cbor>([
        ['fmt', 'none'],
        ['attStmt', new Map()],
        ['authData', authData],
      ]),
    ).toString('base64url');
    await refused(verifyRegistration(rp, r, challenge), 'user-not-present');
  });
});

describe('webauthn authentication', () => {
  it('round trip; the counter increases with each assertion', async () => {
    const auth = new SoftAuthenticator();
    let stored = await enrol(auth);
    for (const expected of [1, 2, 3]) {
      const { response, challenge } = await assertion(auth, [stored]);
      assert.equal(credentialIdOf(response), stored.id);
      const { newCounter } = await verifyAuthentication(rp, response, challenge, stored);
      assert.equal(newCounter, expected);
      stored = { ...stored, counter: newCounter };
    }
  });

  it('refuses a replayed assertion and a counter that does not increase', async () => {
    const auth = new SoftAuthenticator();
    const enrolled = await enrol(auth);
    const { response, challenge } = await assertion(auth, [enrolled]);
    const { newCounter } = await verifyAuthentication(rp, response, challenge, enrolled);
    const stored = { ...enrolled, counter: newCounter };
    // Even if the challenge were not single-use, the same assertion cannot pass twice.
    await refused(verifyAuthentication(rp, response, challenge, stored), 'counter-not-increasing');

    auth.setCounter(10);
    const next = await assertion(auth, [stored]);
    const at11 = { ...stored, counter: (await verifyAuthentication(rp, next.response, next.challenge, stored)).newCounter };
    assert.equal(at11.counter, 11);
    for (const behind of [10, 5]) {
      // A clone that lags behind (reports 11 then less): equal and lower counters are both refused.
      auth.setCounter(behind);
      const lagging = await assertion(auth, [at11]);
      await refused(verifyAuthentication(rp, lagging.response, lagging.challenge, at11), 'counter-not-increasing');
    }
  });

  it('accepts authenticators that never count, but not a counter falling back to 0', async () => {
    const auth = new SoftAuthenticator({ noCounter: true });
    const stored = await enrol(auth);
    for (let i = 0; i < 2; i++) {
      const { response, challenge } = await assertion(auth, [stored]);
      assert.deepEqual(await verifyAuthentication(rp, response, challenge, stored), { newCounter: 0 });
    }
    const { response, challenge } = await assertion(auth, [stored]);
    await refused(verifyAuthentication(rp, response, challenge, { ...stored, counter: 7 }), 'counter-not-increasing');
  });

  it('refuses a wrong origin, RP id, challenge or ceremony type', async () => {
    const auth = new SoftAuthenticator();
    const stored = await enrol(auth);
    const bad = await assertion(auth, [stored], 'https://evil.example:8443');
    await refused(verifyAuthentication(rp, bad.response, bad.challenge, stored), 'wrong-origin');

    const { options, challenge } = await authenticationOptions(rp, [stored]);
    const otherRp = auth.authenticate({ ...(options as object), rpId: 'example.fr' }, ORIGIN);
    await refused(verifyAuthentication(rp, otherRp, challenge, stored), 'wrong-rp-id');

    const other = await authenticationOptions(rp, [stored]);
    const good = auth.authenticate(options, ORIGIN);
    await refused(verifyAuthentication(rp, good, other.challenge, stored), 'wrong-challenge');

    const asCreate = clone(good);
    editClientData(asCreate, (cd) => (cd.type = 'webauthn.create'));
    await refused(verifyAuthentication(rp, asCreate, challenge, stored), 'wrong-type');

    // The control: the same assertion, checked against the right challenge, passes.
    assert.equal((await verifyAuthentication(rp, good, challenge, stored)).newCounter, 3);
  });

  it('refuses a signature over tampered client data, authenticator data or signature bytes', async () => {
    const auth = new SoftAuthenticator();
    const stored = await enrol(auth);
    const { response, challenge } = await assertion(auth, [stored]);

    const cd = clone(response);
    editClientData(cd, (c) => (c.crossOrigin = true));
    await refused(verifyAuthentication(rp, cd, challenge, stored), 'bad-signature');

    const extra = clone(response);
    editClientData(extra, (c) => (c.note = 'tampered'));
    await refused(verifyAuthentication(rp, extra, challenge, stored), 'bad-signature');

    const ad = clone(response);
    const authData = b64(ad.response.authenticatorData);
    authData[36] = (authData[36] ?? 0) + 1; // counter 1 → 2
    ad.response.authenticatorData = authData.toString('base64url');
    await refused(verifyAuthentication(rp, ad, challenge, stored), 'bad-signature');

    const sig = clone(response);
    const s = b64(sig.response.signature);
    s[s.length - 1] = (s[s.length - 1] ?? 0) ^ 0x01;
    sig.response.signature = s.toString('base64url');
    await assert.rejects(verifyAuthentication(rp, sig, challenge, stored), WebAuthnError);

    sig.response.signature = Buffer.from('not a DER signature').toString('base64url');
    await assert.rejects(verifyAuthentication(rp, sig, challenge, stored), WebAuthnError);

    assert.equal((await verifyAuthentication(rp, response, challenge, stored)).newCounter, 1);
  });

  it('refuses a response from a different credential', async () => {
    const alice = new SoftAuthenticator();
    const mallory = new SoftAuthenticator();
    const aliceKey = await enrol(alice);
    const malloryKey = await enrol(mallory);

    const { options, challenge } = await authenticationOptions(rp, [aliceKey]);
    assert.throws(() => mallory.authenticate(options, ORIGIN), /NotAllowedError/);
    // Without an allow list (as a forger would), Mallory answers with her own credential…
    const own = mallory.authenticate({ ...(options as object), allowCredentials: [] }, ORIGIN);
    assert.equal(credentialIdOf(own), malloryKey.id);
    await refused(verifyAuthentication(rp, own, challenge, aliceKey), 'credential-mismatch');
    // …and relabelling it with Alice's id does not help: her key does not verify the signature.
    const relabelled = { ...own, id: aliceKey.id, rawId: aliceKey.id };
    await refused(verifyAuthentication(rp, relabelled, challenge, aliceKey), 'bad-signature');
  });
});

describe('webauthn malformed input', () => {
  it('credentialIdOf only returns plausible ids', () => {
    assert.equal(credentialIdOf({ id: 'AAEC', rawId: 'AAEC' }), 'AAEC');
    for (const bad of [null, undefined, 'AAEC', 42, [], {}, { id: 5 }, { id: '' }, { id: 'a b' }, { id: 'AAE+' }, { id: 'A'.repeat(2000) }, { id: 'AAECA' }]) {
      assert.equal(credentialIdOf(bad), null, JSON.stringify(bad));
    }
  });

  it('refuses malformed registration responses with WebAuthnError', async () => {
    const { options, challenge } = await registrationOptions(rp, user, []);
    const good = new SoftAuthenticator().register(options, ORIGIN);
    const variants: [string, unknown][] = [
      ['null', null],
      ['undefined', undefined],
      ['a string', 'response'],
      ['a number', 7],
      ['an array', [good]],
      ['an empty object', {}],
      ['no response', { ...good, response: undefined }],
      ['response null', { ...good, response: null }],
      ['rawId differs', { ...good, rawId: 'AAAA' }],
      ['wrong type', { ...good, type: 'password' }],
      ['id not base64url', { ...good, id: 'a/b+', rawId: 'a/b+' }],
      ['clientDataJSON missing', { ...good, response: { ...good.response, clientDataJSON: undefined } }],
      ['clientDataJSON a number', { ...good, response: { ...good.response, clientDataJSON: 1 } }],
      ['clientDataJSON not JSON', { ...good, response: { ...good.response, clientDataJSON: Buffer.from('{nope').toString('base64url') } }],
      ['clientDataJSON an array', { ...good, response: { ...good.response, clientDataJSON: Buffer.from('[]').toString('base64url') } }],
      ['clientDataJSON null', { ...good, response: { ...good.response, clientDataJSON: Buffer.from('null').toString('base64url') } }],
      [
        'clientData without challenge',
        { ...good, response: { ...good.response, clientDataJSON: Buffer.from(JSON.stringify({ type: 'webauthn.create', origin: ORIGIN })).toString('base64url') } },
      ],
      ['attestationObject missing', { ...good, response: { ...good.response, attestationObject: undefined } }],
      ['attestationObject garbage', { ...good, response: { ...good.response, attestationObject: 'AAAAAAAA' } }],
      ['attestationObject a CBOR text', { ...good, response: { ...good.response, attestationObject: encodeCbor('x').toString('base64url') } }],
      [
        'authData too short',
        {
          ...good,
          response: {
            ...good.response,
            attestationObject: encodeCbor(new Map<string, Cbor>([['fmt', 'none'], ['attStmt', new Map()], ['authData', new Uint8Array(10)]])).toString('base64url'),
          },
        },
      ],
      ['transports not an array', { ...good, response: { ...good.response, transports: 'usb' } }],
      ['transports not strings', { ...good, response: { ...good.response, transports: [1] } }],
    ];
    for (const [what, v] of variants) {
      await assert.rejects(
        verifyRegistration(rp, v, challenge),
        (e: unknown) => e instanceof WebAuthnError && e.kind === 'malformed',
        what,
      );
    }
    // The template itself is valid, so each refusal above is due to its one change.
    assert.ok((await verifyRegistration(rp, good, challenge)).id);
  });

  it('refuses malformed authentication responses with WebAuthnError', async () => {
    const auth = new SoftAuthenticator();
    const stored = await enrol(auth);
    const { response: good, challenge } = await assertion(auth, [stored]);
    const variants: [string, unknown][] = [
      ['null', null],
      ['a string', 'x'],
      ['an array', []],
      ['an empty object', {}],
      ['no response', { ...good, response: undefined }],
      ['rawId differs', { ...good, rawId: 'AAAA' }],
      ['wrong type', { ...good, type: 'otp' }],
      ['authenticatorData missing', { ...good, response: { ...good.response, authenticatorData: undefined } }],
      ['authenticatorData too short', { ...good, response: { ...good.response, authenticatorData: 'AAAA' } }],
      ['signature missing', { ...good, response: { ...good.response, signature: undefined } }],
      ['signature not base64url', { ...good, response: { ...good.response, signature: '***' } }],
      ['clientDataJSON not JSON', { ...good, response: { ...good.response, clientDataJSON: 'AAAA' } }],
      ['userHandle a number', { ...good, response: { ...good.response, userHandle: 3 } }],
    ];
    for (const [what, v] of variants) {
      await assert.rejects(
        verifyAuthentication(rp, v, challenge, stored),
        (e: unknown) => e instanceof WebAuthnError && e.kind === 'malformed',
        what,
      );
    }
    assert.equal((await verifyAuthentication(rp, good, challenge, stored)).newCounter, 1);
  });
});
