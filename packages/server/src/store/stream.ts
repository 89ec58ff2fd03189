import { finished, Readable, Transform, type TransformCallback } from 'node:stream';
import { ObjectStoreError } from './object-store.js';

/** A stream of no bytes (a zero-length range or an empty object). */
export function emptyStream(): Readable {
  return Readable.from([], { objectMode: false });
}

/**
 * Passes `source` through and holds it to `getStream`'s contract: the returned stream
 * yields exactly `length` bytes and ends, or is destroyed with an ObjectStoreError — when
 * the source fails (`wrap` turns its error into one), closes early, or yields too few or
 * too many bytes. Destroying the returned stream destroys the source (closing its file
 * handle or connection).
 */
export function exactLengthStream(source: Readable, length: number, what: string, wrap: (err: unknown) => ObjectStoreError): Readable {
  let seen = 0;
  const out = new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, cb: TransformCallback): void {
      seen += chunk.length;
      if (seen > length) cb(new ObjectStoreError(`${what}: more than the expected ${length} bytes`));
      else cb(null, chunk);
    },
    flush(cb: TransformCallback): void {
      cb(seen === length ? null : new ObjectStoreError(`${what}: ended after ${seen} of ${length} bytes`));
    },
  });
  finished(source, (err) => {
    if (err && !out.destroyed) out.destroy(err instanceof ObjectStoreError ? err : wrap(err));
  });
  out.once('close', () => {
    if (!source.readableEnded && !source.destroyed) source.destroy();
  });
  source.pipe(out);
  return out;
}
