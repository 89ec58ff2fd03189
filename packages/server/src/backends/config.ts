import { redactDatabaseUrl } from '../db/postgres.js';
import type { DatabaseTarget } from '../db/database.js';
import type { DataDirPaths } from '../datadir.js';
import { parseStoreUrl as parseS3Url } from '../store/s3-store.js';

/**
 * Where a server keeps its data: the metadata database and the object store. The embedded
 * default is an SQLite file and a directory inside the data directory; PostgreSQL and an
 * S3-compatible bucket are chosen, in this order of precedence, by the command line
 * (`--database`, `--store`), the environment (`COFFRE_DATABASE_URL`, `COFFRE_STORE_URL`,
 * `COFFRE_S3_ENDPOINT`) or the data directory's server.json (`database`, `store`,
 * `s3Endpoint`). S3 credentials and region come only from the SDK's standard sources
 * (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`…), never from server.json.
 */
export type StoreTarget =
  | { readonly kind: 'fs'; readonly root: string }
  | {
      readonly kind: 's3';
      /** s3://BUCKET[/PREFIX], as given. */
      readonly url: string;
      readonly bucket: string;
      readonly prefix: string;
      /** http(s)://host:port of an S3-compatible service (path-style addressing), or null for AWS itself. */
      readonly endpoint: string | null;
      readonly region: string;
    };

export interface BackendTargets {
  readonly database: DatabaseTarget;
  readonly store: StoreTarget;
}

/** What the command line says (undefined = not given). */
export interface BackendOverrides {
  readonly database?: string | undefined;
  readonly store?: string | undefined;
}

/** What server.json says. */
export interface BackendSettings {
  readonly database: string | null;
  readonly store: string | null;
  readonly s3Endpoint: string | null;
}

/** A backend setting that cannot be used as given; the message never repeats a password. */
export class BackendConfigError extends Error {
  override readonly name = 'BackendConfigError';
}

const PG_URL = /^postgres(?:ql)?:\/\//;

/** Checks a PostgreSQL URL; `from` names where it came from, for the message. */
export function checkDatabaseUrl(url: string, from: string): string {
  let u: URL;
  try {
    if (!PG_URL.test(url)) throw new Error('scheme');
    u = new URL(url);
  } catch {
    throw new BackendConfigError(`${from} must be postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE (value not shown: it may hold a password)`);
  }
  if (!u.hostname && !u.searchParams.get('host')) throw new BackendConfigError(`${from} names no host: ${redactDatabaseUrl(url)}`);
  if (u.pathname.length <= 1) throw new BackendConfigError(`${from} names no database: ${redactDatabaseUrl(url)} (add /DATABASE)`);
  return url;
}

/** s3://BUCKET[/PREFIX] → bucket and prefix (the S3 store's own parser); `from` names where it came from. */
export function parseStoreUrl(url: string, from = 'the store URL'): { bucket: string; prefix: string } {
  try {
    return parseS3Url(url);
  } catch (err) {
    throw new BackendConfigError(`${from}: ${(err as Error).message}`);
  }
}

function checkEndpoint(url: string, from: string): string {
  try {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
    if (u.username || u.password) throw new BackendConfigError(`${from} must not hold credentials (use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)`);
    return u.origin + (u.pathname === '/' ? '' : u.pathname);
  } catch (err) {
    if (err instanceof BackendConfigError) throw err;
    throw new BackendConfigError(`${from} must be http(s)://HOST[:PORT], got ${JSON.stringify(url.slice(0, 200))}`);
  }
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

/** The backends a command uses, from the command line, the environment and server.json, in that order. */
export function resolveBackends(paths: DataDirPaths, settings: BackendSettings, overrides: BackendOverrides = {}, env: NodeJS.ProcessEnv = process.env): BackendTargets {
  const dbFlag = nonEmpty(overrides.database);
  const dbEnv = nonEmpty(env.COFFRE_DATABASE_URL);
  const database: DatabaseTarget =
    dbFlag !== undefined
      ? { kind: 'postgres', url: checkDatabaseUrl(dbFlag, '--database') }
      : dbEnv !== undefined
        ? { kind: 'postgres', url: checkDatabaseUrl(dbEnv, 'COFFRE_DATABASE_URL') }
        : settings.database !== null
          ? { kind: 'postgres', url: checkDatabaseUrl(settings.database, `${paths.settings}: database`) }
          : { kind: 'sqlite', file: paths.db };

  const storeFlag = nonEmpty(overrides.store);
  const storeEnv = nonEmpty(env.COFFRE_STORE_URL);
  const [storeUrl, storeFrom] =
    storeFlag !== undefined ? [storeFlag, '--store'] : storeEnv !== undefined ? [storeEnv, 'COFFRE_STORE_URL'] : settings.store !== null ? [settings.store, `${paths.settings}: store`] : [null, ''];
  let store: StoreTarget = { kind: 'fs', root: paths.objects };
  if (storeUrl !== null) {
    const { bucket, prefix } = parseStoreUrl(storeUrl, storeFrom);
    const endpointEnv = nonEmpty(env.COFFRE_S3_ENDPOINT);
    const endpoint =
      endpointEnv !== undefined ? checkEndpoint(endpointEnv, 'COFFRE_S3_ENDPOINT') : settings.s3Endpoint !== null ? checkEndpoint(settings.s3Endpoint, `${paths.settings}: s3Endpoint`) : null;
    const region = nonEmpty(env.AWS_REGION) ?? nonEmpty(env.AWS_DEFAULT_REGION) ?? 'us-east-1';
    store = { kind: 's3', url: `s3://${bucket}${prefix ? `/${prefix}` : ''}`, bucket, prefix, endpoint, region };
  }
  return { database, store };
}

/** What names the one store an installation's objects are in: "fs" (the data directory's objects/), or "s3://bucket[/prefix]" (whatever the endpoint it is reached through). */
export function storeIdentity(t: StoreTarget): string {
  return t.kind === 'fs' ? 'fs' : t.url;
}

/** The store for messages and logs. */
export function describeStore(t: StoreTarget): string {
  return t.kind === 'fs' ? t.root : `${t.url}${t.endpoint ? ` at ${t.endpoint}` : ''}`;
}

/** True when the data directory holds data (the embedded database or store), not only settings and secrets. */
export function holdsData(t: BackendTargets): boolean {
  return t.database.kind === 'sqlite' || t.store.kind === 'fs';
}
