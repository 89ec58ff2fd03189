import pg from 'pg';
import type { PostgresPool, PostgresPoolClient } from 'kysely';

/**
 * The database cannot be reached or lost its connection (refused, reset, timed out, shut
 * down, too many connections): nothing was committed by the statement that failed, and
 * the same request may succeed in a moment. The HTTP layer answers 503 UNAVAILABLE, which
 * agents retry. Classified from the driver's error type and SQLSTATE class, never its text.
 */
export class DatabaseUnavailableError extends Error {
  override readonly name = 'DatabaseUnavailableError';
  constructor(readonly reason: string, options?: { cause?: unknown }) {
    super(`the database cannot be reached: ${reason}`, options);
  }
}

/**
 * SQLSTATE classes and codes that mean "the connection or the server's state, not the
 * statement": 08 connection exception, 57P0x shutdown, 53 insufficient resources, 55P03 a
 * lock not obtained within lock_timeout, 57014 a statement cancelled (timeout).
 */
function unavailableSqlState(code: string): boolean {
  return code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || code.startsWith('53') || code === '55P03' || code === '57014';
}

/**
 * Session settings: a transaction left open by a process that hangs is ended after a minute
 * (releasing its locks); a lock not obtained within five minutes fails the statement (503,
 * retried) instead of waiting for ever; the server notices within about a minute that a
 * client vanished without closing its connection (and drops its session locks).
 */
const SESSION_OPTIONS = [
  '-c idle_in_transaction_session_timeout=60000',
  '-c lock_timeout=300000',
  '-c tcp_keepalives_idle=30',
  '-c tcp_keepalives_interval=10',
  '-c tcp_keepalives_count=3',
].join(' ');

/** Whether an error thrown by pg means the server or the connection is unavailable. */
export function isPgUnavailable(err: unknown): boolean {
  if (!(err instanceof Error) || err instanceof TypeError || err instanceof RangeError) return false;
  const code = (err as { code?: unknown }).code;
  if (err instanceof pg.DatabaseError) return typeof code === 'string' && unavailableSqlState(code);
  // Not an error the server sent: a socket error (ECONNREFUSED, ECONNRESET…), a connect
  // timeout, or the client noticing its connection is gone.
  return true;
}

function reasonOf(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && code !== '') return code;
  return err instanceof Error ? err.message.split('\n')[0]!.slice(0, 200) : String(err);
}

function classify(err: unknown): unknown {
  return isPgUnavailable(err) ? new DatabaseUnavailableError(reasonOf(err), { cause: err }) : err;
}

/** int8 (bigint: sizes, counts, sequence numbers) and numeric (sums) as JS numbers; coffre's are far below 2^53. */
function parseNumber(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) && !(Number.isFinite(n) && !Number.isInteger(n))) throw new RangeError(`number out of range: ${text}`);
  return n;
}
const INT8_OID = 20;
const NUMERIC_OID = 1700;
const types = {
  getTypeParser: ((oid: number, format?: string) => {
    if ((oid === INT8_OID || oid === NUMERIC_OID) && format !== 'binary') return parseNumber;
    return (pg.types.getTypeParser as (oid: number, format?: string) => unknown)(oid, format);
  }) as typeof pg.types.getTypeParser,
};

export interface PgPoolOptions {
  readonly url: string;
  /** Connections per server process (default 20). */
  readonly max?: number;
}

/**
 * A pg pool as Kysely's PostgreSQL dialect wants it, whose connection and query failures
 * come out as DatabaseUnavailableError when they are about reaching the server. Errors of
 * idle connections (the server restarted) are absorbed: the pool drops such a client.
 */
export function createPgPool(opts: PgPoolOptions): PostgresPool & { readonly raw: pg.Pool } {
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.max ?? 20,
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
    application_name: 'coffre-server',
    // The client notices a server that vanished without closing the connection, too.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    options: SESSION_OPTIONS,
    types,
  });
  pool.on('error', () => undefined);
  return {
    raw: pool,
    async connect(): Promise<PostgresPoolClient> {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (err) {
        throw classify(err);
      }
      let broken = false;
      // A checked-out client gets no help from the pool: a connection lost under it emits
      // 'error' on the client, which would crash the process if nobody listened. The query
      // in flight rejects on its own (and is classified below).
      const onError = (): void => {
        broken = true;
      };
      client.on('error', onError);
      const query = client.query.bind(client) as (...args: unknown[]) => unknown;
      const wrapped: PostgresPoolClient = {
        query: ((...args: unknown[]) => {
          const r = query(...args);
          if (r instanceof Promise) {
            return r.catch((err: unknown) => {
              const c = classify(err);
              if (c instanceof DatabaseUnavailableError) broken = true;
              throw c;
            });
          }
          return r; // a cursor
        }) as PostgresPoolClient['query'],
        // A connection that failed is not given back to the pool (it may hold session state, e.g. an advisory lock).
        release: (destroy?: boolean) => {
          client.off('error', onError);
          client.release(destroy === true || broken ? true : undefined);
        },
      };
      return wrapped;
    },
    end: () => pool.end(),
  };
}

/** postgres://user:password@host:port/db → postgres://user@host:port/db (for messages and logs). */
export function redactDatabaseUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '';
    for (const k of [...u.searchParams.keys()]) if (/pass|secret|key/i.test(k)) u.searchParams.set(k, '***');
    return u.toString().replace(/:@/, '@');
  } catch {
    return '(malformed URL)';
  }
}
