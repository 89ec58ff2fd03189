import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { base32Encode } from '@coffre/core';

/**
 * RFC 6238 TOTP with the parameters every authenticator app supports without asking:
 * HMAC-SHA-1, 30-second steps, 6 digits. SHA-1 is fine here: HOTP only needs HMAC to be
 * a PRF, which collisions do not break.
 */
const STEP_SECONDS = 30;
const DIGITS = 6;
const MODULUS = 10 ** DIGITS;
/** RFC 4226 §4 requires at least 128 bits and recommends 160. */
const SECRET_BYTES = 20;
/** Beyond a few steps a window only helps an attacker; callers never need more. */
const MAX_WINDOW = 10;

export function newTotpSecret(): Buffer {
  return randomBytes(SECRET_BYTES);
}

/** RFC 4648 base32, uppercase, unpadded: the form authenticator apps expect for `secret=`. */
export function totpSecretToBase32(secret: Buffer): string {
  return base32Encode(secret);
}

export function totpStep(nowMs: number): number {
  return Math.floor(nowMs / 1000 / STEP_SECONDS);
}

export function totpCode(secret: Buffer, step: number): string {
  if (!Number.isSafeInteger(step) || step < 0) throw new RangeError(`a TOTP step is a non-negative integer, not ${step}`);
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', secret).update(counter).digest();
  // RFC 4226 §5.3 dynamic truncation.
  const offset = mac[mac.length - 1]! & 0x0f;
  const value = mac.readUInt32BE(offset) & 0x7fffffff;
  return String(value % MODULUS).padStart(DIGITS, '0');
}

export type TotpVerdict = { readonly ok: true; readonly step: number } | { readonly ok: false; readonly reason: 'malformed' | 'invalid' | 'replayed' };

/**
 * Checks `code` against the steps `now - window … now + window` (clock drift either way).
 * The caller must persist the returned `step` as the new `lastUsedStep`: a code whose step
 * is not after it is refused as 'replayed', so a code never works twice and an older code
 * never works after a newer one, even within the window.
 *
 * Every candidate step is computed and compared in constant time, whatever matches, so
 * the response time says nothing about which step (if any) the code belongs to.
 * 'replayed' is distinct from 'invalid' for logging; callers may show users one message.
 */
export function verifyTotp(secret: Buffer, code: string, nowMs: number, lastUsedStep: number | null, window = 1): TotpVerdict {
  if (!Number.isInteger(window) || window < 0 || window > MAX_WINDOW) throw new RangeError(`a TOTP window is an integer in 0..${MAX_WINDOW}, not ${window}`);
  const given = code.replace(/\s+/g, '');
  if (!/^[0-9]{6}$/.test(given)) return { ok: false, reason: 'malformed' };
  const givenBytes = Buffer.from(given, 'ascii');
  const now = totpStep(nowMs);
  let fresh: number | null = null;
  let stale = false;
  for (let step = now - window; step <= now + window; step++) {
    if (step < 0) continue;
    const matches = timingSafeEqual(Buffer.from(totpCode(secret, step), 'ascii'), givenBytes);
    if (!matches) continue;
    // The earliest fresh match wins: recording a later step than the user's would burn codes they have not used yet.
    if (lastUsedStep !== null && step <= lastUsedStep) stale = true;
    else if (fresh === null) fresh = step;
  }
  if (fresh !== null) return { ok: true, step: fresh };
  return { ok: false, reason: stale ? 'replayed' : 'invalid' };
}

/**
 * The Key Uri Format (Google Authenticator's, understood by all apps). The issuer is both
 * in the label and in `issuer=` because older apps read only one of them. Components are
 * percent-encoded with encodeURIComponent, not URLSearchParams: several apps show a `+`
 * literally instead of a space.
 */
export function otpauthUri(args: { readonly secret: Buffer; readonly account: string; readonly issuer: string }): string {
  const label = `${encodeURIComponent(args.issuer)}:${encodeURIComponent(args.account)}`;
  const query = [
    `secret=${totpSecretToBase32(args.secret)}`,
    `issuer=${encodeURIComponent(args.issuer)}`,
    'algorithm=SHA1',
    `digits=${DIGITS}`,
    `period=${STEP_SECONDS}`,
  ].join('&');
  return `otpauth://totp/${label}?${query}`;
}
