/**
 * Row types of the metadata database, as Kysely sees them. Portable across SQLite and
 * PostgreSQL: ids are TEXT, times are ISO-8601 UTC TEXT of one fixed format
 * (`Date#toISOString`, so string order is time order), sizes are BIGINT read as numbers
 * (all far below 2^53; the PostgreSQL dialect must parse int8 as number).
 */
export interface CustomersTable {
  id: string;
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
}

export interface ReposTable {
  customer_id: string;
  config_json: string;
  created_at: string;
}

export interface KeySlotsTable {
  customer_id: string;
  id: string;
  seq: number; // 0-based position in the repository's slot list
  slot_json: string; // opaque to the server
  created_at: string;
  created_by_machine: string;
}

export interface PacksTable {
  customer_id: string;
  id: string;
  size: number;
  chunk_count: number;
  created_at: string;
}

/**
 * One row per stored chunk: the largest table by far (one row per small file), so ids and
 * hashes are raw 32-byte BLOBs, not hex text. Its creation time is its pack's.
 */
export interface ChunksTable {
  customer_id: string;
  id: Buffer;
  pack_id: string;
  offset: number;
  length: number;
  sha256: Buffer;
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
}

export interface DB {
  customers: CustomersTable;
  enroll_tokens: EnrollTokensTable;
  machines: MachinesTable;
  repos: ReposTable;
  key_slots: KeySlotsTable;
  packs: PacksTable;
  chunks: ChunksTable;
  snapshots: SnapshotsTable;
}
