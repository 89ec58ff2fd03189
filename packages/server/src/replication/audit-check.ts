import { entryHash } from '../audit/chain.js';
import { checkpointProblem, parseAuditPublicKey, type AuditPublicKey, type SignedCheckpoint } from '../audit/checkpoint.js';
import { toEntry } from '../audit/log.js';
import { getSiteState, insertReplicatedAudit, lastReplicatedAudit, replicatedAuditEntry, updateSiteState } from '../db/queries/replication.js';
import { operatorContact } from '../db/queries/orgs.js';
import { enqueue } from '../db/queries/outbox.js';
import type { AuditLogTable } from '../db/schema.js';
import { auditDivergedEmail } from '../mail/location-templates.js';
import { isoNow } from '../types.js';
import type { PeerClient } from './client.js';
import type { PassContext, PassReport } from './pull.js';
import type { AuditPage } from './wire.js';

/**
 * Why the primary's audit key cannot be trusted against the one pinned, or null; pins the
 * offered key at the first pass (ADR 0011).
 */
async function pinnedKey(ctx: PassContext, pinnedPem: string | null, offeredPem: string | null): Promise<{ key: AuditPublicKey | null; problem: string | null }> {
  let offered: AuditPublicKey | null = null;
  try {
    offered = offeredPem ? parseAuditPublicKey(offeredPem, "the primary's audit public key") : null;
  } catch (err) {
    return { key: null, problem: (err as Error).message };
  }
  const pinned = pinnedPem ? parseAuditPublicKey(pinnedPem, 'the pinned audit public key') : null;
  if (!pinned) {
    if (offered) await updateSiteState(ctx.db, { primary_audit_key: offered.pem, updated_at: isoNow(ctx.clock) });
    return { key: offered, problem: null };
  }
  if (!offered) return { key: pinned, problem: `the primary no longer publishes its audit public key (pinned ${pinned.keyId.slice(0, 16)}…)` };
  if (offered.keyId !== pinned.keyId) return { key: pinned, problem: `the primary signs its audit trail with key ${offered.keyId.slice(0, 16)}…, not with ${pinned.keyId.slice(0, 16)}… pinned at the first pass` };
  return { key: pinned, problem: null };
}

/** Why a checkpoint of the page is not the pinned key's signature of the entry it names, or null. */
function checkpointsProblem(checkpoints: readonly SignedCheckpoint[], hashAt: (seq: number) => string | undefined, key: AuditPublicKey): string | null {
  const keys = new Map([[key.keyId, key]]);
  for (const cp of checkpoints) {
    const p = checkpointProblem(cp, keys, cp.installation);
    if (p) return `${p} (not the primary's pinned audit key)`;
    const h = hashAt(cp.seq);
    if (h !== undefined && h !== cp.hash) return `the checkpoint at seq ${cp.seq} signed another hash than entry ${cp.seq} (rewritten chain)`;
  }
  return null;
}

/**
 * Copies the primary's new audit entries after checking that they extend what this site
 * holds: the entry it holds last must still be there with the same hash, and every new
 * entry must hash correctly and link to the one before. The primary's checkpoints and purge
 * marker must be signed by its audit key pinned at the first pass. A rewritten, truncated,
 * forked or re-signed chain is never copied: the divergence is recorded (status, alert to
 * the operator).
 */
