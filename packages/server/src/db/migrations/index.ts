import type { Migration, MigrationProvider } from 'kysely';
import { initial } from './20261126T1500_initial.js';
import { controlPlane } from './20261126T2000_control_plane.js';
import { backupRuns } from './20261126T2200_backup_runs.js';
import { tiers } from './20261126T2300_tiers.js';
import { observatory } from './20261127T0100_observatory.js';
import { daemon } from './20261127T0300_daemon.js';
import { mailMetering } from './20261127T0400_mail_metering.js';
import { retention } from './20261127T0450_retention.js';
import { gc } from './20261127T0500_gc.js';
import { alertNotifyHold } from './20261127T0600_alert_notify_hold.js';
import { scaleOut } from './20261207T1000_scale_out.js';
import { perCustomerIndexes } from './20261207T1100_per_customer_indexes.js';
import { compactChunks } from './20261207T1200_compact_chunks.js';
import { sitesReplication } from './20261208T0100_sites_replication.js';
import { auditSigning } from './20261208T0200_audit_signing.js';
import { repoUpgradeApproval } from './20261208T0300_repo_upgrade_approval.js';

/**
 * Every migration, in order. Names are UTC timestamps and must sort in the order listed;
 * a released migration is never edited, only followed by a new one (a change that keeps the
 * SQL it runs on SQLite byte for byte, such as PostgreSQL's column types, is not an edit).
 */
export const MIGRATIONS: ReadonlyArray<readonly [name: string, migration: Migration]> = [
  ['20261126T1500_initial', initial],
  ['20261126T2000_control_plane', controlPlane],
  ['20261126T2200_backup_runs', backupRuns],
  ['20261126T2300_tiers', tiers],
  ['20261127T0100_observatory', observatory],
  ['20261127T0300_daemon', daemon],
  ['20261127T0400_mail_metering', mailMetering],
  ['20261127T0450_retention', retention],
  ['20261127T0500_gc', gc],
  ['20261127T0600_alert_notify_hold', alertNotifyHold],
  ['20261207T1000_scale_out', scaleOut],
  ['20261207T1100_per_customer_indexes', perCustomerIndexes],
  ['20261207T1200_compact_chunks', compactChunks],
  ['20261208T0100_sites_replication', sitesReplication],
  ['20261208T0200_audit_signing', auditSigning],
  ['20261208T0300_repo_upgrade_approval', repoUpgradeApproval],
];

export const migrationProvider: MigrationProvider = {
  async getMigrations() {
    return Object.fromEntries(MIGRATIONS);
  },
};
