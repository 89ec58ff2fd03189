/**
 * The backends the server tests run on. `COFFRE_TEST_BACKEND=postgres-s3` gives every test
 * server a fresh PostgreSQL database and a fresh prefix in an S3 bucket on the real services
 * scripts/test.sh starts (scripts/services/); otherwise the embedded default. Tests that are
 * about PostgreSQL or S3 themselves use `freshDatabaseUrl` / `freshS3Store` whatever the switch.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { createS3Store, type S3Store } from '../src/store/s3-store.js';

export const TEST_BACKEND: 'embedded' | 'postgres-s3' = process.env.COFFRE_TEST_BACKEND === 'postgres-s3' ? 'postgres-s3' : 'embedded';
export const onPostgresS3 = TEST_BACKEND === 'postgres-s3';

export const PG_ADMIN_URL = process.env.COFFRE_TEST_PG_URL ?? 'postgres://postgres:coffre-test@127.0.0.1:5433/postgres';
export const S3_ENDPOINT = process.env.COFFRE_TEST_S3_ENDPOINT ?? 'http://127.0.0.1:8080';
export const S3_BUCKET = process.env.COFFRE_TEST_S3_BUCKET ?? 'coffre-test';

// The server under test (and the CLIs it spawns) read the standard variables.
process.env.AWS_ACCESS_KEY_ID ??= 'test:tester';
process.env.AWS_SECRET_ACCESS_KEY ??= 'testing';
process.env.AWS_REGION ??= 'us-east-1';
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
// The audit signing keys the test servers create (one per installation, ADR 0011) go to a
// test directory, not to the account's ~/.config; the CLIs they spawn find them there too.
process.env.XDG_CONFIG_HOME ??= path.join(os.tmpdir(), 'coffre-test-config');

const START_HINT = 'start the test services with: bash scripts/services/start-postgres.sh; bash scripts/services/start-swift-s3.sh (scripts/test.sh does it)';

/** A new, empty PostgreSQL database; its URL. */
export async function freshDatabaseUrl(prefix = 'coffre_t'): Promise<string> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: PG_ADMIN_URL });
  try {
    await client.connect();
  } catch (err) {
    throw new Error(`PostgreSQL is not reachable at ${PG_ADMIN_URL.replace(/:[^:@/]*@/, '@')} (${(err as Error).message}); ${START_HINT}`);
  }
  try {
    await client.query(`create database ${name}`);
  } finally {
    await client.end();
  }
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${name}`;
  return u.toString();
}

/** Drops a database made by `freshDatabaseUrl` (its connections are closed first). */
export async function dropDatabase(url: string): Promise<void> {
  const name = new URL(url).pathname.slice(1);
  if (!/^[a-z0-9_]+$/.test(name)) throw new Error(`not a test database name: ${name}`);
  const client = new pg.Client({ connectionString: PG_ADMIN_URL });
  await client.connect();
  try {
    await client.query(`drop database if exists ${name} with (force)`);
  } finally {
    await client.end();
  }
}

/** A client of the test S3 service (the caller destroys it). */
export function testS3Client(): S3Client {
  return new S3Client({
    region: process.env.AWS_REGION!,
    endpoint: S3_ENDPOINT,
    forcePathStyle: true,
    credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID!, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY! },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

let bucketReady: Promise<void> | null = null;
export function ensureTestBucket(): Promise<void> {
  bucketReady ??= (async () => {
    const s3 = testS3Client();
    try {
      await s3.send(new CreateBucketCommand({ Bucket: S3_BUCKET }));
    } catch (err) {
      const name = (err as { name?: string }).name;
      if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') throw new Error(`S3 is not reachable at ${S3_ENDPOINT} (${name}); ${START_HINT}`);
    } finally {
      s3.destroy();
    }
  })();
  return bucketReady;
}

/** A fresh s3:// URL (a new prefix in the test bucket). */
export async function freshStoreUrl(prefix = 't'): Promise<string> {
  await ensureTestBucket();
  return `s3://${S3_BUCKET}/${prefix}-${randomBytes(6).toString('hex')}`;
}

/** An S3 store under a fresh prefix of the test bucket. */
export async function freshS3Store(): Promise<S3Store> {
  const url = await freshStoreUrl();
  return createS3Store({ bucket: S3_BUCKET, prefix: url.slice(`s3://${S3_BUCKET}/`.length), endpoint: S3_ENDPOINT, forcePathStyle: true, region: process.env.AWS_REGION! });
}

/**
 * Readies a data directory for the selected backend before its first start: with
 * postgres-s3, its server.json names a fresh database and store (merged into settings a
 * test wrote already). A directory that already names them is left alone.
 */
export async function prepareDataDir(dataDir: string, backend = TEST_BACKEND): Promise<void> {
  if (backend !== 'postgres-s3') return;
  const file = path.join(dataDir, 'server.json');
  let current: Record<string, unknown> = { v: 1 };
  try {
    current = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (typeof current.database === 'string' && typeof current.store === 'string') return;
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const next = { ...current, database: await freshDatabaseUrl(), store: await freshStoreUrl(), s3Endpoint: S3_ENDPOINT };
  await writeFile(file, `${JSON.stringify(next, null, 2)}\n`, { mode: 0o600 });
}
