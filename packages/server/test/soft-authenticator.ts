import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';

/**
 * A software FIDO2 authenticator plus the browser glue around it, for tests that drive WebAuthn
 * ceremonies over HTTP. Built on node:crypto only, so the tests do not trust the library under
 * test to produce its own inputs.
 *
 * It holds one credential at a time (a new register() replaces it) and, unlike a browser, does
 * not check that the RP id matches the origin nor scope the credential to an RP id: negative
 * tests need to be able to lie.
 */

// ---- Minimal CBOR (RFC 8949) encoder: unsigned/negative ints, byte strings, text, maps. -------

export type Cbor = number | string | Uint8Array | ReadonlyMap<number | string, Cbor>;

function head(major: number, n: number): Buffer {
  if (!Number.isSafeInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`CBOR argument out of range: ${n}`);
  const m = major << 5;
  if (n < 24) return Buffer.from([m | n]);
  if (n < 0x100) return Buffer.from([m | 24, n]);
  if (n < 0x10000) {
    const b = Buffer.alloc(3);
    b[0] = m | 25;
    b.writeUInt16BE(n, 1);
    return b;
  }
  const b = Buffer.alloc(5);
  b[0] = m | 26;
  b.writeUInt32BE(n, 1);
  return b;
}

/** Deterministic encoding (RFC 8949 §4.2.3 / CTAP2 canonical): shortest heads, map keys sorted by their encoding (shorter first, then bytewise). */
export function encodeCbor(v: Cbor): Buffer {
  if (typeof v === 'number') return v >= 0 ? head(0, v) : head(1, -1 - v);
  if (typeof v === 'string') {
    const bytes = Buffer.from(v, 'utf8');
    return Buffer.concat([head(3, bytes.length), bytes]);
  }
  if (v instanceof Uint8Array) return Buffer.concat([head(2, v.length), v]);
  const entries = [...v].map(([k, val]) => [encodeCbor(k), encodeCbor(val)] as const);
  entries.sort(([a], [b]) => a.length - b.length || Buffer.compare(a, b));
  return Buffer.concat([head(5, entries.length), ...entries.flat()]);
}

// ---- Response shapes (RegistrationResponseJSON / AuthenticationResponseJSON, WebAuthn L3). -------

export interface RegistrationJSON {
  id: string;
  rawId: string;
  type: 'public-key';
  response: {
    clientDataJSON: string;
    attestationObject: string;
    authenticatorData: string;
    transports: string[];
    publicKeyAlgorithm: number;
    publicKey?: string;
  };
  clientExtensionResults: { credProps?: { rk: boolean } };
  authenticatorAttachment: 'cross-platform';
}

export interface AuthenticationJSON {
  id: string;
  rawId: string;
  type: 'public-key';
  response: { clientDataJSON: string; authenticatorData: string; signature: string; userHandle?: string };
  clientExtensionResults: Record<string, never>;
  authenticatorAttachment: 'cross-platform';
}

export type SoftAlgorithm = 'ES256' | 'RS256' | 'EdDSA';

export interface SoftAuthenticatorOptions {
  /** Origin used when register()/authenticate() are called without one. */
  readonly origin?: string;
  /** Forces the RP id hashed into authenticator data, whatever the options say (wrong-RP tests). */
  readonly rpId?: string;
  /** Key type; ES256 by default. EdDSA exists to test that the server refuses it. */
  readonly alg?: SoftAlgorithm;
  /** Model an authenticator without a signature counter (most synced passkeys): always reports 0. */
  readonly noCounter?: boolean;
}

const COSE_ALG: Readonly<Record<SoftAlgorithm, number>> = { ES256: -7, RS256: -257, EdDSA: -8 };
const FLAG_UP = 0x01;
const FLAG_UV = 0x04;
const FLAG_AT = 0x40;

interface Credential {
  readonly id: Buffer;
  readonly privateKey: KeyObject;
  readonly cose: Buffer;
  readonly spki: Buffer;
  readonly userHandle: string | undefined;
}

