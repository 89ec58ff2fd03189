import { randomUUID } from 'node:crypto';
import { sql, type Kysely, type Migration } from 'kysely';

/** Name of the root organisation created by this migration; `--parent` defaults to it. */
export const OPERATOR_ORG_NAME = 'operator';

/**
 * Control plane: the organisation tree (operator → reseller → customer), people and their
 * second factors, browser sessions, login throttling, the hash-chained audit trail and
 * access reviews. Portable DDL (SQLite and PostgreSQL).
 *
 * Customers keep their `customers` row (it owns the repository and every chunk, pack and
 * snapshot refers to it); each customer is also an organisation with the same id, so the
 * tenant tree and the storage tables share one id space.
 */
export const controlPlane: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('orgs')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull().unique())
      .addColumn('type', 'text', (c) => c.notNull()) // operator | reseller | customer
      .addColumn('parent_id', 'text', (c) => c.references('orgs.id'))
      .addColumn('status', 'text', (c) => c.notNull()) // active | suspended
      .addColumn('alert_email', 'text')
      .addColumn('referent_name', 'text')
      .addColumn('referent_email', 'text')
      .addColumn('referent_phone', 'text')
      .addColumn('locale', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addColumn('suspended_at', 'text')
      .execute();
    await db.schema.createIndex('orgs_parent_idx').on('orgs').column('parent_id').execute();

    // The operator root, and an organisation row for every customer created before this migration.
    const now = new Date().toISOString();
    const operatorId = randomUUID();
    await sql`insert into orgs (id, name, type, parent_id, status, locale, created_at, updated_at)
              values (${operatorId}, ${OPERATOR_ORG_NAME}, 'operator', null, 'active', 'fr', ${now}, ${now})`.execute(db);
    await sql`insert into orgs (id, name, type, parent_id, status, locale, created_at, updated_at)
              select id, name, 'customer', ${operatorId}, 'active', 'fr', created_at, created_at from customers`.execute(db);

    await db.schema
      .createTable('users')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id'))
      .addColumn('email', 'text', (c) => c.notNull().unique()) // lower-cased
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('role', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull()) // active | disabled
      .addColumn('password_hash', 'text', (c) => c.notNull())
      .addColumn('must_change_password', 'integer', (c) => c.notNull())
      .addColumn('password_changed_at', 'text')
      .addColumn('totp_secret', 'text') // sealed with the server key (never in clear)
      .addColumn('totp_pending_secret', 'text') // enrolment in progress, sealed too
      .addColumn('totp_confirmed_at', 'text')
      .addColumn('totp_last_step', 'bigint')
      .addColumn('locale', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addColumn('last_login_at', 'text')
      .execute();
    await db.schema.createIndex('users_org_idx').on('users').column('org_id').execute();

    await db.schema
      .createTable('recovery_codes')
      .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
      .addColumn('code_hash', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('used_at', 'text')
      .addPrimaryKeyConstraint('recovery_codes_pk', ['user_id', 'code_hash'])
      .execute();

    await db.schema
      .createTable('webauthn_credentials')
      .addColumn('id', 'text', (c) => c.primaryKey()) // base64url credential id
      .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
      .addColumn('public_key', 'text', (c) => c.notNull()) // base64url COSE key
      .addColumn('counter', 'bigint', (c) => c.notNull())
      .addColumn('transports', 'text', (c) => c.notNull()) // JSON array
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('last_used_at', 'text')
      .execute();
    await db.schema.createIndex('webauthn_user_idx').on('webauthn_credentials').column('user_id').execute();

    await db.schema
      .createTable('sessions')
      .addColumn('id', 'text', (c) => c.primaryKey()) // public id (listing, revocation)
      .addColumn('token_hash', 'text', (c) => c.notNull().unique()) // SHA-256 of the cookie value
      .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('last_seen_at', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'text', (c) => c.notNull()) // absolute expiry
      .addColumn('second_factor_at', 'text') // last second-factor proof (null = not yet)
      .addColumn('ip', 'text')
      .addColumn('user_agent', 'text')
      .addColumn('challenge', 'text') // pending WebAuthn challenge
      .addColumn('challenge_expires_at', 'text')
      .addColumn('revoked_at', 'text')
      .execute();
    await db.schema.createIndex('sessions_user_idx').on('sessions').column('user_id').execute();

    await db.schema
      .createTable('auth_throttle')
      .addColumn('key', 'text', (c) => c.primaryKey()) // "account:<email>" or "ip:<address>"
      .addColumn('failures', 'integer', (c) => c.notNull())
      .addColumn('window_start', 'text', (c) => c.notNull())
      .addColumn('locked_until', 'text')
      .execute();

    await db.schema
      .createTable('audit_log')
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
    await db.schema.createIndex('audit_time_idx').on('audit_log').column('time').execute();
    await db.schema.createIndex('audit_org_idx').on('audit_log').columns(['org_id', 'seq']).execute();

    // Where the chain starts once retention has purged its oldest entries (one row at most).
    await db.schema
      .createTable('audit_anchor')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('seq', 'bigint', (c) => c.notNull())
      .addColumn('hash', 'text', (c) => c.notNull())
      .addColumn('purged_at', 'text', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('access_reviews')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id'))
      .addColumn('reviewed_by', 'text', (c) => c.notNull().references('users.id'))
      .addColumn('reviewed_at', 'text', (c) => c.notNull())
      .addColumn('report_json', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('access_reviews_org_idx').on('access_reviews').columns(['org_id', 'reviewed_at']).execute();

    // Machine credentials: when the current one was issued; re-issue tokens name their machine.
    await db.schema.alterTable('machines').addColumn('credential_issued_at', 'text').execute();
    await sql`update machines set credential_issued_at = created_at`.execute(db);
    await db.schema.alterTable('enroll_tokens').addColumn('reissue_machine_id', 'text').execute();
    await db.schema.alterTable('enroll_tokens').addColumn('created_by', 'text').execute();
  },

  async down(db: Kysely<unknown>): Promise<void> {
    for (const t of ['access_reviews', 'audit_anchor', 'audit_log', 'auth_throttle', 'sessions', 'webauthn_credentials', 'recovery_codes', 'users', 'orgs']) {
      await db.schema.dropTable(t).execute();
    }
  },
};
