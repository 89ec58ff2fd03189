import type { Database } from '../db/database.js';
import { allCustomerIds } from '../db/queries/customers.js';
import type { ServerSettings } from '../datadir.js';
import type { LogSink } from '../log.js';
import type { MailTransport } from '../mail/transport.js';
import type { ObjectStore } from '../store/object-store.js';
import type { AuditLog } from '../audit/log.js';
import type { Clock } from '../types.js';
import type { ServerKeys } from '../auth/server-key.js';
import { getSiteState } from '../db/queries/replication.js';

/** What a server job may use; passed explicitly (the server and `job run` build it alike). */
export interface JobContext {
  readonly db: Database;
  /** The object store (packs, snapshot reference lists). */
  readonly store: ObjectStore;
  /** Operations that change customers' data (retention removing snapshots…) are audited. */
  readonly audit: AuditLog;
  readonly clock: Clock;
  readonly log: LogSink;
  readonly settings: ServerSettings;
  /** Where emails go once in the outbox; null when no SMTP server is configured (they wait). */
  readonly mailer: MailTransport | null;
  /** Report what would be done, change nothing (jobs with `supportsDryRun`). */
  readonly dryRun?: boolean;
  /** Per-customer jobs (gc, verify, retention, metering) work on these customers only (`job run --customer`); default: all. */
  readonly onlyCustomers?: readonly string[];
  /** The server key (a replica seals the replication credential and people's TOTP secrets with it). */
  readonly keys?: ServerKeys;
  /** This site's certificate fingerprint (a replica tells it to its primary). */
  readonly fingerprint?: string;
}

/**
 * Jobs that act on customers' data or write to people (observatory, reports, metering,
 * retention, gc) run on the primary site only: a replica copies their results, and a
 * demoted primary must change nothing. Returns the job's "nothing done" result elsewhere.
 */
export async function skipUnlessPrimary(ctx: Pick<JobContext, 'db' | 'clock'>, job: string): Promise<JobResult | null> {
  const state = await getSiteState(ctx.db);
  if (!state || state.role === 'primary') return null;
  const now = ctx.clock().toISOString();
  const detail = state.role === 'replica' ? 'this site is a replica: the primary runs this job, its results are replicated here' : 'this site was demoted (another site is the primary): nothing done';
  return { job, startedAt: now, finishedAt: now, counts: {}, items: [{ id: 'site', outcome: 'ok', detail }] };
}

/** The customers a per-customer job works on: every one, or `ctx.onlyCustomers`. */
export async function customersForJob(ctx: Pick<JobContext, 'db' | 'onlyCustomers'>): Promise<string[]> {
  const all = await allCustomerIds(ctx.db);
  return ctx.onlyCustomers ? all.filter((c) => ctx.onlyCustomers!.includes(c)) : all;
}

/** One item a job looked at (a machine, an alert, a snapshot…) and what it did with it. */
export interface JobItem {
  readonly id: string;
  /** failed: the item needs someone (the job's exit code is 1); warning: worth a look (e.g. nobody to email). */
  readonly outcome: 'ok' | 'changed' | 'warning' | 'failed';
  readonly detail: string;
}

export interface JobResult {
  readonly job: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  /** Counters for people and scripts (e.g. opened: 2, closed: 1). */
  readonly counts: Readonly<Record<string, number>>;
  readonly items: readonly JobItem[];
}

/**
 * A server job: one class per file, run on its schedule by the server and on demand by
 * `coffre-server job run NAME`. A job is idempotent (running it twice in a row changes
 * nothing the second time) and a failure on one item never stops the others.
 */
export interface Job {
  readonly name: string;
  /** What it does, for `job list` and the docs. */
  readonly description: string;
  /** Default cron schedule in the server's time zone (Europe/Paris). */
  readonly defaultSchedule: string;
  /** Whether `job run NAME --dry-run` is possible. */
  readonly supportsDryRun?: boolean;
  run(ctx: JobContext): Promise<JobResult>;
}
