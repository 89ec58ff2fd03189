import type { ByteRange } from '../../store/object-store.js';

/**
 * Parses a single-range `Range: bytes=…` header against an object of `size` bytes
 * (RFC 9110 §14.1.2): `a-b` (b clamped to the end), `a-`, or the suffix form `-n`.
 * Returns null without a header, undefined when the header is malformed, a multi-range,
 * or unsatisfiable: the caller answers 416.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | null | undefined {
  if (header === undefined) return null;
  const m = /^bytes=(\d{0,15})-(\d{0,15})$/.exec(header.trim());
  if (!m) return undefined;
  const [, a = '', b = ''] = m;
  let start: number;
  let end: number;
  if (a === '') {
    const n = Number(b);
    if (b === '' || n === 0) return undefined;
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(a);
    end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
    if (b !== '' && Number(b) < start) return undefined;
  }
  if (start >= size || end < start) return undefined;
  return { offset: start, length: end - start + 1 };
}
