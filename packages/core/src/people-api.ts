/**
 * Shapes of the people's API responses (console and scripts). The server's handlers return
 * exactly these types and the console reads them: one definition for both. Types only,
 * browser-safe (imported as `@coffre/core/people-api`).
 */
import type { OrgType, Role } from './roles.js';
import type { MachineRecord } from './api.js';

export type Locale = 'fr' | 'en';
export type OrgStatus = 'active' | 'suspended';

export interface OrgRecord {
  readonly id: string;
  readonly name: string;
  readonly type: OrgType;
  readonly parentId: string | null;
  readonly status: OrgStatus;
  readonly alertEmail: string | null;
  readonly incidentReferent: { readonly name: string | null; readonly email: string | null; readonly phone: string | null };
  readonly locale: Locale;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly suspendedAt: string | null;
}
export interface OrgWithReview extends OrgRecord {
  readonly accessReviewOverdue: boolean;
}
/** A site where a customer's data live, as people are shown it. */
export interface SiteSummary {
  readonly name: string;
  /** ISO 3166 country code of the data centre. */
  readonly country: string;
  readonly provider: string;
  readonly hdsCertified: boolean;
  readonly inEu: boolean;
}
/** Where a customer's data live and how far its second-site copy is (GET /orgs/{id} of a customer). */
export interface CustomerSites {
  readonly primary: SiteSummary | null;
  readonly replica: SiteSummary | null;
  /** The replica holds everything the primary had at this time (null: never replicated). */
  readonly replicatedUpTo: string | null;
  /** Announced changes of where the data live, not yet in effect. */
  readonly announced: readonly { readonly effectiveAt: string }[];
}
export interface OrgDetail extends OrgWithReview {
  /** Customers only. */
  readonly sites?: CustomerSites;
}
export interface OrgListResponse {
  readonly orgs: readonly OrgWithReview[];
}

export interface PersonRecord {
  readonly id: string;
  readonly orgId: string;
  readonly email: string;
  readonly name: string;
  readonly role: Role;
  readonly status: 'active' | 'disabled';
  readonly locale: Locale;
  readonly mustChangePassword: boolean;
  readonly secondFactor: { readonly totp: boolean; readonly webauthn: number };
  readonly createdAt: string;
  readonly lastLoginAt: string | null;
}

export interface AccessReviewRow {
  readonly id: string;
  readonly name: string;
  readonly email: string;
  readonly role: Role;
  readonly status: 'active' | 'disabled';
  readonly lastLoginAt: string | null;
  readonly secondFactor: 'totp' | 'webauthn' | 'totp+webauthn' | 'none';
  readonly createdAt: string;
}
export interface AccessReport {
  readonly org: { readonly id: string; readonly name: string; readonly type: OrgType };
  readonly generatedAt: string;
  readonly users: readonly AccessReviewRow[];
  readonly lastReview: { readonly reviewedAt: string; readonly reviewedBy: string; readonly reviewerName: string | null } | null;
  readonly dueAt: string;
  readonly overdue: boolean;
}

/** A volume tier of the operator's price list (R13): the limit applies to the protected volume. */
export interface TierRecord {
  readonly id: string;
  readonly name: string;
  readonly limitBytes: number;
  readonly monthlyPriceCents: number;
}
export interface TierListResponse {
  readonly tiers: readonly TierRecord[];
}

/**
 * A machine's (and, the worst of its machines', a customer's) backup status: failed (the
 * latest reported run failed), late (a scheduled backup is past due), never (no snapshot
 * yet), no_schedule (the agent reports no scheduled job), ok. See `machineStatus`.
 */
export type BackupStatus = 'ok' | 'late' | 'failed' | 'never' | 'no_schedule';

/** Most severe first: the order of the dashboard's default sort. */
export const BACKUP_STATUS_SEVERITY: Readonly<Record<BackupStatus, number>> = { failed: 0, late: 1, never: 2, no_schedule: 3, ok: 4 };

/**
 * A customer's status: the worst of its active machines' statuses (a revoked machine owes
 * nothing and cannot clear its own failure). Without an active machine: never backed up,
 * or no schedule when backups exist (nothing will back it up again).
 */
export function customerStatus(machines: readonly { readonly revoked: boolean; readonly status: BackupStatus; readonly lastSuccessAt: string | null }[]): BackupStatus {
  const active = machines.filter((m) => !m.revoked);
  if (active.length > 0) return worstStatus(active.map((m) => m.status));
  return machines.some((m) => m.lastSuccessAt !== null) ? 'no_schedule' : 'never';
}

/** The most severe of several statuses; a customer without machines was never backed up. */
export function worstStatus(statuses: Iterable<BackupStatus>): BackupStatus {
  let worst: BackupStatus | null = null;
  for (const s of statuses) if (worst === null || BACKUP_STATUS_SEVERITY[s] < BACKUP_STATUS_SEVERITY[worst]) worst = s;
  return worst ?? 'never';
}
export interface CustomerSummary {
  readonly id: string;
  readonly name: string;
  readonly parentId: string | null;
  readonly parentName: string | null;
  readonly orgStatus: OrgStatus;
  readonly backupStatus: BackupStatus;
  readonly lastSuccessAt: string | null;
  readonly machines: number;
  readonly protectedBytes: number;
  readonly storedBytes: number;
  /** The subscribed tier, or null when none is set yet. */
  readonly tier: TierRecord | null;
  /** Alerts the observatory opened and that are not closed yet. */
  readonly openAlerts: number;
}
export interface DashboardResponse {
  readonly generatedAt: string;
  readonly customers: readonly CustomerSummary[];
}

