import { createHash, randomInt } from 'node:crypto';

/**
 * One-time recovery codes for a lost second factor, shown once, e.g. "k7q2-m9xp-4tzw".
 * The alphabet drops 0/o, 1/l/i so that codes read back from paper are never ambiguous:
 * 31 symbols, 12 of them give 12·log2(31) ≈ 59.4 bits per code.
 */
export const RECOVERY_ALPHABET = '23456789abcdefghjkmnpqrstuvwxyz';
const GROUPS = 3;
const GROUP_LENGTH = 4;
const LENGTH = GROUPS * GROUP_LENGTH;

function group(raw: string): string {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += GROUP_LENGTH) out.push(raw.slice(i, i + GROUP_LENGTH));
  return out.join('-');
}

export function newRecoveryCodes(n = 10): string[] {
  if (!Number.isInteger(n) || n < 1 || n > 100) throw new RangeError(`a recovery code batch holds 1 to 100 codes, not ${n}`);
  const codes = new Set<string>();
  // A duplicate is astronomically unlikely, but two equal codes in one batch would make "used once" ambiguous.
  while (codes.size < n) {
    let raw = '';
    // randomInt draws without modulo bias.
    for (let i = 0; i < LENGTH; i++) raw += RECOVERY_ALPHABET[randomInt(RECOVERY_ALPHABET.length)];
    codes.add(group(raw));
  }
  return [...codes];
}

/** The canonical grouped form of what a user typed (any case, spaces and dashes anywhere), or null when it cannot be a code. */
export function normaliseRecoveryCode(input: string): string | null {
  const raw = input.toLowerCase().replace(/[\s-]+/g, '');
  if (raw.length !== LENGTH) return null;
  for (const c of raw) if (!RECOVERY_ALPHABET.includes(c)) return null;
  return group(raw);
}

/**
 * SHA-256 hex of the canonical form, for storage. A plain hash is enough, unlike for
 * passwords: with ~59 random bits per code and no dictionary to try, brute-forcing even
 * one leaked hash costs ~2^58 hashes on average.
 * Throws on input that is not a code: callers normalise user input first.
 */
export function hashRecoveryCode(code: string): string {
  const canonical = normaliseRecoveryCode(code);
  if (canonical === null) throw new Error('not a recovery code');
  return createHash('sha256').update(canonical, 'utf8').digest('hex');
}
