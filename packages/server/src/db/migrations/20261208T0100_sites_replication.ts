import type { Kysely, Migration } from 'kysely';

/**
 * The second site (docs/CONTINUITY.md, ADR 0009):
 * - `sites`: every site of the installation (replicated like the other control-plane rows);
 * - `site_state`: who this site is (one row, never replicated): its role, its fencing epoch,
 *   and on a replica the primary it pulls from and how far it got;
 * - `customer_sites`, `site_authorisations`: where each customer's data live, and the
 *   customer's recorded consent for a site outside the EU/EEA; `site_changes`, a change of
 *   where a customer's data live (a site's provider or country, a customer's sites), announced
 *   to the customer by email and applied on its effective date;
 * - `replication_tokens`, `replication_credentials`: on a primary, the one-time join tokens
 *   and the replicas' read-only credentials (hashes only);
 * - `replica_holds`: on a replica, what the primary no longer has, kept until the delay ends;
 * - `replicated_audit`: on a replica, the primary's audit chain as received and checked.
 */
export const sitesReplication: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('sites')
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('url', 'text')
      .addColumn('fingerprint', 'text')
      .addColumn('country', 'text', (c) => c.notNull())
      .addColumn('provider', 'text', (c) => c.notNull())
      .addColumn('hds_certified', 'integer', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('site_state')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('self_name', 'text', (c) => c.notNull())
      .addColumn('role', 'text', (c) => c.notNull())
      .addColumn('epoch', 'bigint', (c) => c.notNull())
      .addColumn('self_url', 'text')
      .addColumn('primary_name', 'text')
      .addColumn('primary_url', 'text')
      .addColumn('primary_fingerprint', 'text')
      .addColumn('credential_sealed', 'text')
      .addColumn('joined_at', 'text')
      .addColumn('demoted_at', 'text')
      .addColumn('demoted_by_epoch', 'bigint')
      .addColumn('pass_started_at', 'text')
      .addColumn('pass_finished_at', 'text')
      .addColumn('pass_outcome', 'text')
      .addColumn('pass_error', 'text')
      .addColumn('replicated_up_to', 'text')
      .addColumn('audit_diverged_at', 'text')
      .addColumn('audit_diverged_reason', 'text')
      .addColumn('mass_deletion_accepted_until', 'text')
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('customer_sites')
      .addColumn('customer_id', 'text', (c) => c.primaryKey().references('customers.id'))
      .addColumn('primary_site', 'text', (c) => c.notNull().references('sites.name'))
      .addColumn('replica_site', 'text', (c) => c.references('sites.name'))
      .addColumn('replicated_up_to', 'text')
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('site_authorisations')
      .addColumn('customer_id', 'text', (c) => c.notNull().references('customers.id'))
      .addColumn('site_name', 'text', (c) => c.notNull().references('sites.name'))
      .addColumn('authorised_by', 'text', (c) => c.notNull())
      .addColumn('authorised_on', 'text', (c) => c.notNull())
      .addColumn('document', 'text', (c) => c.notNull())
      .addColumn('recorded_at', 'text', (c) => c.notNull())
      .addColumn('recorded_by', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('site_authorisations_pk', ['customer_id', 'site_name'])
      .execute();
    await db.schema
      .createTable('site_changes')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('site_name', 'text')
      .addColumn('customer_id', 'text')
      .addColumn('change_json', 'text', (c) => c.notNull())
      .addColumn('effective_at', 'text', (c) => c.notNull())
      .addColumn('announced_at', 'text', (c) => c.notNull())
      .addColumn('announced_by', 'text', (c) => c.notNull())
      .addColumn('applied_at', 'text')
      .execute();
    await db.schema
      .createTable('replication_tokens')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('token_hash', 'text', (c) => c.notNull().unique())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'text', (c) => c.notNull())
      .addColumn('used_at', 'text')
      .addColumn('created_by', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('replication_credentials')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('credential_hash', 'text', (c) => c.notNull().unique())
      .addColumn('site_name', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('last_seen_at', 'text')
      .addColumn('pass_finished_at', 'text')
      .addColumn('replicated_up_to', 'text')
      .addColumn('revoked_at', 'text')
      // The credential this site uses to call that replica back (repairs), sealed with the server key.
      .addColumn('peer_credential_sealed', 'text')
      .execute();
    await db.schema
      .createTable('replica_holds')
      .addColumn('tbl', 'text', (c) => c.notNull())
      .addColumn('key', 'text', (c) => c.notNull())
      .addColumn('customer_id', 'text')
      .addColumn('first_missing_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('replica_holds_pk', ['tbl', 'key'])
      .execute();
    await db.schema
      .createTable('replicated_audit')
      .addColumn('seq', 'bigint', (c) => c.primaryKey())
      .addColumn('time', 'text', (c) => c.notNull())
      .addColumn('actor_type', 'text', (c) => c.notNull())
      .addColumn('actor_id', 'text')
      .addColumn('actor_label', 'text')
      .addColumn('org_id', 'text')
      .addColumn('action', 'text', (c) => c.notNull())
      .addColumn('target', 'text')
      .addColumn('ip', 'text')
      .addColumn('user_agent', 'text')
      .addColumn('request_id', 'text')
      .addColumn('outcome', 'text', (c) => c.notNull())
      .addColumn('details_json', 'text')
      .addColumn('prev_hash', 'text', (c) => c.notNull())
      .addColumn('hash', 'text', (c) => c.notNull())
      .execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    for (const t of ['replicated_audit', 'replica_holds', 'replication_credentials', 'replication_tokens', 'site_changes', 'site_authorisations', 'customer_sites', 'site_state', 'sites']) {
      await db.schema.dropTable(t).execute();
    }
  },
};
