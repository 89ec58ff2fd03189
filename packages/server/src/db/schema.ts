// Over 400 lines on purpose: one row type per table and the DB map Kysely needs, in one place.
/**
 * Row types of the metadata database, as Kysely sees them. Portable across SQLite and
 * PostgreSQL: ids are TEXT, times are ISO-8601 UTC TEXT of one fixed format
 * (`Date#toISOString`, so string order is time order), sizes are BIGINT read as numbers
 * (all far below 2^53; the PostgreSQL dialect must parse int8 as number).
 */
export interface CustomersTable {
  id: string;
  /** Its number in the chunk index (`chunks.customer_seq`): from `sequences`, never reused. */
  seq: number;
  name: string;
  created_at: string;
}

export interface EnrollTokensTable {
  id: string;
  customer_id: string;
  token_hash: string; // hex SHA-256 of the whole token; the token itself is never stored
  created_at: string;
  expires_at: string;
  used_at: string | null;
  machine_id: string | null;
  /** Set on a re-issue token: enrolling with it gives this machine a new credential. */
  reissue_machine_id: string | null;
  /** User id (or "cli:<os user>") that issued the token. */
  created_by: string | null;
}

export interface MachinesTable {
  id: string;
  customer_id: string;
  name: string;
  hostname: string;
  os: string;
  agent_version: string;
  credential_hash: string; // hex SHA-256 of the bearer credential
  created_at: string;
  last_seen_at: string | null;
  revoked_at: string | null;
  credential_issued_at: string | null;
  schedule_reported_at: string | null;
  schedule_since: string | null;
  last_heartbeat_at: string | null;
  /** A retention policy for this machine only (JSON RetentionPolicy), null = its customer's. */
  retention_json: string | null;
}

export interface ReposTable {
  customer_id: string;
  config_json: string;
  created_at: string;
  /** Until when one upgrade to storage format 2 is allowed (operator's approval); null: not allowed. */
  upgrade_allowed_until: string | null;
}

export interface KeySlotsTable {
  customer_id: string;
  id: string;
  seq: number; // order of the slots; only grows (a change gives new slots higher numbers: the generation)
  slot_json: string; // opaque to the server
  created_at: string;
  created_by_machine: string;
}

export interface PacksTable {
  customer_id: string;
  id: string;
  /** Its number in the chunk index (`chunks.pack_seq`): from `sequences`, never reused. */
  seq: number;
  size: number;
  chunk_count: number;
  created_at: string;
  /** Last re-hash of its blobs by the verify job; null = never. */
  verified_at: string | null;
}

/**
 * One row per stored chunk: the largest table by far (one row per small file), so it is
 * kept small (docs/BENCHMARKS.md): ids and hashes as raw 32-byte BLOBs, the customer and
 * the pack by their integer numbers, the touch as milliseconds. Its creation time is its pack's.
 */
export interface ChunksTable {
  pack_seq: number;
  offset: number;
  /** Last upload of the chunk or "exists" answer about it, ms since the epoch (GC, docs/GC.md); null before the GC migration: the pack's created_at. */
  touched_ms: number | null;
  customer_seq: number;
  length: number;
  id: Buffer;
  sha256: Buffer;
}

/** Counters for integer keys (`customers.seq`, `packs.seq`): one row per name, `last` handed out. */
export interface SequencesTable {
  name: string;
  last: number;
}

export interface SnapshotsTable {
  customer_id: string;
  id: string;
  machine_id: string;
  parent: string | null;
  time: string; // server time of the commit
  manifest_json: string;
  ref_count: number;
  logical_size: number;
  /** In the recycle bin since (null = live); the row stays until the bin is emptied. */
  deleted_at: string | null;
  deleted_by: string | null;
  delete_reason: string | null;
  /** Restored from the recycle bin: retention leaves it alone until then. */
  hold_until: string | null;
}

export { ORG_TYPES, type OrgType } from '@coffre/core';
import type { OrgType } from '@coffre/core';
export const ORG_STATUSES = ['active', 'suspended'] as const;
export type OrgStatus = (typeof ORG_STATUSES)[number];
export const LOCALES = ['fr', 'en'] as const;
export type Locale = (typeof LOCALES)[number];

