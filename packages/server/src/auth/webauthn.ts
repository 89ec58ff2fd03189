import { createHash } from 'node:crypto';
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
} from '@simplewebauthn/server';
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import { decodeAttestationObject, decodeCredentialPublicKey, parseAuthenticatorData } from '@simplewebauthn/server/helpers';

/**
 * The one place the server talks to @simplewebauthn/server. Everything else deals in the
 * small types below, so the library can be upgraded or replaced without touching routes.
 *
 * Policy (fixed, not configurable by callers):
 * - attestation 'none': we do not vet authenticator makes, only possession of the key;
 * - residentKey 'discouraged': sign-in is email first, then the key (no discoverable-credential
 *   flow), so we do not fill the authenticator's limited resident-key storage;
 * - userVerification 'preferred': a PIN/biometric is asked for when the authenticator can, but a
 *   key without one still works (it is a second factor on top of the password);
 * - ES256 and RS256 only: the two algorithms every FIDO2 authenticator and platform offers;
 * - every check the library makes is first made here too, so that each refusal has a stable
 *   kind (for logs and tests) instead of a library message that may quote the challenge.
 */

export interface RelyingParty {
  /** The RP id: the hostname users type (no scheme, no port). */
  readonly id: string;
  /** Shown by the browser/authenticator during registration. */
  readonly name: string;
  /** The web origin, e.g. https://backup.example.fr:8443. A default port (:443) is allowed: it is normalised away, as browsers do. */
  readonly origin: string;
}

export interface StoredCredential {
  /** Credential id, base64url without padding (as browsers send it). */
  readonly id: string;
  /** COSE-encoded public key, as returned by verifyRegistration. */
  readonly publicKey: Uint8Array;
  /** Last signature counter seen; 0 for authenticators that do not count. */
  readonly counter: number;
  /** Transport hints from registration (usb, nfc, ble, internal, hybrid…), only passed back to browsers. */
  readonly transports: readonly string[];
}

export type WebAuthnFailure =
  | 'malformed'
  | 'wrong-type'
  | 'wrong-challenge'
  | 'wrong-origin'
  | 'wrong-rp-id'
  | 'user-not-present'
  | 'unsupported-algorithm'
  | 'credential-mismatch'
  | 'counter-not-increasing'
  | 'bad-signature'
  | 'attestation-refused'
  | 'rejected';

const FAILURE_MESSAGES: Readonly<Record<WebAuthnFailure, string>> = {
  'malformed': 'WebAuthn response is malformed',
  'wrong-type': 'WebAuthn response is of the wrong ceremony type',
  'wrong-challenge': 'WebAuthn response does not answer the expected challenge',
  'wrong-origin': 'WebAuthn response comes from an unexpected origin',
  'wrong-rp-id': 'WebAuthn response is for another relying party id',
  'user-not-present': 'WebAuthn response does not assert user presence',
  'unsupported-algorithm': 'WebAuthn credential uses an unsupported public key algorithm',
  'credential-mismatch': 'WebAuthn response is for another credential',
  'counter-not-increasing': 'WebAuthn signature counter did not increase (possible cloned authenticator)',
  'bad-signature': 'WebAuthn signature does not verify',
  'attestation-refused': 'WebAuthn attestation does not verify',
  'rejected': 'WebAuthn response refused by the verifier',
};

/**
 * Every verification failure. The message is fixed per kind and safe to log: it never quotes
 * the challenge, the response or key material. `kind` is for branching and metrics.
 */
export class WebAuthnError extends Error {
  override readonly name = 'WebAuthnError';
  constructor(readonly kind: WebAuthnFailure) {
    super(FAILURE_MESSAGES[kind]);
  }
}

/** COSE algorithm ids: ES256 (ECDSA P-256 SHA-256) and RS256 (RSASSA-PKCS1-v1_5 SHA-256). */
const SUPPORTED_ALGS: readonly number[] = [-7, -257];
const KNOWN_TRANSPORTS: ReadonlySet<string> = new Set(['ble', 'cable', 'hybrid', 'internal', 'nfc', 'smart-card', 'usb']);
/** WebAuthn caps credential ids at 1023 bytes, i.e. 1364 base64url characters. */
const MAX_CREDENTIAL_ID_CHARS = 1364;
/** Generous cap on any other base64url field: real responses are a few KiB at most (RSA keys, x5c). */
const MAX_FIELD_CHARS = 64 * 1024;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

export async function registrationOptions(
  rp: RelyingParty,
  user: { readonly id: string; readonly email: string; readonly name: string },
  exclude: readonly StoredCredential[],
): Promise<{ options: unknown; challenge: string }> {
  const options = await generateRegistrationOptions({
    rpName: rp.name,
    rpID: rp.id,
    userID: Uint8Array.from(Buffer.from(user.id, 'utf8')),
    userName: user.email,
    userDisplayName: user.name,
    attestationType: 'none',
    // A fresh object per call: the library writes requireResidentKey into it.
    authenticatorSelection: { residentKey: 'discouraged', userVerification: 'preferred' },
    supportedAlgorithmIDs: [...SUPPORTED_ALGS],
    excludeCredentials: exclude.map(descriptor),
  });
  return { options, challenge: options.challenge };
}

