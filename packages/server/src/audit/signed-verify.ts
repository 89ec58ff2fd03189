import { verifyChainAsync, type AuditEntry, type ChainVerdict } from './chain.js';
import { checkpointProblem, purgeMarkerProblem, type AuditPublicKey, type SignedCheckpoint } from './checkpoint.js';

/**
 * The legitimate unsigned tail is short: a process holding the key signs a checkpoint inside
 * the append that makes it CHECKPOINT_EVERY entries long (audit/log.ts), and the server signs
 * whatever is unsigned every minute and at shutdown. A longer tail means checkpoints were
 * removed (or many entries were appended by commands that did not hold the key).
 */
export const MAX_UNSIGNED_TAIL = 1000;

/** How the keys a verification accepts were chosen. */
export type KeyPinning = 'public-key-file' | 'signing-key-file' | 'recorded-in-database';

export interface SignatureVerdict {
  readonly ok: boolean;
  readonly pinning: KeyPinning;
  /** Ids of the keys accepted. */
  readonly keyIds: readonly string[];
  /** Checkpoints that verified. */
  readonly checkpoints: number;
  /** The chain is signed up to this seq (null: by no checkpoint). */
  readonly signedUpTo: number | null;
  /** Entries after the last checkpoint. */
  readonly unsigned: number;
  /** Whether the chain's start (purge anchor) is a signed purge marker; null when the chain starts at GENESIS. */
  readonly anchorSigned: boolean | null;
  readonly problem?: string;
}

export interface SignedVerifyOptions {
  readonly installation: string;
  readonly keys: ReadonlyMap<string, AuditPublicKey>;
  readonly pinning: KeyPinning;
  /** The signed purge marker of the anchor (if any). */
  readonly purgeMarker: SignedCheckpoint | null;
  /** Purges must have respected at least this retention (the period in force). */
  readonly minRetentionDays: number;
  readonly maxUnsigned?: number;
}

/**
 * Verifies the hash chain (chain.ts) AND its signatures in one pass, constant memory: each
 * checkpoint must be signed by one of `keys` and name an entry of the chain with the same
 * hash; the anchor (when older entries were purged) must be a signed purge marker that
 * respected the retention period; something must be signed when there are entries, and the
 * unsigned tail must be short. `checkpoints` come in seq order.
 */
export async function verifySignedChain(
  entries: AsyncIterable<AuditEntry>,
  checkpoints: AsyncIterable<SignedCheckpoint>,
  start: { seq: number; hash: string },
  head: { seq: number; hash: string } | null,
  o: SignedVerifyOptions,
): Promise<{ chain: ChainVerdict; signatures: SignatureVerdict }> {
  const cps = checkpoints[Symbol.asyncIterator]();
  const next = async (): Promise<SignedCheckpoint | null> => {
    const r = await cps.next();
    return r.done ? null : r.value;
  };
  let cp = await next();
  let problem: string | undefined;
  let verified = 0;
  let signedUpTo: number | null = null;
  let last = start.seq;
  const fail = (why: string): void => void (problem ??= why);

  let anchorSigned: boolean | null = null;
  if (start.seq > 0) {
    const m = o.purgeMarker;
    if (!m || m.seq !== start.seq || m.hash !== start.hash) {
      anchorSigned = false;
      fail(`the chain starts after seq ${start.seq} but no signed purge marker names that anchor: entries were removed otherwise than by retention`);
    } else {
      const p = checkpointProblem(m, o.keys, o.installation) ?? purgeMarkerProblem(m, o.minRetentionDays);
      anchorSigned = p === null;
      if (p) fail(p);
      else signedUpTo = start.seq;
    }
  }

  async function* observed(): AsyncGenerator<AuditEntry> {
    for await (const e of entries) {
      while (cp && cp.seq < e.seq) {
        if (cp.seq > start.seq) fail(`the checkpoint at seq ${cp.seq} names an entry that is not in the chain`);
        cp = await next();
      }
      if (cp && cp.seq === e.seq) {
        const p = checkpointProblem(cp, o.keys, o.installation) ?? (cp.hash === e.hash ? null : `the checkpoint at seq ${cp.seq} signed another hash than the entry's: the chain was rewritten at or before seq ${cp.seq}`);
        if (p) fail(p);
        else {
          verified++;
          signedUpTo = e.seq;
        }
        cp = await next();
      }
      last = e.seq;
      yield e;
    }
  }
  const chain = await verifyChainAsync(observed(), start, head);
  if (chain.ok && cp && cp.seq > last) fail(`the checkpoint at seq ${cp.seq} is beyond the end of the chain (seq ${last}): the newest entries were removed`);
  const unsigned = chain.ok ? last - (signedUpTo ?? start.seq) : 0;
  if (chain.ok && chain.count > 0 && verified === 0 && signedUpTo === null) fail('no signed checkpoint covers the chain: it cannot be authenticated');
  const max = o.maxUnsigned ?? MAX_UNSIGNED_TAIL;
  if (chain.ok && unsigned > max) fail(`${unsigned} entries after the last signed checkpoint (seq ${signedUpTo ?? start.seq}), more than the ${max} a running server leaves: checkpoints were removed`);
  const base = { ok: problem === undefined, pinning: o.pinning, keyIds: [...o.keys.keys()], checkpoints: verified, signedUpTo, unsigned, anchorSigned };
  return { chain, signatures: problem === undefined ? base : { ...base, problem } };
}
