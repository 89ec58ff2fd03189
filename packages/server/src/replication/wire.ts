import type { SignedCheckpoint } from '../audit/checkpoint.js';
import type { SiteRole } from '../db/schema.js';

/**
 * What sites say to each other (`/api/v1/replication/*`, `/api/v1/site`): defined once,
 * used by the primary's routes (routes/replication) and the replica's puller (pull.ts).
 */
export interface SiteDescription {
  readonly name: string;
  /** Where agents reach it; null until it has been started with a listen address. */
  readonly url: string | null;
  readonly fingerprint: string;
  readonly country?: string;
  readonly provider?: string;
  readonly hdsCertified?: boolean;
}

export interface JoinRequest {
  readonly token: string;
  readonly site: SiteDescription;
  /** The credential with which the primary may call this replica back, to repair a pack damaged on the primary from the replica's copy. */
  readonly repairCredential: string;
}
export interface JoinResponse {
  readonly credential: string;
  readonly primary: { readonly name: string; readonly epoch: number };
}

/** GET /site: public, for agents and other sites deciding where to write (defined in core, shared with agents). */
export type { SiteInfo } from '@coffre/core';

/** GET /replication/state: what a pass copies up to. */
export interface StateResponse {
  /** The primary's clock when it answered: a complete pass holds everything the primary had then. */
  readonly now: string;
  readonly name: string;
  readonly role: SiteRole;
  readonly epoch: number;
  /** The newest database migration: both sites must run the same version. */
  readonly schema: string;
  readonly auditHead: { readonly seq: number; readonly hash: string } | null;
  /** The audit public key (SPKI PEM) the primary signs its checkpoints with: the replica pins it at its first pass. */
  readonly auditKey: string | null;
  readonly customers: readonly string[];
}

export interface RowsPage {
  readonly rows: readonly Record<string, unknown>[];
  /** The key to ask after for the next page; null on the last page. */
  readonly next: readonly unknown[] | null;
}
export interface PacksPage {
  readonly packs: readonly { readonly id: string; readonly size: number; readonly created_at: string }[];
  readonly next: string | null;
}
export interface SnapshotsPage {
  readonly snapshots: readonly Record<string, unknown>[];
  readonly next: string | null;
}
export interface AuditPage {
  readonly entries: readonly Record<string, unknown>[];
  /** The primary's purge anchor (the chain's start when older entries were purged). */
  readonly anchor: { readonly seq: number; readonly hash: string } | null;
  /** The signed checkpoints of the entries in this page (audit/checkpoint.ts). */
  readonly checkpoints: readonly SignedCheckpoint[];
  /** The signed purge marker of the anchor, if any. */
  readonly purgeMarker: SignedCheckpoint | null;
}

export interface ProgressRequest {
  readonly site: { readonly url: string | null; readonly fingerprint: string };
  readonly upTo: string;
  /** Whether the replica holds everything the primary had at `upTo` (else only the customers listed are). */
  readonly complete: boolean;
  readonly customers: readonly string[];
}

export { EPOCH_HEADER } from '@coffre/core';

/** Page sizes of the feed. */
export const ROWS_PAGE = 500;
export const PACKS_PAGE = 1000;
export const SNAPSHOTS_PAGE = 200;
export const AUDIT_PAGE = 1000;
