import { randomUUID } from 'node:crypto';
import { apiError } from '../../errors.js';
import type { OrgId } from '../../types.js';
import type { Database } from '../database.js';
import { writeTransaction } from '../engine.js';
import { OPERATOR_ORG_NAME } from '../migrations/20261126T2000_control_plane.js';
import type { Locale, OrgsTable, OrgType } from '../schema.js';
import { nextSequence } from './sequences.js';

export type OrgRow = OrgsTable & { id: OrgId };

export interface NewOrg {
  readonly name: string;
  readonly type: Exclude<OrgType, 'operator'>;
  readonly parentId: OrgId;
  readonly alertEmail?: string | null;
  readonly referentName?: string | null;
  readonly referentEmail?: string | null;
  readonly referentPhone?: string | null;
  readonly locale?: Locale;
}

/** Which parent types each organisation type may have. */
export const PARENT_TYPES: Readonly<Record<Exclude<OrgType, 'operator'>, readonly OrgType[]>> = {
  reseller: ['operator'],
  customer: ['operator', 'reseller'],
};

/**
 * Creates an organisation; a customer also gets its `customers` row (same id), which owns
 * its repository. One transaction: there is never a customer without its organisation.
 */
export async function createOrg(db: Database, o: NewOrg, now: string): Promise<OrgRow> {
  // No lock: the parent's type never changes and the unique names decide a race (the loser inserts nothing and rolls back).
  return writeTransaction(db, [], async (trx) => {
    const parent = await trx.selectFrom('orgs').selectAll().where('id', '=', o.parentId).executeTakeFirst();
    if (!parent) throw apiError('orgNotFound');
    if (!PARENT_TYPES[o.type].includes(parent.type)) throw apiError('badOrgParent');
    const row: OrgRow = {
      id: randomUUID() as OrgId,
      name: o.name,
      type: o.type,
      parent_id: o.parentId,
      status: 'active',
      alert_email: o.alertEmail ?? null,
      referent_name: o.referentName ?? null,
      referent_email: o.referentEmail ?? null,
      referent_phone: o.referentPhone ?? null,
      locale: o.locale ?? 'fr',
      created_at: now,
      updated_at: now,
      suspended_at: null,
      tier_id: null,
      pending_tier_id: null,
      pending_tier_from: null,
      tier_exceeded_period: null,
      retention_json: null,
    };
    const res = await trx.insertInto('orgs').values(row).onConflict((oc) => oc.column('name').doNothing()).executeTakeFirst();
    if (Number(res.numInsertedOrUpdatedRows ?? 0n) !== 1) throw apiError(o.type === 'customer' ? 'customerNameTaken' : 'orgNameTaken', { name: o.name });
    if (o.type === 'customer') {
      const c = await trx.insertInto('customers').values({ id: row.id, seq: await nextSequence(trx, 'customers'), name: o.name, created_at: now }).onConflict((oc) => oc.doNothing()).executeTakeFirst();
      if (Number(c.numInsertedOrUpdatedRows ?? 0n) !== 1) throw apiError('orgNameTaken', { name: o.name });
    }
    return row;
  });
}

export async function findOrg(db: Database, id: string): Promise<OrgRow | undefined> {
  return (await db.selectFrom('orgs').selectAll().where('id', '=', id).executeTakeFirst()) as OrgRow | undefined;
}

export async function findOrgByName(db: Database, name: string): Promise<OrgRow | undefined> {
  return (await db.selectFrom('orgs').selectAll().where('name', '=', name).executeTakeFirst()) as OrgRow | undefined;
}

export async function operatorOrg(db: Database): Promise<OrgRow> {
  const row = await db.selectFrom('orgs').selectAll().where('type', '=', 'operator').orderBy('created_at').limit(1).executeTakeFirst();
  if (!row) throw new Error(`the "${OPERATOR_ORG_NAME}" organisation is missing: the database was not migrated`);
  return row as OrgRow;
}

