import { PostgresAdapter, sql, type Kysely, type Transaction } from 'kysely';
import type { DB } from './schema.js';

/** The two database engines coffre runs on (docs/DEPLOYMENT.md). */
export type Engine = 'sqlite' | 'postgres';

/** Which engine a database handle (or a transaction of it) talks to. */
export function engineOf(db: Kysely<DB> | Kysely<unknown>): Engine {
  return db.getExecutor().adapter instanceof PostgresAdapter ? 'postgres' : 'sqlite';
}

/**
 * Names of the sections that must not run at the same time as another of the same name,
 * across every process and server instance sharing the database. On SQLite every write
 * transaction already holds the database's single write lock (`BEGIN IMMEDIATE`), so all
 * sections are mutually exclusive for free; on PostgreSQL each named section takes a
 * transaction-scoped advisory lock (released at commit or rollback, also when the
 * connection dies). Whoever holds a name may read, decide and write as if alone:
 * - `customer(id)`: a customer's storage index (chunks, packs, tombstones, snapshots, GC
 *   epochs, repository and key slots, upload sessions, retention's bin);
 * - `AUDIT`: the audit chain (append, purge);
 * - `user(id)`: a person's second factors and recovery codes;
 * - `throttle(key)`: one login-throttling counter;
 * - `lease(name)`: a lease row (GC's, the job scheduler's).
 */
export const LockName = {
  customer: (id: string): string => `customer:${id}`,
  user: (id: string): string => `user:${id}`,
  throttle: (key: string): string => `throttle:${key}`,
  lease: (name: string): string => `lease:${name}`,
  machine: (id: string): string => `machine:${id}`,
  AUDIT: 'audit',
} as const;

/** PostgreSQL error codes worth running a transaction again for: serialization failure, deadlock detected. */
const RETRYABLE_PG_CODES = new Set(['40001', '40P01']);
const MAX_ATTEMPTS = 4;

function pgCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string' ? (err as { code: string }).code : undefined;
}

/**
 * Runs `fn` in a write transaction that holds the named locks (see `LockName`) from its
 * start to its end. `fn` must only touch the database (it may run more than once on
 * PostgreSQL, after a deadlock or serialization failure; nothing it did in a failed
 * attempt is kept). Locks are taken in sorted order, so two sections naming the same
 * locks can never deadlock on them.
 *
 * Never call this from inside another transaction's `fn`: the inner one would wait for a
 * second connection (SQLite has one) or for a lock the outer one holds.
 */
export async function writeTransaction<T>(db: Kysely<DB>, locks: readonly string[], fn: (trx: Transaction<DB>) => Promise<T>): Promise<T> {
  if (engineOf(db) === 'sqlite') return db.transaction().execute(fn);
  const names = [...new Set(locks)].sort();
  // Writers of this process that need the same names queue here first, holding no
  // connection: at most one connection per name and process waits on PostgreSQL's lock,
  // so one customer's burst of uploads cannot take every connection of the pool.
  return localQueue(db).runAll(names, () => pgWriteTransaction(db, names, fn));
}

const localQueues = new WeakMap<object, InProcessLocks>();
function localQueue(db: object): InProcessLocks {
  let q = localQueues.get(db);
  if (!q) localQueues.set(db, (q = new InProcessLocks()));
  return q;
}

async function pgWriteTransaction<T>(db: Kysely<DB>, names: readonly string[], fn: (trx: Transaction<DB>) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction().execute(async (trx) => {
        for (const name of names) await sql`select pg_advisory_xact_lock(hashtextextended(${name}, 0))`.execute(trx);
        return fn(trx);
      });
    } catch (err) {
      const code = pgCode(err);
      if (code === undefined || !RETRYABLE_PG_CODES.has(code) || attempt >= MAX_ATTEMPTS) throw err;
      await new Promise((r) => setTimeout(r, 5 + Math.random() * 20 * attempt));
    }
  }
}

/**
 * Holds the named lock while `fn` runs, outside any transaction (for sections that do slow
 * non-database work, such as writing an object, between their reads and their writes).
 * PostgreSQL: a session advisory lock on a connection kept for the duration (released if
 * that connection dies); SQLite: an in-process queue, enough because one server process
 * owns an embedded data directory.
 */
export interface SectionLocks {
  run<T>(name: string, fn: () => Promise<T>): Promise<T>;
}

/**
 * Section locks for a database. On PostgreSQL `lockDb` should be a handle on a pool of its
 * own: each held section keeps one connection for its whole duration, which must never
 * starve the queries the section itself runs. Sections of one process queue in-process
 * first, so at most one connection per name and process is used.
 */
export function sectionLocks(db: Kysely<DB>, lockDb: Kysely<DB> = db): SectionLocks {
  return engineOf(db) === 'postgres' ? new PgSectionLocks(lockDb) : new InProcessLocks();
}

class PgSectionLocks implements SectionLocks {
  private readonly local = new InProcessLocks();
  constructor(private readonly db: Kysely<DB>) {}

  run<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return this.local.run(name, () => this.held(name, fn));
  }

  private held<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return this.db.connection().execute(async (conn) => {
      await sql`select pg_advisory_lock(hashtextextended(${name}, 0))`.execute(conn);
      try {
        return await fn();
      } finally {
        // A failed unlock means a broken connection, whose locks PostgreSQL releases itself.
        await sql`select pg_advisory_unlock(hashtextextended(${name}, 0))`.execute(conn).catch(() => undefined);
      }
    });
  }
}

/** In-process mutual exclusion per name (the embedded deployment: one server process). */
export class InProcessLocks implements SectionLocks {
  private readonly tails = new Map<string, Promise<void>>();

  /** Holds every name (taken in the order given: sort them) while `fn` runs. */
  runAll<T>(names: readonly string[], fn: () => Promise<T>): Promise<T> {
    if (names.length === 0) return fn();
    return this.run(names[0]!, () => this.runAll(names.slice(1), fn));
  }

  async run<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(name) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous.then(() => mine);
    this.tails.set(name, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.tails.get(name) === tail) this.tails.delete(name);
    }
  }
}
