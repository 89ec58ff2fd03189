import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, sign, verify, type KeyObject } from 'node:crypto';
import { CoffreError } from './errors.js';

/**
 * Public-key sealing of storage format version 2 (docs/FORMAT.md §2.4): writers hold only the
 * customer's X25519 *public* read key, so what they store can be opened with the private key
 * alone, which lives in the key slots (behind the passphrase or the recovery key).
 *
 *   session:  ephemeral X25519 key pair (e, E) per writing session
 *   K = HKDF-SHA-256(ikm = X25519(e, P), salt = E || P, info = "coffre v2 seal", 32 bytes)
 *   reader:   K = HKDF-SHA-256(ikm = X25519(p, E), salt = E || P, …)  — the same key
 *
 * K then keys AES-256-GCM with random nonces, exactly as version 1 used its blob key.
 */
const X25519_SPKI = Buffer.from('302a300506032b656e032100', 'hex');
const X25519_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const ED25519_SPKI = Buffer.from('302a300506032b6570032100', 'hex');
const ED25519_PKCS8 = Buffer.from('302e020100300506032b657004220420', 'hex');
const SEAL_INFO = Buffer.from('coffre v2 seal', 'utf8');
export const PUBLIC_KEY_BYTES = 32;

function rawPublic(k: KeyObject): Buffer {
  const der = k.export({ format: 'der', type: 'spki' });
  return Buffer.from(der.subarray(der.length - 32));
}

export function x25519PublicKey(raw: Uint8Array): KeyObject {
  if (raw.length !== 32) throw new CoffreError('FORMAT', 'an X25519 public key has 32 bytes');
  return createPublicKey({ key: Buffer.concat([X25519_SPKI, raw]), format: 'der', type: 'spki' });
}

/** The X25519 key pair whose private half is the 32-byte seed (clamped by X25519 itself). */
export function x25519FromSeed(seed: Uint8Array): { privateKey: KeyObject; publicKey: Buffer } {
  if (seed.length !== 32) throw new CoffreError('FORMAT', 'an X25519 private key has 32 bytes');
  const privateKey = createPrivateKey({ key: Buffer.concat([X25519_PKCS8, seed]), format: 'der', type: 'pkcs8' });
  return { privateKey, publicKey: rawPublic(createPublicKey(privateKey)) };
}

export function ed25519FromSeed(seed: Uint8Array): { privateKey: KeyObject; publicKey: Buffer } {
  if (seed.length !== 32) throw new CoffreError('FORMAT', 'an Ed25519 private key has 32 bytes');
  const privateKey = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8, seed]), format: 'der', type: 'pkcs8' });
  return { privateKey, publicKey: rawPublic(createPublicKey(privateKey)) };
}

export function ed25519Sign(privateKey: KeyObject, message: Uint8Array): Buffer {
  return sign(null, message, privateKey);
}

/** False for a malformed key or signature as well as for a wrong one (never throws). */
export function ed25519Verify(publicKeyRaw: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (publicKeyRaw.length !== 32 || signature.length !== 64) return false;
  try {
    const k = createPublicKey({ key: Buffer.concat([ED25519_SPKI, publicKeyRaw]), format: 'der', type: 'spki' });
    return verify(null, message, k, signature);
  } catch {
    return false;
  }
}

function sessionKey(shared: Buffer, ephemeral: Uint8Array, recipient: Uint8Array): Buffer {
  // A low-order point gives an all-zero secret: refuse it rather than derive a guessable key.
  if (shared.every((b) => b === 0)) throw new CoffreError('INTEGRITY', 'sealed data uses an invalid ephemeral key');
  return Buffer.from(hkdfSync('sha256', shared, Buffer.concat([ephemeral, recipient]), SEAL_INFO, 32));
}

/** A writer's session: data sealed with `key` carries `ephemeral` so the reader can derive it. */
export interface SealSession {
  readonly ephemeral: Buffer; // 32 bytes, E
  readonly key: Buffer; // 32 bytes, K
}

export function newSealSession(readPublic: Uint8Array): SealSession {
  const recipient = x25519PublicKey(readPublic);
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  const ephemeral = rawPublic(publicKey);
  return { ephemeral, key: sessionKey(diffieHellman({ privateKey, publicKey: recipient }), ephemeral, readPublic) };
}

/** The customer's private read key: derives (and remembers) the key of each writing session. */
export class ReadKey {
  private readonly privateKey: KeyObject;
  readonly publicKey: Buffer;
  private readonly sessions = new Map<string, Buffer>();

  constructor(seed: Uint8Array) {
    const kp = x25519FromSeed(seed);
    this.privateKey = kp.privateKey;
    this.publicKey = kp.publicKey;
  }

  sessionKey(ephemeral: Uint8Array): Buffer {
    const tag = Buffer.from(ephemeral).toString('base64');
    let k = this.sessions.get(tag);
    if (!k) {
      let shared: Buffer;
      try {
        shared = diffieHellman({ privateKey: this.privateKey, publicKey: x25519PublicKey(ephemeral) });
      } catch {
        throw new CoffreError('INTEGRITY', 'sealed data uses an invalid ephemeral key');
      }
      k = sessionKey(shared, ephemeral, this.publicKey);
      if (this.sessions.size > 10_000) this.sessions.clear();
      this.sessions.set(tag, k);
    }
    return k;
  }
}
