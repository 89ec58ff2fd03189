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
