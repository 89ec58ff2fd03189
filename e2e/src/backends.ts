import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';

/**
 * Which backends the e2e servers run on: `COFFRE_TEST_BACKEND=postgres-s3` gives every
 * server a fresh PostgreSQL database and a fresh prefix in an S3 bucket (the real services
 * scripts/test.sh starts: scripts/services/); anything else, the embedded default.
 */
export const TEST_BACKEND: 'embedded' | 'postgres-s3' = process.env.COFFRE_TEST_BACKEND === 'postgres-s3' ? 'postgres-s3' : 'embedded';

export const PG_ADMIN_URL = process.env.COFFRE_TEST_PG_URL ?? 'postgres://postgres:coffre-test@127.0.0.1:5433/postgres';
export const S3_ENDPOINT = process.env.COFFRE_TEST_S3_ENDPOINT ?? 'http://127.0.0.1:8080';
export const S3_BUCKET = process.env.COFFRE_TEST_S3_BUCKET ?? 'coffre-test';

/** What a coffre-server process needs in its environment to reach the test S3 service. */
export function s3Env(): Record<string, string> {
  return {
    COFFRE_S3_ENDPOINT: S3_ENDPOINT,
    AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'test:tester',
    AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'testing',
    AWS_REGION: process.env.AWS_REGION ?? 'us-east-1',
  };
}

// Child processes (servers, CLIs) inherit the S3 settings. The SDK is pinned for Node 20: its notice about later versions is noise here.
for (const [k, v] of Object.entries(s3Env())) process.env[k] ??= v;
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
// The audit signing keys the servers under test create (docs/adr/0011) go to a test directory,
// not to the account's ~/.config; the server processes and the CLIs inherit it.
process.env.XDG_CONFIG_HOME ??= join(tmpdir(), 'coffre-test-config');

const unreachable = (what: string, err: unknown): Error =>
  new Error(`${what} is not reachable (${(err as Error).message}); start the test services with: bash scripts/services/start-postgres.sh and bash scripts/services/start-swift-s3.sh (scripts/test.sh does it)`);

/** A new, empty PostgreSQL database; its URL. */
export async function freshDatabase(prefix = 'coffre_e2e'): Promise<string> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: PG_ADMIN_URL });
  try {
    await client.connect();
  } catch (err) {
    throw unreachable(`PostgreSQL at ${PG_ADMIN_URL.replace(/:[^:@/]*@/, '@')}`, err);
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

let bucketReady: Promise<void> | null = null;
/** The test bucket exists (created once per process). */
export function ensureBucket(): Promise<void> {
  bucketReady ??= (async () => {
    const env = s3Env();
    const s3 = new S3Client({
      region: env.AWS_REGION!,
      endpoint: S3_ENDPOINT,
      forcePathStyle: true,
      credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID!, secretAccessKey: env.AWS_SECRET_ACCESS_KEY! },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    try {
      await s3.send(new CreateBucketCommand({ Bucket: S3_BUCKET }));
    } catch (err) {
      const name = (err as { name?: string }).name;
      if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') throw unreachable(`S3 at ${S3_ENDPOINT}`, err);
    } finally {
      s3.destroy();
    }
  })();
  return bucketReady;
}

/** A fresh s3:// store URL (a new prefix in the test bucket). */
export async function freshStoreUrl(prefix = 'e2e'): Promise<string> {
  await ensureBucket();
  return `s3://${S3_BUCKET}/${prefix}-${randomBytes(6).toString('hex')}`;
}

/** Fresh PostgreSQL + S3 backends, as server.json settings. */
export async function freshBackends(): Promise<{ database: string; store: string; s3Endpoint: string }> {
  return { database: await freshDatabase(), store: await freshStoreUrl(), s3Endpoint: S3_ENDPOINT };
}

/**
 * Prepares `dataDir` for a server on the selected test backend: with postgres-s3, a
 * server.json naming a fresh database and store (every command given the directory finds
 * them there), added to the settings a test may have written already. A directory whose
 * settings already name a database is left alone (a restart). Returns the backends, or null
 * for the embedded default.
 */
export async function prepareDataDir(dataDir: string): Promise<{ database: string; store: string } | null> {
  if (TEST_BACKEND !== 'postgres-s3') return null;
  const file = join(dataDir, 'server.json');
  const current = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>) : { v: 1 };
  if (typeof current.database === 'string' && typeof current.store === 'string') return { database: current.database, store: current.store };
  const b = await freshBackends();
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeFileSync(file, `${JSON.stringify({ ...current, ...b }, null, 2)}\n`, { mode: 0o600 });
  return b;
}
