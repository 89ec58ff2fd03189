import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { adminAuditVerify } from '../admin/index.js';
import { recordedAuditKey } from '../db/queries/audit-signing.js';
import type { CommandKit } from '../replication/commands.js';
import { AuditKeyError, parseAuditPublicKey, type AuditPublicKey } from './checkpoint.js';
import type { SignedVerification } from './log.js';

/** `audit verify` found a modified, deleted, inserted or reordered entry, or a chain its signatures do not authenticate. */
export const EXIT_AUDIT_BROKEN = 4;
/** The audit signing key is missing, unreadable, in the data directory, or not the installation's (also `start`). */
export const EXIT_AUDIT_KEY = 6;

async function readPublicKey(file: string): Promise<AuditPublicKey> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new AuditKeyError(`cannot read the audit public key ${file}: ${(err as Error).message}`, { cause: err });
  }
  return parseAuditPublicKey(text, file);
}

/** The human lines of a verification (stdout). */
export function describeVerification(v: SignedVerification): string[] {
  const c = v.chain;
  const lines = [c.ok ? `audit trail OK: ${c.count} entries verified${c.lastSeq !== null ? ` (last #${c.lastSeq})` : ''}` : `audit trail BROKEN at entry #${c.firstBad!.seq}: ${c.firstBad!.message}`];
  const s = v.signatures;
  if (!s) {
    lines.push('signatures: NONE — this installation has no audit signing key yet (the server creates it at its first start): the chain is not authenticated');
    return lines;
  }
  const keys = s.keyIds.map((k) => `${k.slice(0, 16)}…`).join(', ') || 'none';
  const pin =
    s.pinning === 'public-key-file'
      ? `pinned by --public-key (${keys})`
      : s.pinning === 'signing-key-file'
        ? `pinned by this account's signing key file (${keys})`
        : `key ${keys} as recorded in the database — NOT pinned: whoever can write the database could have replaced it; give --public-key FILE (coffre-server audit public-key)`;
  if (s.ok) {
    lines.push(`signatures OK: ${s.checkpoints} checkpoints${s.signedUpTo !== null ? `, signed up to #${s.signedUpTo}` : ''}${s.anchorSigned ? ', purge anchor signed' : ''}; ${pin}`);
    if (s.unsigned > 0) lines.push(`${s.unsigned} newest entries are not signed yet (after the last checkpoint; the server signs every minute and at shutdown)`);
  } else {
    lines.push(`signatures BAD: ${s.problem}; ${pin}`);
  }
  return lines;
}

/** `audit verify` and `audit public-key` (ADR 0011). */
export function registerAuditCommands(auditCmd: Command, kit: CommandKit): void {
  const { withAdmin, out, hint } = kit;
  auditCmd
    .command('verify')
    .description(`check the hash chain of the whole trail and its signed checkpoints (exit ${EXIT_AUDIT_BROKEN} and the first problem if it was tampered with)`)
    .requiredOption('--data-dir <dir>', 'data directory')
    .option('--public-key <file>', "the installation's published audit public key (PEM, from `coffre-server audit public-key`): the checkpoints must be signed by it")
    .option('--json', 'print JSON')
    .action(async (opts: { dataDir: string; publicKey?: string; json?: boolean }) => {
      const pinned = opts.publicKey !== undefined ? await readPublicKey(opts.publicKey) : undefined;
      const v = await withAdmin(opts.dataDir, (ctx) => adminAuditVerify(ctx, pinned));
      // The chain verdict's fields stay at the top level (scripts read ok, count, firstBad).
      if (opts.json) out(JSON.stringify({ ...v.chain, ok: v.ok, signatures: v.signatures }, null, 2));
      else for (const line of describeVerification(v)) out(line);
      if (!v.ok) process.exitCode = EXIT_AUDIT_BROKEN;
    });
  auditCmd
    .command('public-key')
    .description("print the installation's audit public key (PEM) to publish and pin (`audit verify --public-key FILE`)")
    .requiredOption('--data-dir <dir>', 'data directory')
    .action(async (opts: { dataDir: string }) => {
      const k = await withAdmin(opts.dataDir, async (ctx) => {
        const signer = ctx.audit.signer;
        if (signer) return { pem: signer.pem, keyId: signer.keyId, from: 'the signing key file' };
        const recorded = await recordedAuditKey(ctx.db);
        return recorded ? { pem: parseAuditPublicKey(recorded.publicKey).pem, keyId: recorded.keyId, from: 'the database (no signing key file found for this account: compare it with the one the server published)' } : null;
      });
      if (!k) throw new AuditKeyError('this installation has no audit signing key yet: the server creates it at its first start');
      process.stdout.write(k.pem);
      hint(`Key ${k.keyId}, read from ${k.from}. Keep a copy away from the server (it is public): coffre-server audit verify --public-key FILE checks the trail against it.`);
    });
}
