import type { Database } from '../database.js';
import type { CustomerSitesTable, SiteAuthorisationsTable, SiteChangesTable } from '../schema.js';

export async function customerCount(db: Database): Promise<number> {
  return Number((await db.selectFrom('customers').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
}

/** After a promotion: customers whose primary was `old` now have `self` as primary and `old` as replica. */
export async function swapCustomerSitesTo(db: Database, self: string, old: string, now: string): Promise<void> {
  await db.updateTable('customer_sites').set({ primary_site: self, replica_site: old, updated_at: now }).where('primary_site', '=', old).execute();
}

export async function customerSites(db: Database, customerId: string): Promise<CustomerSitesTable | undefined> {
  return db.selectFrom('customer_sites').selectAll().where('customer_id', '=', customerId).executeTakeFirst();
}

export async function setCustomerSites(db: Database, a: { customerId: string; primary: string; replica: string | null; now: string }): Promise<void> {
  await db
    .insertInto('customer_sites')
    .values({ customer_id: a.customerId, primary_site: a.primary, replica_site: a.replica, replicated_up_to: null, updated_at: a.now })
    .onConflict((oc) => oc.column('customer_id').doUpdateSet({ primary_site: a.primary, replica_site: a.replica, updated_at: a.now }))
    .execute();
}

export async function findSiteAuthorisation(db: Database, customerId: string, siteName: string): Promise<SiteAuthorisationsTable | undefined> {
  return db.selectFrom('site_authorisations').selectAll().where('customer_id', '=', customerId).where('site_name', '=', siteName).executeTakeFirst();
}

export async function recordSiteAuthorisation(db: Database, a: SiteAuthorisationsTable): Promise<void> {
  await db
    .insertInto('site_authorisations')
    .values(a)
    .onConflict((oc) => oc.columns(['customer_id', 'site_name']).doUpdateSet({ authorised_by: a.authorised_by, authorised_on: a.authorised_on, document: a.document, recorded_at: a.recorded_at, recorded_by: a.recorded_by }))
    .execute();
}

/** Every customer's sites with the replica's progress (status, console, weekly report). */
export async function allCustomerSites(db: Database): Promise<CustomerSitesTable[]> {
  return db.selectFrom('customer_sites').selectAll().execute();
}

/**
 * A new replica adopts its primary's control plane: its own first organisation tree, people
 * and tiers (made when it was initialised) go, so that the primary's rows, same names and
 * addresses, take their place. Only for a site that holds no customer.
 */
export async function clearControlPlaneForReplica(db: Database): Promise<void> {
  await db.transaction().execute(async (trx) => {
    for (const t of ['sessions', 'recovery_codes', 'webauthn_credentials', 'access_reviews'] as const) await trx.deleteFrom(t).execute();
    await trx.deleteFrom('users').execute();
    // Children before parents (no customers here: at most resellers under the operator).
    await trx.deleteFrom('orgs').where('parent_id', 'is not', null).execute();
    await trx.deleteFrom('orgs').execute();
    await trx.deleteFrom('tiers').execute();
  });
}

/** Customers whose primary or replica is this site. */
export async function customersOnSite(db: Database, siteName: string, withUnassigned = false): Promise<string[]> {
  const rows = await db.selectFrom('customer_sites').select('customer_id').where((eb) => eb.or([eb('primary_site', '=', siteName), eb('replica_site', '=', siteName)])).execute();
  const out = rows.map((r) => r.customer_id);
  if (withUnassigned) {
    // Customers whose sites were never set live on the installation's own (primary) site.
    const free = await db.selectFrom('customers').leftJoin('customer_sites', 'customer_sites.customer_id', 'customers.id').select('customers.id').where('customer_sites.customer_id', 'is', null).execute();
    out.push(...free.map((r) => r.id));
  }
  return out;
}

export async function insertSiteChange(db: Database, c: SiteChangesTable): Promise<void> {
  await db.insertInto('site_changes').values(c).execute();
}

/** Announced changes whose effective time has come and that are not applied yet, oldest first. */
export async function dueSiteChanges(db: Database, now: string): Promise<SiteChangesTable[]> {
  return db.selectFrom('site_changes').selectAll().where('applied_at', 'is', null).where('effective_at', '<=', now).orderBy('effective_at').execute();
}

export async function pendingSiteChanges(db: Database): Promise<SiteChangesTable[]> {
  return db.selectFrom('site_changes').selectAll().where('applied_at', 'is', null).orderBy('effective_at').execute();
}

export async function markSiteChangeApplied(db: Database, id: string, now: string): Promise<boolean> {
  const r = await db.updateTable('site_changes').set({ applied_at: now }).where('id', '=', id).where('applied_at', 'is', null).executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** The customers a site may hold: those assigned to it (or not assigned yet), and, outside the EU/EEA, only with their recorded authorisation. */
export async function customersAllowedOnSite(db: Database, siteName: string, inEu: boolean): Promise<Set<string>> {
  const all = await db
    .selectFrom('customers')
    .leftJoin('customer_sites', 'customer_sites.customer_id', 'customers.id')
    .leftJoin('site_authorisations', (j) => j.onRef('site_authorisations.customer_id', '=', 'customers.id').on('site_authorisations.site_name', '=', siteName))
    .select(['customers.id', 'customer_sites.primary_site', 'customer_sites.replica_site', 'site_authorisations.site_name as authorised'])
    .execute();
  return new Set(
    all
      .filter((r) => r.primary_site === null || r.primary_site === siteName || r.replica_site === siteName)
      .filter((r) => inEu || r.authorised !== null)
      .map((r) => r.id),
  );
}
