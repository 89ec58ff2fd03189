import type { Database } from '../db/database.js';
import { findOrg, operatorContact } from '../db/queries/orgs.js';
import { enqueue } from '../db/queries/outbox.js';
import type { Locale } from '../db/schema.js';
import type { RenderedEmail } from './templates.js';

export interface Recipient {
  readonly address: string;
  readonly locale: Locale;
  /** Who this is: the customer itself, its reseller, or the operator. */
  readonly role: 'customer' | 'reseller' | 'operator';
}

/**
 * Who hears about a customer: the customer's alert address (in the customer's language) and
 * its reseller's (in the reseller's language); with `operator`, the operator's too (problems
 * on the storage side). Organisations without an alert address are skipped.
 */
export async function recipientsFor(db: Database, customerId: string, opts: { customer?: boolean; reseller?: boolean; operator?: boolean } = {}): Promise<Recipient[]> {
  const out: Recipient[] = [];
  const c = await findOrg(db, customerId);
  if (!c) return out;
  if ((opts.customer ?? true) && c.alert_email) out.push({ address: c.alert_email, locale: c.locale, role: 'customer' });
  if (opts.reseller ?? true) {
    const p = c.parent_id ? await findOrg(db, c.parent_id) : undefined;
    if (p?.type === 'reseller' && p.alert_email) out.push({ address: p.alert_email, locale: p.locale, role: 'reseller' });
  }
  if (opts.operator) {
    const o = await operatorContact(db);
    if (o?.alert_email) out.push({ address: o.alert_email, locale: o.locale, role: 'operator' });
  }
  // One email per address even when two organisations share it.
  return out.filter((r, i) => out.findIndex((x) => x.address.toLowerCase() === r.address.toLowerCase()) === i);
}

/** Enqueues one rendering per recipient (in the recipient's language); returns how many were new. */
export async function enqueueFor(
  db: Database,
  recipients: readonly Recipient[],
  kind: string,
  dedupBase: string,
  renderFor: (locale: Locale) => RenderedEmail,
  now: Date,
): Promise<number> {
  let n = 0;
  for (const r of recipients) {
    const e = renderFor(r.locale);
    if (await enqueue(db, { dedupKey: `${dedupBase}:${r.address.toLowerCase()}`, kind, to: r.address, locale: r.locale, subject: e.subject, text: e.text, html: e.html }, now)) n++;
  }
  return n;
}

/** The console's page of a customer, when the public URL is configured. */
export function customerUrl(publicUrl: string | null, customerId: string): string | null {
  return publicUrl ? `${publicUrl}/clients/${encodeURIComponent(customerId)}` : null;
}