export async function pullAudit(ctx: PassContext, peer: PeerClient, report: PassReport, primaryAuditKey: string | null): Promise<void> {
  let last = await lastReplicatedAudit(ctx.db);
  const diverged = async (why: string): Promise<void> => {
    report.audit.diverged = why;
    report.problems.push(`audit chain: ${why}`);
    const state = await getSiteState(ctx.db);
    if (state?.audit_diverged_at) return; // already known (and alerted)
    const now = isoNow(ctx.clock);
    await updateSiteState(ctx.db, { audit_diverged_at: now, audit_diverged_reason: why, updated_at: now });
    await ctx.audit.append({
      actorType: 'system', actorId: null, actorLabel: 'replication', orgId: null, action: 'replication.audit_diverged', target: `site:${state?.primary_name ?? 'primary'}`,
      ip: null, userAgent: null, requestId: null, outcome: 'failure', details: { reason: why },
    });
    ctx.log({ level: 'error', msg: "the primary's audit chain diverges from the replica's copy", reason: why });
    // The operator hears of it from here: the primary may be the one that cannot be trusted.
    const operator = await operatorContact(ctx.db);
    if (operator?.alert_email) {
      const e = auditDivergedEmail({ site: state?.self_name ?? 'replica', primary: state?.primary_name ?? 'primary', reason: why, at: now }, operator.locale);
      await enqueue(ctx.db, { dedupKey: `audit-diverged:${now}`, kind: 'audit_diverged', to: operator.alert_email, locale: operator.locale, subject: e.subject, text: e.text, html: e.html }, ctx.clock());
    }
  };
  const known = await getSiteState(ctx.db);
  if (known?.audit_diverged_at) {
    // Copying stays stopped until the operator has looked (docs/CONTINUITY.md): every pass says so.
    report.audit.diverged = known.audit_diverged_reason ?? 'diverged';
    report.problems.push(`audit chain: ${report.audit.diverged} (since ${known.audit_diverged_at}; entries are no longer copied)`);
    return;
  }
  const pin = await pinnedKey(ctx, known?.primary_audit_key ?? null, primaryAuditKey);
  if (pin.problem) return diverged(pin.problem);
  for (;;) {
    const page = await peer.json<AuditPage>('GET', `/replication/audit?from=${last ? last.seq : 0}`);
    let entries = page.entries as unknown as AuditLogTable[];
    if (pin.key) {
      const inPage = new Map(entries.map((e) => [Number(e.seq), e.hash]));
      const signed = checkpointsProblem(page.checkpoints ?? [], (seq) => inPage.get(seq), pin.key);
      if (signed) return diverged(signed);
      const m = page.purgeMarker;
      if (page.anchor && !m) return diverged(`the primary's anchor (seq ${page.anchor.seq}) has no signed purge marker: entries were removed otherwise than by retention`);
      if (page.anchor && m && (m.seq !== page.anchor.seq || m.hash !== page.anchor.hash)) return diverged(`the primary's purge marker (seq ${m.seq}) does not name its anchor (seq ${page.anchor.seq})`);
      if (page.anchor && m) {
        const p = checkpointsProblem([m], () => undefined, pin.key);
        if (p) return diverged(p);
      }
    }
    if (last) {
      const first = entries[0];
      if (!first || Number(first.seq) !== last.seq) {
        // Our newest entry is gone from the primary: fine only if it was purged exactly there.
        const mine = await replicatedAuditEntry(ctx.db, last.seq);
        if (!(page.anchor && page.anchor.seq >= last.seq && mine && (page.anchor.seq > last.seq || page.anchor.hash === mine.hash))) {
          return diverged(`entry ${last.seq} is missing from the primary (truncated or rewritten chain)`);
        }
        if (page.anchor.seq > last.seq) return diverged(`entries after ${last.seq} were purged on the primary before this site copied them`);
      } else {
        if (first.hash !== last.hash) return diverged(`entry ${last.seq} has changed on the primary (rewritten chain)`);
        entries = entries.slice(1);
      }
    }
    if (entries.length === 0) return;
    let prev = last;
    for (const e of entries) {
      const seq = Number(e.seq);
      if (prev && (seq !== prev.seq + 1 || e.prev_hash !== prev.hash)) return diverged(`entry ${seq} does not follow entry ${prev.seq} (forked chain)`);
      if (!prev && page.anchor && (seq !== page.anchor.seq + 1 || e.prev_hash !== page.anchor.hash)) return diverged(`entry ${seq} does not follow the primary's anchor`);
      const entry = toEntry({ ...e, seq });
      const { seq: _s, prevHash: _p, hash: _h, ...rec } = entry;
      if (entryHash(e.prev_hash, seq, rec) !== e.hash) return diverged(`entry ${seq} does not match its hash (altered entry)`);
      prev = { seq, hash: e.hash };
    }
    await insertReplicatedAudit(ctx.db, entries.map((e) => ({ ...e, seq: Number(e.seq) })));
    report.audit.copied += entries.length;
    last = prev;
  }
}

