/**
 * The control-plane tables a replica copies from its primary, in the order their rows can
 * be inserted (a row's foreign keys point to tables earlier in the list) and deleted
 * (reverse order). Each lists its key and the columns copied; anything else in a row the
 * primary sends is ignored, so a primary cannot write a column the replica does not expect.
 * Local-only columns (`customers.seq`, the chunk index's numbers) are never copied: each
 * site hands out its own. Packs and snapshots are copied separately (objects first,
 * checked), see pull.ts; sessions, enrolment tokens, throttling, the outbox, leases and GC
 * state are a site's own.
 */
export interface ReplicatedTable {
  readonly name: string;
  readonly key: readonly string[];
  readonly columns: readonly string[];
  /** Rows of this table belong to one customer through this column (a replica only receives its customers' rows). */
  readonly customerColumn?: string;
  /** Columns that never go back on the replica (see upsertRows). */
  readonly monotonic?: Readonly<Record<string, 'keep-set' | 'max'>>;
  /** Access-control rows: a deletion applies at once (a revoked way in must not stay open for the delay). */
  readonly deleteAtOnce?: boolean;
}

export const REPLICATED_TABLES: readonly ReplicatedTable[] = [
  { name: 'tiers', key: ['id'], columns: ['id', 'name', 'limit_bytes', 'monthly_price_cents', 'created_at'] },
  {
    name: 'orgs',
    key: ['id'],
    columns: [
      'id', 'name', 'type', 'parent_id', 'status', 'alert_email', 'referent_name', 'referent_email', 'referent_phone', 'locale',
      'created_at', 'updated_at', 'suspended_at', 'tier_id', 'pending_tier_id', 'pending_tier_from', 'tier_exceeded_period', 'retention_json',
    ],
  },
  { name: 'customers', key: ['id'], columns: ['id', 'name', 'created_at'], customerColumn: 'id' },
  { name: 'sites', key: ['name'], columns: ['name', 'url', 'fingerprint', 'country', 'provider', 'hds_certified', 'created_at', 'updated_at'] },
  { name: 'customer_sites', key: ['customer_id'], columns: ['customer_id', 'primary_site', 'replica_site', 'replicated_up_to', 'updated_at'], customerColumn: 'customer_id' },
  {
    name: 'site_authorisations',
    key: ['customer_id', 'site_name'],
    columns: ['customer_id', 'site_name', 'authorised_by', 'authorised_on', 'document', 'recorded_at', 'recorded_by'],
    customerColumn: 'customer_id',
  },
  {
    name: 'site_changes',
    key: ['id'],
    columns: ['id', 'kind', 'site_name', 'customer_id', 'change_json', 'effective_at', 'announced_at', 'announced_by', 'applied_at'],
  },
  {
    name: 'users',
    key: ['id'],
    columns: [
      'id', 'org_id', 'email', 'name', 'role', 'status', 'password_hash', 'must_change_password', 'password_changed_at', 'totp_secret',
      'totp_confirmed_at', 'totp_last_step', 'locale', 'created_at', 'updated_at', 'last_login_at',
    ],
    monotonic: { totp_last_step: 'max' },
  },
  { name: 'access_reviews', key: ['id'], columns: ['id', 'org_id', 'reviewed_by', 'reviewed_at', 'report_json'] },
  { name: 'recovery_codes', key: ['user_id', 'code_hash'], columns: ['user_id', 'code_hash', 'created_at', 'used_at'], monotonic: { used_at: 'keep-set' }, deleteAtOnce: true },
  {
    name: 'webauthn_credentials',
    key: ['id'],
    columns: ['id', 'user_id', 'public_key', 'counter', 'transports', 'name', 'created_at', 'last_used_at'],
    monotonic: { counter: 'max' },
    deleteAtOnce: true,
  },
  {
    name: 'machines',
    key: ['id'],
    columns: [
      'id', 'customer_id', 'name', 'hostname', 'os', 'agent_version', 'credential_hash', 'created_at', 'last_seen_at', 'revoked_at',
      'credential_issued_at', 'schedule_reported_at', 'schedule_since', 'last_heartbeat_at', 'retention_json',
    ],
    customerColumn: 'customer_id',
  },
  { name: 'machine_jobs', key: ['machine_id', 'name'], columns: ['machine_id', 'name', 'schedule', 'timezone'] },
  { name: 'repos', key: ['customer_id'], columns: ['customer_id', 'config_json', 'created_at'], customerColumn: 'customer_id' },
  // A removed key slot must stop opening the backups on the replica too (not held like data).
  { name: 'key_slots', key: ['customer_id', 'id'], columns: ['customer_id', 'id', 'seq', 'slot_json', 'created_at', 'created_by_machine'], customerColumn: 'customer_id', deleteAtOnce: true },
  {
    name: 'alerts',
    key: ['id'],
    columns: ['id', 'customer_id', 'machine_id', 'kind', 'opened_at', 'closed_at', 'since', 'error_code', 'last_notified_at', 'reminders_sent', 'subject', 'closed_notified_at'],
    customerColumn: 'customer_id',
  },
];

/** The snapshot rows' columns (copied once the snapshot's references are all present on the replica). */
export const SNAPSHOT_COLUMNS = [
  'customer_id', 'id', 'machine_id', 'parent', 'time', 'manifest_json', 'ref_count', 'logical_size', 'deleted_at', 'deleted_by', 'delete_reason', 'hold_until',
] as const;
/** What may change on a snapshot the replica holds (the recycle bin); the rest is immutable, and a change is an alert. */
export const SNAPSHOT_MUTABLE = ['deleted_at', 'deleted_by', 'delete_reason', 'hold_until'] as const;

/** Every name a feed request may ask for: the tables above, plus packs and snapshots (per customer). */
export function replicatedTable(name: string): ReplicatedTable | undefined {
  return REPLICATED_TABLES.find((t) => t.name === name);
}

/** A row's key as one string (JSON array of its key values), for sets and `replica_holds.key`. */
export function keyString(t: Pick<ReplicatedTable, 'key'>, row: Readonly<Record<string, unknown>>): string {
  return JSON.stringify(t.key.map((k) => row[k] ?? null));
}