export interface SnapshotSummary {
  readonly id: string;
  readonly time: string;
  readonly machineId: string;
  readonly machineName: string;
  readonly logicalSize: number;
  readonly chunks: number;
  readonly parent: string | null;
}
export interface OrgSnapshotListResponse {
  readonly snapshots: readonly SnapshotSummary[];
}

/** A scheduled job as the machine's agent reports it (never its paths). */
export interface MachineJobRecord {
  readonly name: string;
  readonly schedule: string;
  readonly timezone: string;
}

/** A customer's machine as people see it (GET /orgs/{orgId}/machines): what agents see, and more. */
export interface CustomerMachineRecord extends MachineRecord {
  readonly os: string;
  readonly agentVersion: string;
  readonly credentialIssuedAt: string | null;
  readonly revokedAt: string | null;
  readonly jobs: readonly MachineJobRecord[];
  /** When the agent last reported its schedule, or null if it never did. */
  readonly scheduleReportedAt: string | null;
  /** Its backup status (revoked machines: from their history, they owe nothing). */
  readonly status: BackupStatus;
  readonly lastSuccessAt: string | null;
  /** Next scheduled run after now, or null without a schedule. */
  readonly nextExpectedAt: string | null;
  /** The daemon's last heartbeat, or null if no daemon ever ran. */
  readonly lastHeartbeatAt: string | null;
  /** The newest restore test of this machine (the last proven restore when it succeeded). */
  readonly lastRestoreTest: RestoreTestSummary | null;
}

/** A restore test as the agent reports it: a sample of a snapshot restored and compared. */
export interface RestoreTestSummary {
  readonly snapshotId: string;
  readonly finishedAt: string;
  readonly result: 'success' | 'failed';
  readonly sampledFiles: number;
  readonly comparedFiles: number;
  readonly mismatches: number;
}
export interface CustomerMachineListResponse {
  readonly machines: readonly CustomerMachineRecord[];
}

/**
 * backup_missed: a scheduled backup did not happen; backup_failed: the latest run failed;
 * verify_mismatch: a stored pack no longer matches its recorded checksums (server side);
 * replica_lag: the customer's copy on its second site is further behind than allowed.
 */
export type AlertKind = 'backup_missed' | 'backup_failed' | 'verify_mismatch' | 'replica_lag';
export interface AlertRecord {
  readonly id: string;
  readonly customerId: string;
  readonly customerName: string;
  readonly machineId: string | null;
  readonly machineName: string | null;
  readonly kind: AlertKind;
  readonly openedAt: string;
  /** Null while the alert is open. */
  readonly closedAt: string | null;
  /** The scheduled time that was missed, or the failed run's end, when known. */
  readonly since: string | null;
  /** The failed run's error code, when the agent gave one. */
  readonly errorCode: string | null;
}
export interface AlertListResponse {
  readonly alerts: readonly AlertRecord[];
}

export type RunResult = 'success' | 'partial' | 'failed';
export interface RunRecord {
  readonly id: string;
  readonly machineId: string;
  readonly machineName: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly receivedAt: string;
  readonly durationMs: number;
  readonly result: RunResult;
  readonly files: number;
  readonly bytes: number;
  readonly addedBytes: number;
  readonly warnings: number;
  readonly snapshotId: string | null;
  readonly errorCode: string | null;
  /** The daemon's job name, or null for a manual `coffre backup`. */
  readonly job: string | null;
  readonly trigger: 'manual' | 'schedule' | 'retry' | null;
}
export interface RunListResponse {
  readonly runs: readonly RunRecord[];
}

export interface UsagePoint {
  readonly date: string;
  readonly bytes: number;
}
export interface UsageResponse {
  readonly stored: readonly UsagePoint[];
  readonly protected: readonly UsagePoint[];
}

export type AuditOutcomeName = 'success' | 'failure' | 'denied';
/** One audit trail entry (the server's hash chain hashes every field but the chain fields, in order). */
export interface AuditEntryRecord {
  readonly seq: number;
  /** ISO 8601 UTC with milliseconds, exactly as `Date.prototype.toISOString` writes it. */
  readonly time: string;
  readonly actorType: 'user' | 'machine' | 'system' | 'cli' | 'anonymous';
  /** User id, machine id, OS user for the CLI. */
  readonly actorId: string | null;
  /** Email, machine name: what a human reading the trail recognises. */
  readonly actorLabel: string | null;
  /** Organisation the action concerns. */
  readonly orgId: string | null;
  /** Dotted verb, e.g. 'auth.login', 'user.create'. */
  readonly action: string;
  /** What was acted upon, e.g. 'user:UUID'. */
  readonly target: string | null;
  readonly ip: string | null;
  readonly userAgent: string | null;
  readonly requestId: string | null;
  readonly outcome: AuditOutcomeName;
  /** JSON-able, NEVER secrets (passwords, tokens, keys, TOTP codes): the trail is exported. */
  readonly details: Readonly<Record<string, unknown>> | null;
  readonly prevHash: string;
  readonly hash: string;
}
export interface AuditPageResponse {
  readonly entries: readonly AuditEntryRecord[];
  readonly nextBefore: number | null;
}
export interface ChainVerdictRecord {
  readonly ok: boolean;
  readonly count: number;
  readonly lastSeq: number | null;
  readonly firstBad?: { readonly seq: number; readonly problem: string; readonly message: string };
}