export interface OrgsTable {
  id: string;
  name: string;
  type: OrgType;
  parent_id: string | null;
  status: OrgStatus;
  alert_email: string | null;
  referent_name: string | null;
  referent_email: string | null;
  referent_phone: string | null;
  locale: Locale;
  created_at: string;
  updated_at: string;
  suspended_at: string | null;
  tier_id: string | null;
  /** The tier a crossing moves the customer to, from `pending_tier_from` (YYYY-MM-01). */
  pending_tier_id: string | null;
  pending_tier_from: string | null;
  /** The period (YYYY-MM) whose crossing of the tier limit was last emailed. */
  tier_exceeded_period: string | null;
  /** Customers: their retention policy (JSON RetentionPolicy), null = the default. */
  retention_json: string | null;
}

export const USER_STATUSES = ['active', 'disabled'] as const;
export type UserStatus = (typeof USER_STATUSES)[number];

export interface UsersTable {
  id: string;
  org_id: string;
  email: string;
  name: string;
  role: string; // a Role (http/roles.ts)
  status: UserStatus;
  password_hash: string;
  must_change_password: number; // 0 | 1
  password_changed_at: string | null;
  totp_secret: string | null;
  totp_pending_secret: string | null;
  totp_confirmed_at: string | null;
  totp_last_step: number | null;
  locale: Locale;
  created_at: string;
  updated_at: string;
  last_login_at: string | null;
}

export interface RecoveryCodesTable {
  user_id: string;
  code_hash: string;
  created_at: string;
  used_at: string | null;
}

export interface WebauthnCredentialsTable {
  id: string;
  user_id: string;
  public_key: string;
  counter: number;
  transports: string;
  name: string;
  created_at: string;
  last_used_at: string | null;
}

export interface SessionsTable {
  id: string;
  token_hash: string;
  user_id: string;
  created_at: string;
  last_seen_at: string;
  expires_at: string;
  second_factor_at: string | null;
  ip: string | null;
  user_agent: string | null;
  challenge: string | null;
  challenge_expires_at: string | null;
  revoked_at: string | null;
}

export interface AuthThrottleTable {
  key: string;
  failures: number;
  window_start: string;
  locked_until: string | null;
}

export interface AuditLogTable {
  seq: number;
  time: string;
  actor_type: string;
  actor_id: string | null;
  actor_label: string | null;
  org_id: string | null;
  action: string;
  target: string | null;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  outcome: string;
  details_json: string | null;
  prev_hash: string;
  hash: string;
}

export interface AuditAnchorTable {
  id: number;
  seq: number;
  hash: string;
  purged_at: string;
}

export interface AuditSigningKeyTable {
  id: number;
  /** SHA-256 (hex) of the raw 32-byte Ed25519 public key. */
  key_id: string;
  /** SPKI PEM. */
  public_key: string;
  created_at: string;
}

export interface AuditCheckpointsTable {
  kind: 'checkpoint' | 'purge';
  seq: number;
  hash: string;
  time: string;
  installation_id: string;
  purge_before: string | null;
  retention_days: number | null;
  key_id: string;
  /** Ed25519 signature, base64, over audit/checkpoint.ts's checkpointMessage. */
  signature: string;
}

export interface AccessReviewsTable {
  id: string;
  org_id: string;
  reviewed_by: string;
  reviewed_at: string;
  report_json: string;
}

export const RUN_RESULTS = ['success', 'partial', 'failed'] as const;
export type RunResult = (typeof RUN_RESULTS)[number];

export interface BackupRunsTable {
  id: string;
  customer_id: string;
  machine_id: string;
  started_at: string;
  finished_at: string;
  received_at: string;
  result: RunResult;
  files: number;
  bytes: number;
  added_bytes: number;
  warnings: number;
  snapshot_id: string | null;
  error_code: string | null;
  job_name: string | null;
  trigger: RunTrigger | null;
}

export interface TiersTable {
  id: string;
  name: string;
  limit_bytes: number;
  monthly_price_cents: number;
  created_at: string;
}

export interface MachineJobsTable {
  machine_id: string;
  name: string;
  schedule: string;
  timezone: string;
}

export const ALERT_KINDS = ['backup_missed', 'backup_failed', 'verify_mismatch', 'replica_lag'] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

export interface AlertsTable {
  id: string;
  customer_id: string;
  machine_id: string | null;
  kind: AlertKind;
  opened_at: string;
  closed_at: string | null;
  since: string | null;
  error_code: string | null;
  last_notified_at: string | null;
  reminders_sent: number;
  /** What the alert is about when not a machine (e.g. "pack:<id>"). */
  subject: string | null;
  /** When its "back to normal" email was enqueued (null while owed, or while open). */
  closed_notified_at: string | null;
}

export const RUN_TRIGGERS = ['manual', 'schedule', 'retry'] as const;
export type RunTrigger = (typeof RUN_TRIGGERS)[number];

