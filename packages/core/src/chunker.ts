/**
 * Content-defined chunker: FastCDC (Xia et al., 2016/2020) with normalised chunking
 * (level 2) and a gear table keyed from the repository master key, so that chunk
 * boundaries — and therefore chunk sizes — do not fingerprint well-known content.
 *
 * Pure: `findCut` looks only at the bytes it is given. The caller feeds a buffer that
 * holds at least `max` bytes after `start` unless the stream has ended.
 */
export interface ChunkerParams {
  readonly min: number;
  readonly avg: number;
  readonly max: number;
}

export const DEFAULT_CHUNKER: ChunkerParams = { min: 256 * 1024, avg: 1024 * 1024, max: 4 * 1024 * 1024 };
export const MAX_CHUNK_SIZE_LIMIT = 16 * 1024 * 1024;

export function validateChunkerParams(p: ChunkerParams): void {
  const pow2 = (n: number) => Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
  if (!pow2(p.avg) || p.avg < 256 || p.avg > 1 << 24) throw new Error('chunker avg must be a power of two in [256, 16 MiB]');
  if (!(Number.isInteger(p.min) && p.min >= 64 && p.min < p.avg)) throw new Error('chunker min must be in [64, avg)');
  if (!(Number.isInteger(p.max) && p.max > p.avg && p.max <= MAX_CHUNK_SIZE_LIMIT)) throw new Error('chunker max must be in (avg, 16 MiB]');
}

/** Top `bits` bits set in a 32-bit word (gear hashes mix best into their high bits). */
function highMask(bits: number): number {
  return bits >= 32 ? -1 : ((1 << bits) - 1) << (32 - bits);
}

export class Chunker {
  private readonly gear: Int32Array;
  private readonly maskS: number;
  private readonly maskL: number;
  readonly params: ChunkerParams;

  constructor(gear: Int32Array, params: ChunkerParams = DEFAULT_CHUNKER) {
    if (gear.length !== 256) throw new Error('gear table must have 256 entries');
    validateChunkerParams(params);
    this.gear = gear;
    this.params = params;
    const bits = Math.round(Math.log2(params.avg));
    this.maskS = highMask(bits + 2);
    this.maskL = highMask(bits - 2);
  }

  /**
   * Returns the length of the next chunk of `buf[start, end)`. When `end - start`
   * is less than `max` the caller must have reached the end of the stream: the
   * remainder then becomes a (possibly short) final chunk.
   */
  findCut(buf: Uint8Array, start: number, end: number): number {
    const { min, avg, max } = this.params;
    const n = end - start;
    if (n <= min) return n;
    const limit = n < max ? n : max;
    const normal = limit < avg ? limit : avg;
    const gear = this.gear;
    const maskS = this.maskS;
    const maskL = this.maskL;
    let h = 0;
    let i = start + min;
    const normalEnd = start + normal;
    const limitEnd = start + limit;
    for (; i < normalEnd; i++) {
      h = ((h << 1) + gear[buf[i]!]!) | 0;
      if ((h & maskS) === 0) return i + 1 - start;
    }
    for (; i < limitEnd; i++) {
      h = ((h << 1) + gear[buf[i]!]!) | 0;
      if ((h & maskL) === 0) return i + 1 - start;
    }
    return limit;
  }

  /** Splits a whole in-memory buffer; convenient for tests and small inputs. */
  split(buf: Uint8Array): number[] {
    const out: number[] = [];
    let pos = 0;
    while (pos < buf.length) {
      const len = this.findCut(buf, pos, buf.length);
      out.push(len);
      pos += len;
    }
    return out;
  }
}
