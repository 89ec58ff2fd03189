import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Emails that survive an interrupted run: an alert remembers whether its "back to normal"
 * email was enqueued (as `last_notified_at` does for the opening one), so the next run sends
 * whatever is missing. And a hold on snapshots an administrator restored from the recycle
 * bin, so retention leaves them alone for a while (a restore on request needs them).
 */
export const alertNotifyHold: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('alerts').addColumn('closed_notified_at', 'text').execute();
    // Alerts closed before this column existed had their chance: no late emails for them.
    await sql`update alerts set closed_notified_at = closed_at where closed_at is not null`.execute(db);
    await db.schema.alterTable('snapshots').addColumn('hold_until', 'text').execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('snapshots').dropColumn('hold_until').execute();
    await db.schema.alterTable('alerts').dropColumn('closed_notified_at').execute();
  },
};