export class SoftAuthenticator {
  private readonly defaultOrigin: string | undefined;
  private readonly forcedRpId: string | undefined;
  private readonly alg: SoftAlgorithm;
  private readonly noCounter: boolean;
  private credential: Credential | undefined;
  private counter = 0;

  constructor(opts: SoftAuthenticatorOptions = {}) {
    this.defaultOrigin = opts.origin;
    this.forcedRpId = opts.rpId;
    this.alg = opts.alg ?? 'ES256';
    this.noCounter = opts.noCounter ?? false;
  }

  /** The base64url id of the current credential (after register()). */
  get credentialId(): string | undefined {
    return this.credential?.id.toString('base64url');
  }

  /** Answers navigator.credentials.create() options (PublicKeyCredentialCreationOptionsJSON) like a browser would. */
  register(options: unknown, origin?: string): RegistrationJSON {
    const o = record(options, 'options');
    const challenge = text(o, 'challenge');
    const rp = record(o.rp, 'options.rp');
    const user = record(o.user, 'options.user');
    const params = Array.isArray(o.pubKeyCredParams) ? (o.pubKeyCredParams as unknown[]) : [];
    if (!params.some((p) => typeof p === 'object' && p !== null && (p as { alg?: unknown }).alg === COSE_ALG[this.alg])) {
      throw new Error(`NotSupportedError: the relying party does not offer ${this.alg}`);
    }
    const excluded = Array.isArray(o.excludeCredentials) ? (o.excludeCredentials as unknown[]) : [];
    if (this.credentialId !== undefined && excluded.some((c) => (c as { id?: unknown } | null)?.id === this.credentialId)) {
      throw new Error('InvalidStateError: this authenticator is already registered');
    }
    const at = this.originOr(origin);
    const rpId = this.forcedRpId ?? (typeof rp.id === 'string' ? rp.id : new URL(at).hostname);

    const { privateKey, cose, spki } = newKey(this.alg);
    const id = randomBytes(32);
    this.credential = { id, privateKey, cose, spki, userHandle: typeof user.id === 'string' ? user.id : undefined };
    this.counter = 0;

    const idLength = Buffer.alloc(2);
    idLength.writeUInt16BE(id.length);
    const authData = Buffer.concat([
      sha256(rpId),
      Buffer.from([FLAG_UP | FLAG_UV | FLAG_AT]),
      uint32(this.counter),
      Buffer.alloc(16), // AAGUID: zeros, as with attestation "none"
      idLength,
      id,
      cose,
    ]);
    const attestationObject = encodeCbor(
      new Map<string, Cbor>([
        ['fmt', 'none'],
        ['attStmt', new Map()],
        ['authData', authData],
      ]),
    );
    const clientDataJSON = clientData('webauthn.create', challenge, at);
    return {
      id: id.toString('base64url'),
      rawId: id.toString('base64url'),
      type: 'public-key',
      response: {
        clientDataJSON: clientDataJSON.toString('base64url'),
        attestationObject: attestationObject.toString('base64url'),
        authenticatorData: authData.toString('base64url'),
        transports: ['usb'],
        publicKeyAlgorithm: COSE_ALG[this.alg],
        publicKey: spki.toString('base64url'),
      },
      clientExtensionResults: { credProps: { rk: false } },
      authenticatorAttachment: 'cross-platform',
    };
  }

