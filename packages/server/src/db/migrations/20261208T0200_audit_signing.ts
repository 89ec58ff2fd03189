import type { Kysely, Migration } from 'kysely';

/**
 * Signed audit checkpoints (docs/adr/0011-audit-signing-key.md):
 * - `audit_signing_key`: the public half of the installation's Ed25519 audit signing key (one
 *   row); the private half never enters the database or the data directory;
 * - `audit_checkpoints`: signatures over (installation, seq, hash, time) of the chain's head,
 *   made every 100 entries or minute, and at shutdown (`kind` 'checkpoint'); and the signed
 *   purge marker of the retention anchor (`kind` 'purge', with the cut-off and the retention
 *   period it respected);
 * - `site_state.primary_audit_key`: on a replica, the primary's audit public key, pinned at the
 *   first pass: checkpoints signed by another key raise the divergence alarm.
 */
export const auditSigning: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('audit_signing_key')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('key_id', 'text', (c) => c.notNull())
      .addColumn('public_key', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('audit_checkpoints')
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('seq', 'bigint', (c) => c.notNull())
      .addColumn('hash', 'text', (c) => c.notNull())
      .addColumn('time', 'text', (c) => c.notNull())
      .addColumn('installation_id', 'text', (c) => c.notNull())
      .addColumn('purge_before', 'text')
      .addColumn('retention_days', 'integer')
      .addColumn('key_id', 'text', (c) => c.notNull())
      .addColumn('signature', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('audit_checkpoints_pk', ['kind', 'seq'])
      .execute();
    await db.schema.alterTable('site_state').addColumn('primary_audit_key', 'text').execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('site_state').dropColumn('primary_audit_key').execute();
    await db.schema.dropTable('audit_checkpoints').execute();
    await db.schema.dropTable('audit_signing_key').execute();
  },
};
