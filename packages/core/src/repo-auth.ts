import { createHash } from 'node:crypto';
import type { KeySlot } from './keys.js';

/**
 * What the Ed25519 key-admin key signs in a version-2 repository (FORMAT.md §2.5). The server
 * holds only the public half: it can check that a change comes from a holder of the master
 * key, never make one. Each change names the slot set it replaces and its generation (a
 * number the server raises with every change, never reused), so an old signature cannot be
 * replayed, even after the set came back to the same slots.
 */
export function keySlotsDigest(slots: readonly KeySlot[]): string {
  return createHash('sha256').update(JSON.stringify(slots), 'utf8').digest('hex');
}

export function keySlotsChangeMessage(customerId: string, generation: number, expect: string, next: readonly KeySlot[]): Buffer {
  return Buffer.from(['coffre key-slots v2', customerId, String(generation), expect, keySlotsDigest(next)].join('\n'), 'utf8');
}

export function repoUpgradeMessage(customerId: string, readKey: string, adminKey: string): Buffer {
  return Buffer.from(['coffre repository upgrade v2', customerId, readKey, adminKey].join('\n'), 'utf8');
}