  /**
   * Answers navigator.credentials.get() options (PublicKeyCredentialRequestOptionsJSON). Increments
   * the sign counter first, so consecutive assertions carry 1, 2, 3… (or setCounter(n) then n+1).
   */
  authenticate(options: unknown, origin?: string): AuthenticationJSON {
    const cred = this.credential;
    if (!cred) throw new Error('NotAllowedError: no credential registered');
    const o = record(options, 'options');
    const challenge = text(o, 'challenge');
    const allowed = Array.isArray(o.allowCredentials) ? (o.allowCredentials as unknown[]) : [];
    const id = cred.id.toString('base64url');
    if (allowed.length > 0 && !allowed.some((c) => (c as { id?: unknown } | null)?.id === id)) {
      throw new Error('NotAllowedError: this authenticator holds none of the allowed credentials');
    }
    const at = this.originOr(origin);
    const rpId = this.forcedRpId ?? (typeof o.rpId === 'string' ? o.rpId : new URL(at).hostname);

    if (!this.noCounter) this.counter += 1;
    const authData = Buffer.concat([sha256(rpId), Buffer.from([FLAG_UP | FLAG_UV]), uint32(this.noCounter ? 0 : this.counter)]);
    const clientDataJSON = clientData('webauthn.get', challenge, at);
    // WebAuthn §6.3.3: the assertion signs authenticatorData || SHA-256(clientDataJSON). ECDSA
    // signatures come out DER-encoded from node:crypto, which is what WebAuthn specifies.
    const signed = Buffer.concat([authData, createHash('sha256').update(clientDataJSON).digest()]);
    const signature = sign(this.alg === 'EdDSA' ? null : 'sha256', signed, cred.privateKey);
    return {
      id,
      rawId: id,
      type: 'public-key',
      response: {
        clientDataJSON: clientDataJSON.toString('base64url'),
        authenticatorData: authData.toString('base64url'),
        signature: signature.toString('base64url'),
        ...(cred.userHandle === undefined ? {} : { userHandle: cred.userHandle }),
      },
      clientExtensionResults: {},
      authenticatorAttachment: 'cross-platform',
    };
  }

  /** Sets the stored sign counter; the next assertion reports n + 1. For negative tests. */
  setCounter(n: number): void {
    if (!Number.isInteger(n) || n < 0 || n >= 0xffffffff) throw new RangeError(`bad counter ${n}`);
    this.counter = n;
  }

  private originOr(origin: string | undefined): string {
    const at = origin ?? this.defaultOrigin;
    if (at === undefined) throw new Error('SoftAuthenticator: no origin given');
    return at;
  }
}

function newKey(alg: SoftAlgorithm): { privateKey: KeyObject; cose: Buffer; spki: Buffer } {
  // COSE_Key labels (RFC 9053): 1 kty, 3 alg, -1 crv / n, -2 x / e, -3 y.
  if (alg === 'ES256') {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = publicKey.export({ format: 'jwk' });
    const cose = new Map<number, Cbor>([
      [1, 2], // EC2
      [3, -7],
      [-1, 1], // P-256
      [-2, b64u(jwk.x)],
      [-3, b64u(jwk.y)],
    ]);
    return { privateKey, cose: encodeCbor(cose), spki: publicKey.export({ format: 'der', type: 'spki' }) };
  }
  if (alg === 'RS256') {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = publicKey.export({ format: 'jwk' });
    const cose = new Map<number, Cbor>([
      [1, 3], // RSA
      [3, -257],
      [-1, b64u(jwk.n)],
      [-2, b64u(jwk.e)],
    ]);
    return { privateKey, cose: encodeCbor(cose), spki: publicKey.export({ format: 'der', type: 'spki' }) };
  }
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const jwk = publicKey.export({ format: 'jwk' });
  const cose = new Map<number, Cbor>([
    [1, 1], // OKP
    [3, -8],
    [-1, 6], // Ed25519
    [-2, b64u(jwk.x)],
  ]);
  return { privateKey, cose: encodeCbor(cose), spki: publicKey.export({ format: 'der', type: 'spki' }) };
}

function b64u(s: string | undefined): Buffer {
  if (s === undefined) throw new Error('JWK export lacks a component');
  return Buffer.from(s, 'base64url');
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

function uint32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

/** Same member order as browsers serialise CollectedClientData. */
function clientData(type: 'webauthn.create' | 'webauthn.get', challenge: string, origin: string): Buffer {
  return Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false }), 'utf8');
}

function record(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new TypeError(`SoftAuthenticator: ${what} is not an object`);
  return v as Record<string, unknown>;
}

function text(o: Record<string, unknown>, key: string): string {
  const v = o[key];
  if (typeof v !== 'string') throw new TypeError(`SoftAuthenticator: options.${key} is not a string`);
  return v;
}