export async function authenticationOptions(
  rp: RelyingParty,
  allow: readonly StoredCredential[],
): Promise<{ options: unknown; challenge: string }> {
  const options = await generateAuthenticationOptions({
    rpID: rp.id,
    allowCredentials: allow.map(descriptor),
    userVerification: 'preferred',
  });
  return { options, challenge: options.challenge };
}

/**
 * Checks a navigator.credentials.create() answer against the challenge we issued and returns
 * the credential to store. Throws WebAuthnError, never anything else, on a refused response.
 */
export async function verifyRegistration(rp: RelyingParty, response: unknown, expectedChallenge: string): Promise<StoredCredential> {
  const r = registrationShape(response);
  checkClientData(r.response.clientDataJSON, 'webauthn.create', expectedChallenge, rp);

  const attested = attestedData(r.response.attestationObject);
  checkAuthData(attested.authData, rp);
  if (!attested.credentialId || !attested.publicKey) throw new WebAuthnError('malformed');
  const credentialId = Buffer.from(attested.credentialId).toString('base64url');
  // The id the browser reports is the one we will look credentials up by: it must be the attested one.
  if (credentialId !== r.id) throw new WebAuthnError('credential-mismatch');
  if (!SUPPORTED_ALGS.includes(algorithmOf(attested.publicKey))) throw new WebAuthnError('unsupported-algorithm');

  const verified = await settle(() =>
    verifyRegistrationResponse({
      response: r,
      expectedChallenge,
      expectedOrigin: expectedOrigin(rp),
      expectedRPID: rp.id,
      requireUserVerification: false,
      supportedAlgorithmIDs: [...SUPPORTED_ALGS],
    }),
  );
  if (!verified.verified) throw new WebAuthnError('attestation-refused');
  const { credential } = verified.registrationInfo;
  if (credential.id !== credentialId) throw new WebAuthnError('credential-mismatch');
  return {
    id: credential.id,
    publicKey: Uint8Array.from(credential.publicKey),
    counter: credential.counter,
    transports: knownTransports(r.response.transports ?? []),
  };
}

/**
 * Checks a navigator.credentials.get() answer for `credential` (looked up with credentialIdOf).
 * On success the caller must persist newCounter as the credential's counter, so that a replayed
 * or cloned assertion is refused next time.
 */
export async function verifyAuthentication(
  rp: RelyingParty,
  response: unknown,
  expectedChallenge: string,
  credential: StoredCredential,
): Promise<{ newCounter: number }> {
  const r = authenticationShape(response);
  if (r.id !== credential.id) throw new WebAuthnError('credential-mismatch');
  checkClientData(r.response.clientDataJSON, 'webauthn.get', expectedChallenge, rp);

  const authData = Buffer.from(r.response.authenticatorData, 'base64url');
  const { counter } = checkAuthData(authData, rp);
  // WebAuthn §7.2 step 21: if either counter is non-zero it must strictly increase, otherwise
  // two copies of the key exist. Authenticators that never count report 0 forever.
  if ((counter > 0 || credential.counter > 0) && counter <= credential.counter) throw new WebAuthnError('counter-not-increasing');

  const verified = await settle(() =>
    verifyAuthenticationResponse({
      response: r,
      expectedChallenge,
      expectedOrigin: expectedOrigin(rp),
      expectedRPID: rp.id,
      credential: {
        id: credential.id,
        publicKey: Uint8Array.from(credential.publicKey),
        counter: credential.counter,
        transports: knownTransports(credential.transports),
      },
      requireUserVerification: false,
    }),
  );
  if (!verified.verified) throw new WebAuthnError('bad-signature');
  return { newCounter: verified.authenticationInfo.newCounter };
}

/**
 * The credential id a browser response claims, or null if it has none that could be one. Only a
 * lookup key: nothing is verified, and verifyAuthentication re-checks it against the stored one.
 */
export function credentialIdOf(response: unknown): string | null {
  if (!isRecord(response)) return null;
  const { id } = response;
  return typeof id === 'string' && isBase64Url(id, MAX_CREDENTIAL_ID_CHARS) ? id : null;
}

// ---------------------------------------------------------------------------------------------

function descriptor(c: StoredCredential): { id: string; transports: string[] } {
  return { id: c.id, transports: knownTransports(c.transports) };
}

function knownTransports(ts: readonly string[]): string[] {
  return ts.filter((t) => KNOWN_TRANSPORTS.has(t));
}

/** Browsers serialise origins without a default port; rp.origin may carry one (https://host:443). */
function expectedOrigin(rp: RelyingParty): string {
  return new URL(rp.origin).origin;
}

/** Runs a library verification: whatever it throws past our own checks becomes a WebAuthnError. */
async function settle<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof WebAuthnError) throw e;
    throw new WebAuthnError('rejected');
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isBase64Url(s: string, maxChars: number): boolean {
  // Length ≡ 1 (mod 4) cannot come from whole bytes; Buffer would decode it silently.
  return s.length <= maxChars && s.length % 4 !== 1 && BASE64URL.test(s);
}

