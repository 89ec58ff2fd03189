import type { Locale } from '../db/schema.js';
import { date, render, type RenderedEmail } from './templates.js';

/** Where a customer's data live: one site as the customer is told about it. */
export interface SiteDescriptionLine {
  readonly name: string;
  readonly country: string;
  readonly provider: string;
  readonly hdsCertified: boolean;
}

export interface LocationChangeInput {
  readonly customerName: string;
  /** When the change takes effect. */
  readonly effectiveAt: string;
  /** What changes, site by site: before and after (a site added or removed has one side null). */
  readonly changes: readonly { readonly role: 'primary' | 'replica'; readonly before: SiteDescriptionLine | null; readonly after: SiteDescriptionLine | null }[];
}

function line(s: SiteDescriptionLine | null, locale: Locale): string {
  if (!s) return locale === 'fr' ? 'aucun' : 'none';
  const hds = s.hdsCertified ? (locale === 'fr' ? 'hébergeur certifié HDS' : 'certified health-data host') : locale === 'fr' ? 'non certifié HDS' : 'not a certified health-data host';
  return `${s.name} — ${s.provider || (locale === 'fr' ? 'hébergeur non précisé' : 'provider not specified')}, ${s.country} (${hds})`;
}

/**
 * Tells a customer, before it happens, that the place or the hosting provider of its backed-up
 * data changes (the service terms: data stay in the EU/EEA; a change of hosting provider is
 * told to the customer).
 */
export function locationChangeEmail(c: LocationChangeInput, locale: Locale): RenderedEmail {
  const fr = locale === 'fr';
  const subject = fr ? `[coffre] Changement du lieu d'hébergement de vos sauvegardes — ${c.customerName}` : `[coffre] Change of where your backups are hosted — ${c.customerName}`;
  const role = (r: 'primary' | 'replica'): string => (r === 'primary' ? (fr ? 'Site principal' : 'Primary site') : fr ? 'Site de secours (réplique)' : 'Second site (replica)');
  return render(locale, subject, {
    title: fr ? "Changement du lieu d'hébergement" : 'Change of hosting',
    paragraphs: [
      fr
        ? `À partir du ${date(c.effectiveAt, locale)}, les sauvegardes chiffrées de « ${c.customerName} » seront hébergées comme suit :`
        : `From ${date(c.effectiveAt, locale)}, the encrypted backups of "${c.customerName}" will be hosted as follows:`,
      ...c.changes.map((x) => `• ${role(x.role)} : ${line(x.before, locale)} → ${line(x.after, locale)}`),
      fr
        ? 'Vos données restent chiffrées sur vos machines avant tout envoi : aucun hébergeur ne peut les lire. Pour toute question, contactez votre prestataire.'
        : 'Your data stay encrypted on your machines before anything is sent: no host can read them. For any question, contact your provider.',
    ],
  });
}

/** To the operator, from a replica: the primary's audit trail no longer extends the copy the replica holds. */
export function auditDivergedEmail(a: { readonly site: string; readonly primary: string; readonly reason: string; readonly at: string }, locale: Locale): RenderedEmail {
  const fr = locale === 'fr';
  return render(locale, fr ? `[coffre] ALERTE : journal d'audit du site principal modifié (vu par ${a.site})` : `[coffre] ALERT: the primary site's audit trail was altered (seen by ${a.site})`, {
    title: fr ? "Journal d'audit du site principal modifié" : "The primary site's audit trail was altered",
    paragraphs: [
      fr
        ? `Le site de réplique « ${a.site} » a constaté le ${date(a.at, locale)} que le journal d'audit du site principal « ${a.primary} » ne prolonge plus la copie qu'il en détient : ${a.reason}.`
        : `Replica site "${a.site}" found on ${date(a.at, locale)} that the audit trail of primary site "${a.primary}" no longer extends the copy it holds: ${a.reason}.`,
      fr
        ? "La réplique garde sa copie intacte et n'en copie plus d'entrées. Cela peut signaler une compromission du site principal : vérifiez-le (coffre-server audit verify), comparez avec la copie de la réplique, et consultez docs/CONTINUITY.md."
        : 'The replica keeps its copy intact and copies no more entries. This may mean the primary is compromised: check it (coffre-server audit verify), compare with the replica’s copy, and see docs/CONTINUITY.md.',
    ],
  });
}
