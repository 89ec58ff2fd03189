import type { Database } from '../db/database.js';
import { allOrgs } from '../db/queries/orgs.js';
import { listTiers } from '../db/queries/tiers.js';
import { usageDaysOfMonth } from '../db/queries/usage.js';
import { csvCell } from '../audit/export.js';
import { apiError } from '../errors.js';

export interface UsageLine {
  readonly reseller: string;
  readonly customer: string;
  /** The tier in effect on the last metered day of the month. */
  readonly tier: string;
  readonly monthlyPriceEuros: string;
  readonly limitBytes: number | null;
  readonly maxProtectedBytes: number;
  readonly avgProtectedBytes: number;
  readonly maxStoredBytes: number;
  readonly daysMetered: number;
  readonly daysOverLimit: number;
}

/**
 * The month's usage per customer, from the daily metering (for invoicing, R13): one line per
 * customer of the reseller (or of every reseller), with the tier in effect at the end of
 * the month, its price, and the largest and average volumes.
 */
export async function usageReport(db: Database, month: string, resellerName?: string): Promise<UsageLine[]> {
  if (!/^\d{4}-(0[1-9]|1[0-2])$/.test(month)) throw apiError('badRequest', { reason: 'month must be YYYY-MM' });
  const orgs = await allOrgs(db);
  const byId = new Map<string, (typeof orgs)[number]>(orgs.map((o) => [o.id, o]));
  let customers = orgs.filter((o) => o.type === 'customer');
  if (resellerName !== undefined) {
    const r = orgs.find((o) => o.type === 'reseller' && o.name === resellerName);
    if (!r) throw apiError('orgNotFound', { name: resellerName });
    customers = customers.filter((c) => c.parent_id === r.id);
  }
  const tiers = new Map((await listTiers(db)).map((t) => [t.id, t]));
  const days = await usageDaysOfMonth(db, month);
  const lines: UsageLine[] = [];
  for (const c of customers) {
    const mine = days.filter((d) => d.customer_id === c.id);
    const last = mine.at(-1);
    const tier = last?.tier_id ? tiers.get(last.tier_id) : c.tier_id ? tiers.get(c.tier_id) : undefined;
    const prot = mine.map((d) => Number(d.protected_bytes));
    lines.push({
      reseller: (c.parent_id && byId.get(c.parent_id)?.type === 'reseller' ? byId.get(c.parent_id)!.name : '') || '',
      customer: c.name,
      tier: tier?.name ?? '',
      monthlyPriceEuros: tier ? (tier.monthly_price_cents / 100).toFixed(2) : '',
      limitBytes: tier ? Number(tier.limit_bytes) : null,
      maxProtectedBytes: prot.length ? Math.max(...prot) : 0,
      avgProtectedBytes: prot.length ? Math.round(prot.reduce((a, b) => a + b, 0) / prot.length) : 0,
      maxStoredBytes: mine.length ? Math.max(...mine.map((d) => Number(d.stored_bytes))) : 0,
      daysMetered: mine.length,
      daysOverLimit: mine.filter((d) => d.limit_bytes !== null && Number(d.protected_bytes) > Number(d.limit_bytes)).length,
    });
  }
  return lines.sort((a, b) => a.reseller.localeCompare(b.reseller, 'fr') || a.customer.localeCompare(b.customer, 'fr'));
}

const HEADER = ['reseller', 'customer', 'tier', 'monthly_price_eur', 'limit_bytes', 'max_protected_bytes', 'avg_protected_bytes', 'max_stored_bytes', 'days_metered', 'days_over_limit'];

/** RFC 4180 CSV (CRLF), cells guarded against spreadsheet formulas. */
export function usageCsv(lines: readonly UsageLine[]): string {
  const row = (cells: readonly (string | number | null)[]) => cells.map((c) => csvCell(c === null ? '' : String(c))).join(',');
  return [
    row(HEADER),
    ...lines.map((l) => row([l.reseller, l.customer, l.tier, l.monthlyPriceEuros, l.limitBytes, l.maxProtectedBytes, l.avgProtectedBytes, l.maxStoredBytes, l.daysMetered, l.daysOverLimit])),
  ].join('\r\n') + '\r\n';
}
