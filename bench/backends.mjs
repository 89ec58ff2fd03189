// PostgreSQL + S3 helpers for the benchmark: fresh databases and bucket prefixes for
// coffre-server, their sizes, and clean-up. `pg` and `@aws-sdk/client-s3` are the
// server's own dependencies (installed in the repository's node_modules); they are
// imported only when a PostgreSQL + S3 run is asked for.
//
// Environment (defaults = the services of scripts/services/):
//   BENCH_PG_URL        postgres://postgres:coffre-test@127.0.0.1:5433/postgres  (an admin connection: create/drop database)
//   BENCH_S3_ENDPOINT   http://127.0.0.1:8080  (path-style)
//   BENCH_S3_BUCKET     coffre-test  (created if missing)
//   BENCH_S3_ACCESS_KEY, BENCH_S3_SECRET_KEY, BENCH_S3_REGION   test:tester, testing, us-east-1
import fs from 'node:fs';
import process from 'node:process';
import { randomBytes } from 'node:crypto';

export function pgS3Config(env = process.env) {
  return {
    pgUrl: env.BENCH_PG_URL || 'postgres://postgres:coffre-test@127.0.0.1:5433/postgres',
    s3Endpoint: env.BENCH_S3_ENDPOINT || 'http://127.0.0.1:8080',
    bucket: env.BENCH_S3_BUCKET || 'coffre-test',
    accessKey: env.BENCH_S3_ACCESS_KEY || 'test:tester',
    secretKey: env.BENCH_S3_SECRET_KEY || 'testing',
    region: env.BENCH_S3_REGION || 'us-east-1',
  };
}

/** postgres://user:password@host/db → postgres://user@host/db (for logs and results). */
export function redactUrl(url) {
  try {
    const u = new URL(url);
    u.password = '';
    return u.toString().replace(/:@/, '@');
  } catch {
    return '(malformed URL)';
  }
}

/** The URL of another database on the same server. */
export function databaseUrl(adminUrl, name) {
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

/** A name for a fresh database or prefix: label, UTC time, random suffix (lower case, [a-z0-9_]). */
export function freshName(label) {
  const stamp = new Date().toISOString().replace(/[-:TZ.]/g, '').slice(0, 14);
  return `${label}_${stamp}_${randomBytes(3).toString('hex')}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
}

async function pgClient(url) {
  const pg = (await import('pg')).default;
  const c = new pg.Client({ connectionString: url, application_name: 'coffre-bench', connectionTimeoutMillis: 10_000 });
  await c.connect();
  return c;
}

async function withPg(url, fn) {
  const c = await pgClient(url);
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

export async function pgVersion(adminUrl) {
  return withPg(adminUrl, async (c) => (await c.query('show server_version')).rows[0].server_version);
}

export async function createDatabase(adminUrl, name) {
  await withPg(adminUrl, (c) => c.query(`create database ${name}`));
  return databaseUrl(adminUrl, name);
}

export async function dropDatabase(adminUrl, name) {
  await withPg(adminUrl, (c) => c.query(`drop database if exists ${name} with (force)`));
}

/** pg_database_size and the chunk index's share of it (chunks, packs and their indexes). */
export async function databaseSizes(url) {
  return withPg(url, async (c) => {
    const { rows } = await c.query(`select pg_database_size(current_database()) as database,
      coalesce(pg_total_relation_size(to_regclass('chunks')), 0) as chunks,
      coalesce(pg_total_relation_size(to_regclass('packs')), 0) as packs,
      (select count(*) from chunks) as chunk_rows`);
    const r = rows[0];
    return { database_bytes: Number(r.database), chunks_bytes: Number(r.chunks), packs_bytes: Number(r.packs), chunk_rows: Number(r.chunk_rows) };
  });
}

export async function s3Client(cfg) {
  const s3 = await import('@aws-sdk/client-s3');
  const client = new s3.S3Client({
    region: cfg.region, endpoint: cfg.s3Endpoint, forcePathStyle: true,
    credentials: { accessKeyId: cfg.accessKey, secretAccessKey: cfg.secretKey },
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return { client, s3 };
}

/** Creates the bucket if it does not exist; throws if the service cannot be used. */
export async function ensureBucket({ client, s3 }, bucket) {
  try {
    await client.send(new s3.HeadBucketCommand({ Bucket: bucket }));
    return false;
  } catch (err) {
    const status = err && err.$metadata && err.$metadata.httpStatusCode;
    if (status !== 404 && err.name !== 'NotFound' && err.name !== 'NoSuchBucket') throw err;
  }
  await client.send(new s3.CreateBucketCommand({ Bucket: bucket }));
  return true;
}

async function* listPrefix({ client, s3 }, bucket, prefix) {
  let token;
  do {
    const r = await client.send(new s3.ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of r.Contents || []) yield o;
    token = r.IsTruncated ? r.NextContinuationToken : undefined;
  } while (token);
}

/** Bytes and count of the objects under prefix (ListObjectsV2 sizes). */
export async function prefixBytes(s3c, bucket, prefix) {
  let bytes = 0;
  let objects = 0;
  for await (const o of listPrefix(s3c, bucket, prefix)) {
    bytes += Number(o.Size || 0);
    objects++;
  }
  return { bytes, objects };
}

/** Deletes every object under prefix, one by one (Swift's DeleteObjects wants Content-MD5, which SDK v3 does not send). */
export async function deletePrefix(s3c, bucket, prefix) {
  const keys = [];
  for await (const o of listPrefix(s3c, bucket, prefix)) keys.push(o.Key);
  let i = 0;
  const worker = async () => {
    while (i < keys.length) {
      const Key = keys[i++];
      await s3c.client.send(new s3c.s3.DeleteObjectCommand({ Bucket: bucket, Key }));
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return keys.length;
}

/**
 * CPU seconds used so far by the PostgreSQL and Swift processes of this machine
 * (`postgres`, `swift-*`), including reaped children: the work the coffre server hands
 * to its backends. Counts every session of those services, not only the benchmark's.
 */
export function servicesCpuSeconds(clkTck = 100) {
  return processCpuSeconds((comm) => comm === 'postgres' || comm.startsWith('swift-'), clkTck);
}

/** CPU seconds (user + sys, reaped children included) of every process whose name `keep` accepts. */
export function processCpuSeconds(keep, clkTck = 100) {
  let ticks = 0;
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (!keep(comm)) continue;
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    } catch {
      // exited
    }
  }
  return ticks / clkTck;
}
