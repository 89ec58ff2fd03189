import { existsSync, readFileSync, readdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { S3_ENDPOINT, s3Env } from './backends.js';

/**
 * The objects a test server stores, reached the way someone with access to the storage
 * would (files under DIR/objects, or the bucket through the S3 API) — to look at them or
 * damage them, never through the server. Keys are the server's (`packs/<customer>/…`).
 */
export interface ServerObjects {
  list(prefix: string): Promise<{ key: string; size: number }[]>;
  get(key: string): Promise<Buffer>;
  put(key: string, data: Buffer): Promise<void>;
  delete(key: string): Promise<void>;
}

/** The store of the server whose data directory is `dataDir` (its server.json says which). */
export function serverObjects(dataDir: string): ServerObjects {
  const settings = JSON.parse(readFileSync(join(dataDir, 'server.json'), 'utf8')) as { store?: string | null; s3Endpoint?: string | null };
  return settings.store ? s3Objects(settings.store, settings.s3Endpoint ?? S3_ENDPOINT) : fsObjects(join(dataDir, 'objects'));
}

function fsObjects(root: string): ServerObjects {
  return {
    async list(prefix) {
      const out: { key: string; size: number }[] = [];
      const walk = (d: string): void => {
        for (const n of readdirSync(d)) {
          if (n.startsWith('.')) continue; // temp files
          const p = join(d, n);
          const st = statSync(p);
          if (st.isDirectory()) walk(p);
          else out.push({ key: relative(root, p).split('\\').join('/'), size: st.size });
        }
      };
      if (existsSync(root)) walk(root);
      return out.filter((o) => o.key.startsWith(prefix)).sort((a, b) => (a.key < b.key ? -1 : 1));
    },
    get: async (key) => readFileSync(join(root, key)),
    put: async (key, data) => writeFileSync(join(root, key), data),
    delete: async (key) => unlinkSync(join(root, key)),
  };
}

function s3Objects(url: string, endpoint: string): ServerObjects {
  const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(url);
  if (!m) throw new Error(`not an s3:// URL: ${url}`);
  const bucket = m[1]!;
  const base = m[2] ? `${m[2].replace(/\/$/, '')}/` : '';
  const env = s3Env();
  const s3 = new S3Client({
    region: env.AWS_REGION!,
    endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID!, secretAccessKey: env.AWS_SECRET_ACCESS_KEY! },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return {
    async list(prefix) {
      const out: { key: string; size: number }[] = [];
      let token: string | undefined;
      do {
        const r = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: base + prefix, ContinuationToken: token }));
        for (const o of r.Contents ?? []) out.push({ key: o.Key!.slice(base.length), size: o.Size ?? 0 });
        token = r.IsTruncated ? r.NextContinuationToken : undefined;
      } while (token);
      return out.sort((a, b) => (a.key < b.key ? -1 : 1));
    },
    async get(key) {
      const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: base + key }));
      return Buffer.from(await r.Body!.transformToByteArray());
    },
    async put(key, data) {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: base + key, Body: data, ContentLength: data.length }));
    },
    async delete(key) {
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: base + key }));
    },
  };
}

/** Pack objects (keys ending in a 64-hex pack id), largest first. */
export async function packObjects(objects: ServerObjects): Promise<{ key: string; size: number }[]> {
  return (await objects.list('packs/')).filter((o) => /\/[0-9a-f]{64}$/.test(o.key)).sort((a, b) => b.size - a.size);
}

/** Flips one bit of the byte at `offset` of an object; returns what puts it back. */
export async function flipObjectByte(objects: ServerObjects, key: string, offset: number): Promise<() => Promise<void>> {
  const original = await objects.get(key);
  const damaged = Buffer.from(original);
  damaged[offset]! ^= 0x01;
  await objects.put(key, damaged);
  return () => objects.put(key, original);
}