export interface RestoreTestsTable {
  id: string;
  customer_id: string;
  machine_id: string;
  snapshot_id: string;
  started_at: string;
  finished_at: string;
  received_at: string;
  result: 'success' | 'failed';
  sampled_files: number;
  compared_files: number;
  bytes: number;
  mismatches: number;
  error_code: string | null;
}

export const OUTBOX_STATUSES = ['pending', 'sent', 'failed'] as const;
export type OutboxStatus = (typeof OUTBOX_STATUSES)[number];

export interface OutboxTable {
  id: string;
  dedup_key: string;
  kind: string;
  to_address: string;
  locale: Locale;
  subject: string;
  text_body: string;
  html_body: string;
  created_at: string;
  status: OutboxStatus;
  attempts: number;
  next_attempt_at: string;
  last_error: string | null;
  sent_at: string | null;
}

export interface UsageDailyTable {
  customer_id: string;
  date: string;
  protected_bytes: number;
  stored_bytes: number;
  tier_id: string | null;
  limit_bytes: number | null;
}

/** An agent's backup in progress (docs/GC.md): from its first chunk query or pack upload to its snapshot commit. */
export interface UploadSessionsTable {
  customer_id: string;
  machine_id: string;
  started_at: string;
  last_seen_at: string;
}

/** Bumped by every GC transaction that deletes chunk rows of the customer. */
export interface GcEpochsTable {
  customer_id: string;
  epoch: number;
}

export const TOMBSTONE_REASONS = ['dead', 'repacked', 'orphan'] as const;
export type TombstoneReason = (typeof TOMBSTONE_REASONS)[number];

/** A pack removed from the index by GC: its object goes at `delete_after`; its id is never indexed again. */
export interface PackTombstonesTable {
  customer_id: string;
  id: string;
  size: number;
  reason: TombstoneReason;
  replaced_by: string | null;
  deleted_at: string;
  delete_after: string;
  object_deleted_at: string | null;
}

/** A pack object seen in the store with no index row. */
export interface GcOrphansTable {
  customer_id: string;
  pack_id: string;
  first_seen_at: string;
}

export interface GcLeaseTable {
  name: string;
  holder: string;
  acquired_at: string;
  expires_at: string;
}

/** Who this installation is (one row): refuses a store or a database of another one, or a data directory with another server key. */
export interface InstallationTable {
  id: number; // always 1
  installation_id: string;
  /** HMAC of a fixed label under the server key: every instance must hold the same key. */
  server_key_check: string;
  /** "fs" (the data directory's objects/) or "s3://bucket[/prefix]": the one store this installation's objects are in. */
  store_identity: string;
  /** When the installation marker was written in that store (null: not yet). */
  marker_written_at: string | null;
  created_at: string;
}

/**
 * Leases that make one process among several do a piece of work (the job scheduler's
 * leader). `fence` grows by one at every change of holder: work stamped with an older
 * fence than the current one comes from a holder that lost the lease.
 */
export interface JobLeasesTable {
  name: string;
  holder: string;
  fence: number;
  acquired_at: string;
  expires_at: string;
}

/** One row per scheduled job time that was claimed (a job runs once per tick across instances). */
export interface JobTicksTable {
  job: string;
  tick: string; // the scheduled time, ISO UTC
  holder: string;
  fence: number;
  started_at: string;
  finished_at: string | null;
  outcome: string | null; // ok | failed
}

/** A site of the installation (docs/CONTINUITY.md): replicated to every site. */
export interface SitesTable {
  name: string;
  url: string | null;
  /** SHA-256 fingerprint of its TLS certificate, as `coffre-server fingerprint` prints it. */
  fingerprint: string | null;
  /** ISO 3166-1 alpha-2 country code of its data centre. */
  country: string;
  /** Hosting provider (the company operating the data centre). */
  provider: string;
  /** Certified health-data host: 1 | 0. */
  hds_certified: number;
  created_at: string;
  updated_at: string;
}

export const SITE_ROLES = ['primary', 'replica', 'demoted'] as const;
export type SiteRole = (typeof SITE_ROLES)[number];

