import type { Kysely, Migration } from 'kysely';

/**
 * `repos.upgrade_allowed_until`: until when the operator allows one upgrade of the customer's
 * repository to storage format 2 (`coffre-server customer allow-key-upgrade`). A format-1
 * repository cannot check that the caller holds its master key, so a machine credential alone
 * must not be able to install key-admin and read keys of its own (docs/adr/0010).
 */
export const repoUpgradeApproval: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('repos').addColumn('upgrade_allowed_until', 'text').execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('repos').dropColumn('upgrade_allowed_until').execute();
  },
};
