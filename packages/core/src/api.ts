import type { KeySlot } from './keys.js';
import type { ChunkerParams } from './chunker.js';
import type { ManifestUpload } from './manifest.js';

/**
 * The agent ↔ server storage API (docs/API.md). Every path is under /api/v1.
 * JSON bodies unless stated; errors are `ApiErrorBody` with a stable code.
 */
export const API_PREFIX = '/api/v1';
export const MAX_BATCH_IDS = 10_000;

/** Clear repository parameters: what any restorer needs besides the key. */
export interface RepoConfig {
  /** Storage format: 1 (every machine holds the master key) or 2 (machines only write; FORMAT.md). */
  readonly v: 1 | 2;
  readonly chunker: ChunkerParams;
  readonly compression: 'zstd';
  /** Format 2: the customer's X25519 public read key (base64). Agents check it against their own copy, never adopt it. */
  readonly readKey?: string;
  /** Format 2: the Ed25519 public key whose signatures authorise key-slot changes (base64). */
  readonly adminKey?: string;
}

export interface ApiErrorBody {
  readonly error: {
    readonly code: string;
    readonly message: string;
    readonly messageFr?: string;
    readonly requestId?: string;
    readonly details?: Record<string, unknown>;
  };
}

export interface HealthResponse {
  readonly ok: true;
  readonly version: string;
}

export interface EnrollRequest {
  readonly token: string;
  readonly machineName: string;
  readonly hostname: string;
  readonly os: string;
  readonly agentVersion: string;
}
export interface EnrollResponse {
  readonly machineId: string;
  readonly machineName: string;
  readonly customerId: string;
  readonly customerName: string;
  /** Bearer credential for every later request; shown once, stored hashed by the server. */
  readonly credential: string;
}

export interface RepoResponse {
  readonly customerId: string;
  readonly machineId: string;
  readonly machineName: string;
  readonly config: RepoConfig | null;
  readonly keySlots: readonly KeySlot[];
  /** Changes with every key-slot change and never repeats: a signed change names it (no replay). */
  readonly keySlotsGeneration?: number;
  /** The installation's sites agents may reach (the primary and its replica), kept by agents for failover. */
  readonly sites?: readonly SiteRecord[];
  /** The answering site: its name, role and fencing epoch. */
  readonly site?: SiteInfo;
}

/** A site an agent can fail over to: where it is and the certificate fingerprint to pin. */
export interface SiteRecord {
  readonly name: string;
  readonly url: string;
  readonly fingerprint: string;
}

export type SiteRole = 'primary' | 'replica' | 'demoted';

/** GET /site (public): a site's name, role and fencing epoch (a promotion raises it). */
export interface SiteInfo {
  readonly name: string;
  readonly role: SiteRole;
  readonly epoch: number;
}

/** Sent by agents with every request: the highest site epoch they know (fencing, docs/CONTINUITY.md). */
export const EPOCH_HEADER = 'coffre-site-epoch';
export interface RepoInitRequest {
  readonly config: RepoConfig;
  readonly keySlots: readonly KeySlot[];
}
export interface AddKeySlotRequest {
  readonly slot: KeySlot;
}
/** Replaces the whole slot set of a format-2 repository, signed by the key-admin key. */
export interface ReplaceKeySlotsRequest {
  readonly slots: readonly KeySlot[];
  /** keySlotsDigest of the set being replaced (the change fails if it moved). */
  readonly expect: string;
  /** RepoResponse.keySlotsGeneration when the set was read. */
  readonly generation: number;
  /** Ed25519 signature (base64) of keySlotsChangeMessage(customerId, generation, expect, slots). */
  readonly signature: string;
}
/** Upgrades a format-1 repository to format 2 (the master key and chunk ids stay). */
export interface RepoUpgradeRequest {
  readonly config: RepoConfig;
  /** Ed25519 signature (base64) of repoUpgradeMessage(customerId, readKey, adminKey) by the new admin key. */
  readonly signature: string;
}

export interface ChunkIdsRequest {
  readonly ids: readonly string[];
}
export interface ChunksExistResponse {
  readonly exists: readonly boolean[];
}
export interface ChunkLocation {
  readonly pack: string;
  readonly offset: number;
  readonly length: number;
}
export interface ChunksLocateResponse {
  readonly locations: readonly (ChunkLocation | null)[];
}

export interface PackUploadResponse {
  readonly id: string;
  readonly chunks: number;
  readonly newChunks: number;
}

export interface SnapshotCommitRequest {
  readonly manifest: ManifestUpload;
  /** base64 of encodeRefs(...): sorted unique raw 32-byte chunk ids. */
  readonly refs: string;
}
export interface SnapshotCommitResponse {
  readonly id: string;
  readonly time: string;
}
export interface SnapshotRecord {
  readonly id: string;
  /** Server time of the commit (ISO 8601, UTC). */
  readonly time: string;
  readonly machineId: string;
  readonly machineName: string;
  readonly manifest: ManifestUpload;
}
export interface SnapshotListResponse {
  readonly snapshots: readonly SnapshotRecord[];
}

export interface MachineRecord {
  readonly id: string;
  readonly name: string;
  readonly hostname: string;
  readonly createdAt: string;
  readonly lastSeenAt: string | null;
  readonly revoked: boolean;
}
export interface MachineListResponse {
  readonly machines: readonly MachineRecord[];
}
