import { createHash } from 'node:crypto';

/** 32-byte keyed chunk identifier, hex-encoded (64 lowercase hex chars). */
export type ChunkId = string & { readonly __brand: 'ChunkId' };
/** Snapshot identifier: 16 random bytes, hex. */
export type SnapshotId = string & { readonly __brand: 'SnapshotId' };
/** Pack identifier: SHA-256 of the whole pack file, hex. */
export type PackId = string & { readonly __brand: 'PackId' };

const HEX64 = /^[0-9a-f]{64}$/;
const HEX32 = /^[0-9a-f]{32}$/;

export function isChunkId(s: unknown): s is ChunkId {
  return typeof s === 'string' && HEX64.test(s);
}
export function isPackId(s: unknown): s is PackId {
  return typeof s === 'string' && HEX64.test(s);
}
export function isSnapshotId(s: unknown): s is SnapshotId {
  return typeof s === 'string' && HEX32.test(s);
}

export function sha256(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}
export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Normalises a certificate fingerprint given as hex with or without colons, any case. */
export function normalizeFingerprint(fp: string): string {
  const hex = fp.replace(/[:\s]/g, '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new Error('a SHA-256 fingerprint is 64 hexadecimal digits (colons allowed)');
  }
  return hex;
}

/** Formats a hex fingerprint as colon-separated uppercase pairs (openssl style). */
export function formatFingerprint(hex: string): string {
  return normalizeFingerprint(hex).toUpperCase().match(/../g)!.join(':');
}

const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
export function base32Encode(buf: Uint8Array): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const b of buf) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += B32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += B32[(value << (5 - bits)) & 31];
  return out;
}
export function base32Decode(s: string): Buffer {
  const clean = s.toUpperCase().replace(/[\s-]/g, '').replace(/=+$/, '');
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const c of clean) {
    const v = B32.indexOf(c);
    if (v < 0) throw new Error(`invalid character ${JSON.stringify(c)}`);
    value = (value << 5) | v;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 255);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}
