import type { CustomerId } from './types.js';

/** Object store layout (docs/FORMAT.md): every object lives under its customer's prefix. */
export function packKey(customerId: CustomerId, packId: string): string {
  return `packs/${customerId}/${packId.slice(0, 2)}/${packId}`;
}
export function snapshotRefsKey(customerId: CustomerId, snapshotId: string): string {
  return `snapshots/${customerId}/${snapshotId}.refs`;
}