function b64Field(o: Record<string, unknown>, key: string, maxChars = MAX_FIELD_CHARS): string {
  const v = o[key];
  if (typeof v !== 'string' || !isBase64Url(v, maxChars)) throw new WebAuthnError('malformed');
  return v;
}

/** id, rawId and type, common to both ceremonies; returns the inner `response` object. */
function credentialEnvelope(response: unknown): { id: string; inner: Record<string, unknown> } {
  if (!isRecord(response)) throw new WebAuthnError('malformed');
  const id = b64Field(response, 'id', MAX_CREDENTIAL_ID_CHARS);
  if (response.rawId !== id || response.type !== 'public-key' || !isRecord(response.response)) throw new WebAuthnError('malformed');
  return { id, inner: response.response };
}

/**
 * Rebuilds the response from validated fields only, so the library never sees a getter, a
 * prototype trick or a field of the wrong type (it would throw TypeErrors on those).
 */
function registrationShape(response: unknown): RegistrationResponseJSON {
  const { id, inner } = credentialEnvelope(response);
  const transports = inner.transports;
  if (transports !== undefined && !(Array.isArray(transports) && transports.every((t) => typeof t === 'string'))) {
    throw new WebAuthnError('malformed');
  }
  return {
    id,
    rawId: id,
    type: 'public-key',
    clientExtensionResults: {},
    response: {
      clientDataJSON: b64Field(inner, 'clientDataJSON'),
      attestationObject: b64Field(inner, 'attestationObject'),
      ...(transports === undefined ? {} : { transports: transports as string[] }),
    },
  };
}

function authenticationShape(response: unknown): AuthenticationResponseJSON {
  const { id, inner } = credentialEnvelope(response);
  const userHandle = inner.userHandle;
  if (userHandle !== undefined && userHandle !== null && (typeof userHandle !== 'string' || !isBase64Url(userHandle, 128))) {
    throw new WebAuthnError('malformed');
  }
  return {
    id,
    rawId: id,
    type: 'public-key',
    clientExtensionResults: {},
    response: {
      clientDataJSON: b64Field(inner, 'clientDataJSON'),
      authenticatorData: b64Field(inner, 'authenticatorData'),
      signature: b64Field(inner, 'signature'),
      ...(typeof userHandle === 'string' ? { userHandle } : {}),
    },
  };
}

function checkClientData(clientDataJSON: string, type: 'webauthn.create' | 'webauthn.get', challenge: string, rp: RelyingParty): void {
  let data: unknown;
  try {
    data = JSON.parse(Buffer.from(clientDataJSON, 'base64url').toString('utf8'));
  } catch {
    throw new WebAuthnError('malformed');
  }
  if (!isRecord(data) || typeof data.type !== 'string' || typeof data.challenge !== 'string' || typeof data.origin !== 'string') {
    throw new WebAuthnError('malformed');
  }
  if (data.type !== type) throw new WebAuthnError('wrong-type');
  if (data.challenge !== challenge) throw new WebAuthnError('wrong-challenge');
  if (data.origin !== expectedOrigin(rp)) throw new WebAuthnError('wrong-origin');
}

interface Attested {
  readonly authData: Uint8Array;
  readonly credentialId: Uint8Array | undefined;
  readonly publicKey: Uint8Array | undefined;
}

function attestedData(attestationObject: string): Attested {
  try {
    const decoded = decodeAttestationObject(Uint8Array.from(Buffer.from(attestationObject, 'base64url')));
    const authData: unknown = decoded.get('authData');
    if (!(authData instanceof Uint8Array)) throw new WebAuthnError('malformed');
    const parsed = parseAuthenticatorData(Uint8Array.from(authData));
    return { authData, credentialId: parsed.credentialID, publicKey: parsed.credentialPublicKey };
  } catch {
    throw new WebAuthnError('malformed');
  }
}

function algorithmOf(coseKey: Uint8Array): number {
  let alg: unknown;
  try {
    alg = decodeCredentialPublicKey(Uint8Array.from(coseKey)).get(3);
  } catch {
    throw new WebAuthnError('malformed');
  }
  if (typeof alg !== 'number') throw new WebAuthnError('malformed');
  return alg;
}

/** rpIdHash and the UP flag; returns the signature counter. authData layout: WebAuthn §6.1. */
function checkAuthData(authData: Uint8Array, rp: RelyingParty): { counter: number } {
  if (authData.length < 37) throw new WebAuthnError('malformed');
  const rpIdHash = createHash('sha256').update(rp.id, 'utf8').digest();
  if (!rpIdHash.equals(authData.subarray(0, 32))) throw new WebAuthnError('wrong-rp-id');
  const flags = authData[32] ?? 0;
  if ((flags & 0x01) === 0) throw new WebAuthnError('user-not-present');
  return { counter: Buffer.from(authData.buffer, authData.byteOffset, authData.byteLength).readUInt32BE(33) };
}