/** Ids of the organisation and everything below it (the tree is at most three levels deep). */
export async function subtreeIds(db: Database, root: OrgId): Promise<OrgId[]> {
  const out: OrgId[] = [root];
  let frontier: string[] = [root];
  while (frontier.length > 0) {
    const children = await db.selectFrom('orgs').select('id').where('parent_id', 'in', frontier).execute();
    frontier = children.map((c) => c.id);
    out.push(...(frontier as OrgId[]));
  }
  return out;
}

/** True when `org` is `root` or below it. */
export async function isWithin(db: Database, org: OrgRow, root: OrgId): Promise<boolean> {
  let cur: OrgRow | undefined = org;
  for (let depth = 0; cur && depth < 8; depth++) {
    if (cur.id === root) return true;
    if (cur.parent_id === null) return false;
    cur = await findOrg(db, cur.parent_id);
  }
  return false;
}

export async function listOrgs(db: Database, ids: readonly OrgId[]): Promise<OrgRow[]> {
  if (ids.length === 0) return [];
  return (await db.selectFrom('orgs').selectAll().where('id', 'in', [...ids]).orderBy('type').orderBy('name').execute()) as OrgRow[];
}

export type OrgPatch = Partial<Pick<OrgsTable, 'alert_email' | 'referent_name' | 'referent_email' | 'referent_phone' | 'locale' | 'tier_id' | 'pending_tier_id' | 'pending_tier_from'>>;

export async function updateOrg(db: Database, id: OrgId, patch: OrgPatch, now: string): Promise<OrgRow> {
  await db.updateTable('orgs').set({ ...patch, updated_at: now }).where('id', '=', id).execute();
  const row = await findOrg(db, id);
  if (!row) throw apiError('orgNotFound');
  return row;
}

export async function setOrgStatus(db: Database, id: OrgId, status: 'active' | 'suspended', now: string): Promise<OrgRow> {
  await db
    .updateTable('orgs')
    .set({ status, suspended_at: status === 'suspended' ? now : null, updated_at: now })
    .where('id', '=', id)
    .execute();
  const row = await findOrg(db, id);
  if (!row) throw apiError('orgNotFound');
  return row;
}

/** Suspended if the organisation or any ancestor is (suspending a reseller suspends its customers). */
export async function effectiveStatus(db: Database, org: OrgRow): Promise<'active' | 'suspended'> {
  let cur: OrgRow | undefined = org;
  for (let depth = 0; cur && depth < 8; depth++) {
    if (cur.status === 'suspended') return 'suspended';
    cur = cur.parent_id === null ? undefined : await findOrg(db, cur.parent_id);
  }
  return 'active';
}

/** Platform-wide (the observatory job): ids of the active customers. */
export async function activeCustomerIds(db: Database): Promise<string[]> {
  return (await db.selectFrom('orgs').select('id').where('type', '=', 'customer').where('status', '=', 'active').execute()).map((c) => c.id);
}

/** Platform-wide (metering and retention jobs): every customer organisation, by name. */
export async function customerOrgs(db: Database): Promise<OrgRow[]> {
  return (await db.selectFrom('orgs').selectAll().where('type', '=', 'customer').orderBy('name').execute()) as OrgRow[];
}

/** Platform-wide (the reports job): every active organisation. */
export async function activeOrgs(db: Database): Promise<OrgRow[]> {
  return (await db.selectFrom('orgs').selectAll().where('status', '=', 'active').execute()) as OrgRow[];
}

/** Platform-wide (the usage report): every organisation. */
export async function allOrgs(db: Database): Promise<OrgRow[]> {
  return (await db.selectFrom('orgs').selectAll().execute()) as OrgRow[];
}

/** The operator's alert address and language (undefined only in a database that was not migrated). */
export async function operatorContact(db: Database): Promise<{ alert_email: string | null; locale: Locale } | undefined> {
  return db.selectFrom('orgs').select(['alert_email', 'locale']).where('type', '=', 'operator').executeTakeFirst();
}