/** Who this site is (one row, id 1, never replicated). */
export interface SiteStateTable {
  id: number;
  self_name: string;
  role: SiteRole;
  /** Fencing number: raised by a promotion; a site that sees a higher one is demoted. */
  epoch: number;
  /** The URL agents reach this site at (written by `start`). */
  self_url: string | null;
  primary_name: string | null;
  primary_url: string | null;
  primary_fingerprint: string | null;
  /** The replication credential, sealed with the server key (replicas only). */
  credential_sealed: string | null;
  joined_at: string | null;
  demoted_at: string | null;
  demoted_by_epoch: number | null;
  pass_started_at: string | null;
  pass_finished_at: string | null;
  pass_outcome: string | null;
  pass_error: string | null;
  /** The primary's clock when the last complete pass began: the replica holds everything the primary had then. */
  replicated_up_to: string | null;
  audit_diverged_at: string | null;
  audit_diverged_reason: string | null;
  /** Until then, a pass may hold more than the usual share of what the replica has as deleted (the operator confirmed a large deletion). */
  mass_deletion_accepted_until: string | null;
  /** On a replica: the primary's audit public key (SPKI PEM), pinned at the first pass. */
  primary_audit_key: string | null;
  updated_at: string;
}

export interface CustomerSitesTable {
  customer_id: string;
  primary_site: string;
  replica_site: string | null;
  /** Reported by the replica after each complete pass (primary's clock). */
  replicated_up_to: string | null;
  updated_at: string;
}

/** A customer's express authorisation to keep its data on a site outside the EU/EEA. */
export interface SiteAuthorisationsTable {
  customer_id: string;
  site_name: string;
  authorised_by: string;
  authorised_on: string;
  document: string;
  recorded_at: string;
  recorded_by: string;
}

/** A change of where data live: announced (emailed) first, applied on `effective_at` (docs/CONTINUITY.md). */
export interface SiteChangesTable {
  id: string;
  /** 'site': a site's country, provider or certification; 'customer': a customer's primary and replica sites. */
  kind: 'site' | 'customer';
  site_name: string | null;
  customer_id: string | null;
  change_json: string;
  effective_at: string;
  announced_at: string;
  announced_by: string;
  applied_at: string | null;
}

export interface ReplicationTokensTable {
  id: string;
  token_hash: string;
  created_at: string;
  expires_at: string;
  used_at: string | null;
  created_by: string;
}

export interface ReplicationCredentialsTable {
  id: string;
  credential_hash: string;
  site_name: string;
  created_at: string;
  last_seen_at: string | null;
  pass_finished_at: string | null;
  replicated_up_to: string | null;
  revoked_at: string | null;
  /** The credential with which this site calls that replica back (to repair a damaged pack from its copy), sealed. */
  peer_credential_sealed: string | null;
}

/** On a replica: a row or object the primary no longer has, deleted once held long enough. */
export interface ReplicaHoldsTable {
  tbl: string;
  key: string;
  customer_id: string | null;
  first_missing_at: string;
}

export type ReplicatedAuditTable = AuditLogTable;

export interface DB {
  sites: SitesTable;
  site_state: SiteStateTable;
  customer_sites: CustomerSitesTable;
  site_authorisations: SiteAuthorisationsTable;
  site_changes: SiteChangesTable;
  replication_tokens: ReplicationTokensTable;
  replication_credentials: ReplicationCredentialsTable;
  replica_holds: ReplicaHoldsTable;
  replicated_audit: ReplicatedAuditTable;
  installation: InstallationTable;
  job_leases: JobLeasesTable;
  job_ticks: JobTicksTable;
  upload_sessions: UploadSessionsTable;
  gc_epochs: GcEpochsTable;
  pack_tombstones: PackTombstonesTable;
  gc_orphans: GcOrphansTable;
  gc_lease: GcLeaseTable;
  outbox: OutboxTable;
  usage_daily: UsageDailyTable;
  restore_tests: RestoreTestsTable;
  machine_jobs: MachineJobsTable;
  alerts: AlertsTable;
  tiers: TiersTable;
  backup_runs: BackupRunsTable;
  orgs: OrgsTable;
  users: UsersTable;
  recovery_codes: RecoveryCodesTable;
  webauthn_credentials: WebauthnCredentialsTable;
  sessions: SessionsTable;
  auth_throttle: AuthThrottleTable;
  audit_log: AuditLogTable;
  audit_anchor: AuditAnchorTable;
  audit_signing_key: AuditSigningKeyTable;
  audit_checkpoints: AuditCheckpointsTable;
  access_reviews: AccessReviewsTable;
  customers: CustomersTable;
  enroll_tokens: EnrollTokensTable;
  machines: MachinesTable;
  repos: ReposTable;
  key_slots: KeySlotsTable;
  packs: PacksTable;
  chunks: ChunksTable;
  sequences: SequencesTable;
  snapshots: SnapshotsTable;
}
