import type { AlertKind, BackupStatus, CustomerSites, RestoreTestSummary, SiteSummary } from '@coffre/core';
import type { Locale } from '../db/schema.js';

/**
 * Every email coffre sends, in French (default) and English, each with a plain-text part
 * and a simple HTML part (inline styles only: mail clients ignore style sheets). Dates are
 * shown in Europe/Paris. Nothing here reads the database: callers pass plain values, so the
 * templates are tested on their own.
 */
export interface RenderedEmail {
  readonly subject: string;
  readonly text: string;
  readonly html: string;
}

export const MAIL_TIME_ZONE = 'Europe/Paris';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

export function dateTime(iso: string, locale: Locale): string {
  return new Intl.DateTimeFormat(locale === 'fr' ? 'fr-FR' : 'en-GB', { timeZone: MAIL_TIME_ZONE, dateStyle: 'long', timeStyle: 'short' }).format(new Date(iso));
}
export function date(iso: string, locale: Locale): string {
  return new Intl.DateTimeFormat(locale === 'fr' ? 'fr-FR' : 'en-GB', { timeZone: MAIL_TIME_ZONE, dateStyle: 'long' }).format(new Date(iso));
}
function monthName(yyyyMm: string, locale: Locale): string {
  return new Intl.DateTimeFormat(locale === 'fr' ? 'fr-FR' : 'en-GB', { timeZone: 'UTC', month: 'long', year: 'numeric' }).format(new Date(`${yyyyMm}-15T00:00:00Z`));
}
export function formatBytes(n: number, locale: Locale): string {
  const units = locale === 'fr' ? ['o', 'Ko', 'Mo', 'Go', 'To', 'Po'] : ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  const num = new Intl.NumberFormat(locale === 'fr' ? 'fr-FR' : 'en-GB', { maximumFractionDigits: i === 0 ? 0 : 1 }).format(v);
  return `${num}\u00a0${units[i]}`;
}
function euros(cents: number, locale: Locale): string {
  return new Intl.NumberFormat(locale === 'fr' ? 'fr-FR' : 'en-GB', { style: 'currency', currency: 'EUR' }).format(cents / 100);
}

const STATUS: Readonly<Record<Locale, Readonly<Record<BackupStatus, string>>>> = {
  fr: { ok: 'OK', late: 'En retard', failed: 'Échec', never: 'Jamais sauvegardé', no_schedule: 'Sans planification' },
  en: { ok: 'OK', late: 'Late', failed: 'Failed', never: 'Never backed up', no_schedule: 'No schedule' },
};

const FOOTER: Readonly<Record<Locale, string>> = {
  fr: "Message automatique de coffre, le service de sauvegarde de votre prestataire informatique. Pour ne plus recevoir ces messages ou changer l'adresse, contactez votre prestataire.",
  en: 'Automatic message from coffre, the backup service of your IT provider. To stop these messages or change the address, contact your provider.',
};

/** One table: header row then rows, each cell plain text (escaped here). */
interface Table {
  readonly head: readonly string[];
  readonly rows: readonly (readonly string[])[];
}

export interface Body {
  readonly title: string;
  /** Paragraphs of plain text. */
  readonly paragraphs: readonly string[];
  readonly tables?: readonly { readonly caption: string; readonly table: Table }[];
  readonly link?: { readonly label: string; readonly url: string } | null;
}

export function render(locale: Locale, subject: string, b: Body): RenderedEmail {
  const textTables = (b.tables ?? []).map(({ caption, table }) => {
    const lines = table.rows.map((r) => r.map((c, i) => `${table.head[i]}: ${c}`).join(' · '));
    return `${caption}\n${lines.length ? lines.map((l) => `- ${l}`).join('\n') : '-'}`;
  });
  const text = [b.title, '', ...b.paragraphs.flatMap((p) => [p, '']), ...textTables.flatMap((t) => [t, '']), ...(b.link ? [`${b.link.label}: ${b.link.url}`, ''] : []), '--', FOOTER[locale], ''].join('\n');
  const cell = 'padding:6px 10px;border-bottom:1px solid #dde3ea;text-align:left;vertical-align:top';
  const htmlTables = (b.tables ?? [])
    .map(
      ({ caption, table }) =>
        `<table style="border-collapse:collapse;width:100%;margin:12px 0;font-size:14px"><caption style="text-align:left;font-weight:bold;padding:6px 0">${esc(caption)}</caption>` +
        `<thead><tr>${table.head.map((h) => `<th style="${cell};background:#f1f4f7">${esc(h)}</th>`).join('')}</tr></thead>` +
        `<tbody>${table.rows.map((r) => `<tr>${r.map((c) => `<td style="${cell}">${esc(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`,
    )
    .join('');
  const html =
    `<!doctype html><html lang="${locale}"><head><meta charset="utf-8"><title>${esc(subject)}</title></head>` +
    `<body style="margin:0;padding:0;background:#f5f7fa;font-family:Segoe UI,Helvetica,Arial,sans-serif;color:#1b2733">` +
    `<div style="max-width:640px;margin:0 auto;padding:16px"><div style="background:#0b5a78;color:#fff;padding:12px 16px;font-weight:bold;font-size:18px">coffre</div>` +
    `<div style="background:#fff;padding:16px;border:1px solid #dde3ea"><h1 style="font-size:20px;margin:0 0 12px">${esc(b.title)}</h1>` +
    b.paragraphs.map((p) => `<p style="margin:0 0 10px;line-height:1.5">${esc(p)}</p>`).join('') +
    htmlTables +
    (b.link ? `<p><a href="${esc(b.link.url)}" style="color:#0b5a78">${esc(b.link.label)}</a></p>` : '') +
    `</div><p style="font-size:12px;color:#5b6b7a;line-height:1.4">${esc(FOOTER[locale])}</p></div></body></html>`;
  return { subject, text, html };
}

// ------------------------------------------------------------------- alerts

export interface AlertEmailInput {
  readonly customerName: string;
  readonly machineName: string | null;
  readonly kind: AlertKind;
  /** The missed scheduled time, the failed run's end, or when the mismatch was found. */
  readonly since: string | null;
  readonly openedAt: string;
  readonly errorCode: string | null;
  readonly consoleUrl: string | null;
}

const KIND: Readonly<Record<Locale, Readonly<Record<AlertKind, string>>>> = {
  fr: { backup_missed: 'sauvegarde manquée', backup_failed: 'sauvegarde en échec', verify_mismatch: "contrôle d'intégrité en échec", replica_lag: 'copie de secours en retard' },
  en: { backup_missed: 'missed backup', backup_failed: 'failed backup', verify_mismatch: 'integrity check failed', replica_lag: 'second-site copy behind' },
};

function who(a: AlertEmailInput): string {
  return a.machineName ? `${a.customerName} (${a.machineName})` : a.customerName;
}

function alertFacts(a: AlertEmailInput, locale: Locale): string {
  const since = a.since ? dateTime(a.since, locale) : dateTime(a.openedAt, locale);
  const m = a.machineName ?? '';
  if (locale === 'fr') {
    if (a.kind === 'backup_missed') return `La sauvegarde planifiée de la machine « ${m} » du client « ${a.customerName} », prévue le ${since}, n'a pas eu lieu.`;
    if (a.kind === 'backup_failed') return `La dernière sauvegarde de la machine « ${m} » du client « ${a.customerName} » a échoué le ${since}${a.errorCode ? ` (code ${a.errorCode})` : ''}.`;
    if (a.kind === 'replica_lag') return `La copie des sauvegardes du client « ${a.customerName} » sur le second site n'est plus à jour : elle contient tout jusqu'au ${since} seulement.`;
    return `Une donnée stockée du client « ${a.customerName} » ne correspond plus à son empreinte (contrôle du ${since}).`;
  }
  if (a.kind === 'backup_missed') return `The scheduled backup of machine "${m}" of customer "${a.customerName}", due on ${since}, did not take place.`;
  if (a.kind === 'backup_failed') return `The latest backup of machine "${m}" of customer "${a.customerName}" failed on ${since}${a.errorCode ? ` (code ${a.errorCode})` : ''}.`;
  if (a.kind === 'replica_lag') return `The copy of customer "${a.customerName}"'s backups on the second site is behind: it holds everything up to ${since} only.`;
  return `Stored data of customer "${a.customerName}" no longer matches its checksum (check of ${since}).`;
}

function advice(a: AlertEmailInput, locale: Locale): string {
  if (locale === 'fr') {
    if (a.kind === 'verify_mismatch') return "L'exploitant en est informé et intervient ; les autres sauvegardes ne sont pas touchées.";
    if (a.kind === 'replica_lag') return 'Vérifiez le site de réplique (coffre-server replication status) et le réseau entre les deux sites ; les sauvegardes sur le site principal continuent.';
    return "Vérifiez que l'ordinateur est allumé, connecté au réseau et que le service de sauvegarde coffre fonctionne. Sans action de votre part, un rappel vous sera envoyé tant que la situation dure.";
  }
  if (a.kind === 'verify_mismatch') return 'The operator has been told and is on it; other backups are not affected.';
  if (a.kind === 'replica_lag') return 'Check the replica site (coffre-server replication status) and the network between the two sites; backups to the primary go on.';
  return 'Check that the computer is on, connected to the network, and that the coffre backup service is running. A reminder will follow while this lasts.';
}

export function alertOpenedEmail(a: AlertEmailInput, locale: Locale): RenderedEmail {
  const subject = locale === 'fr' ? `[coffre] Alerte : ${KIND.fr[a.kind]} — ${who(a)}` : `[coffre] Alert: ${KIND.en[a.kind]} — ${who(a)}`;
  return render(locale, subject, {
    title: locale === 'fr' ? `Alerte : ${KIND.fr[a.kind]}` : `Alert: ${KIND.en[a.kind]}`,
    paragraphs: [alertFacts(a, locale), advice(a, locale)],
    link: a.consoleUrl ? { label: locale === 'fr' ? 'Voir dans la console' : 'See it in the console', url: a.consoleUrl } : null,
  });
}

export function alertReminderEmail(a: AlertEmailInput, locale: Locale, reminder: number): RenderedEmail {
  const subject = locale === 'fr' ? `[coffre] Rappel n° ${reminder} : ${KIND.fr[a.kind]} — ${who(a)}` : `[coffre] Reminder #${reminder}: ${KIND.en[a.kind]} — ${who(a)}`;
  const opened = dateTime(a.openedAt, locale);
  return render(locale, subject, {
    title: locale === 'fr' ? `Rappel : ${KIND.fr[a.kind]}` : `Reminder: ${KIND.en[a.kind]}`,
    paragraphs: [locale === 'fr' ? `Cette alerte est ouverte depuis le ${opened} et dure toujours.` : `This alert has been open since ${opened} and still lasts.`, alertFacts(a, locale), advice(a, locale)],
    link: a.consoleUrl ? { label: locale === 'fr' ? 'Voir dans la console' : 'See it in the console', url: a.consoleUrl } : null,
  });
}

export function alertClosedEmail(a: AlertEmailInput & { readonly closedAt: string }, locale: Locale): RenderedEmail {
  const subject = locale === 'fr' ? `[coffre] Retour à la normale — ${who(a)}` : `[coffre] Back to normal — ${who(a)}`;
  const facts =
    locale === 'fr'
      ? `L'alerte « ${KIND.fr[a.kind]} » ouverte le ${dateTime(a.openedAt, locale)} pour ${who(a)} est close depuis le ${dateTime(a.closedAt, locale)} : tout est rentré dans l'ordre.`
      : `The "${KIND.en[a.kind]}" alert opened on ${dateTime(a.openedAt, locale)} for ${who(a)} closed on ${dateTime(a.closedAt, locale)}: things are back to normal.`;
  return render(locale, subject, {
    title: locale === 'fr' ? 'Retour à la normale' : 'Back to normal',
    paragraphs: [facts],
    link: a.consoleUrl ? { label: locale === 'fr' ? 'Voir dans la console' : 'See it in the console', url: a.consoleUrl } : null,
  });
}

// ------------------------------------------------------------------- reports

export interface CustomerLine {
  readonly name: string;
  readonly status: BackupStatus;
  readonly lastSuccessAt: string | null;
  readonly openAlerts: number;
  readonly protectedBytes: number;
}

export function resellerDailyEmail(r: { readonly resellerName: string; readonly day: string; readonly customers: readonly CustomerLine[]; readonly consoleUrl: string | null }, locale: Locale): RenderedEmail {
  const fr = locale === 'fr';
  const bad = r.customers.filter((c) => c.status !== 'ok').length;
  const subject = fr ? `[coffre] Synthèse quotidienne du ${date(r.day, locale)} — ${r.resellerName}` : `[coffre] Daily summary of ${date(r.day, locale)} — ${r.resellerName}`;
  const never = fr ? 'jamais' : 'never';
  return render(locale, subject, {
    title: fr ? `Synthèse quotidienne — ${r.resellerName}` : `Daily summary — ${r.resellerName}`,
    paragraphs: [
      fr
        ? `${r.customers.length} client(s) suivi(s) ; ${bad === 0 ? 'tous sont à jour.' : `${bad} demande(nt) votre attention.`}`
        : `${r.customers.length} customer(s); ${bad === 0 ? 'all are up to date.' : `${bad} need(s) your attention.`}`,
    ],
    tables: [
      {
        caption: fr ? 'Clients' : 'Customers',
        table: {
          head: fr ? ['Client', 'État', 'Dernière sauvegarde réussie', 'Alertes ouvertes', 'Volume protégé'] : ['Customer', 'Status', 'Last successful backup', 'Open alerts', 'Protected volume'],
          rows: r.customers.map((c) => [c.name, STATUS[locale][c.status], c.lastSuccessAt ? dateTime(c.lastSuccessAt, locale) : never, String(c.openAlerts), formatBytes(c.protectedBytes, locale)]),
        },
      },
    ],
    link: r.consoleUrl ? { label: fr ? 'Ouvrir le tableau de bord' : 'Open the dashboard', url: r.consoleUrl } : null,
  });
}

export interface WeeklyMachineLine {
  readonly name: string;
  readonly status: BackupStatus;
  readonly lastSuccessAt: string | null;
  readonly lastRestoreTest: RestoreTestSummary | null;
}

export interface CustomerWeeklyInput {
  readonly customerName: string;
  /** ISO week label, e.g. 2026-W48, and its first and last day. */
  readonly week: string;
  readonly from: string;
  readonly to: string;
  readonly runs: { readonly success: number; readonly partial: number; readonly failed: number };
  readonly protectedBytes: number;
  readonly storedBytes: number;
  readonly machines: readonly WeeklyMachineLine[];
  readonly openAlerts: readonly AlertEmailInput[];
  readonly consoleUrl: string | null;
  /** Where the data live and how far the second-site copy is (absent: not told). */
  readonly sites?: CustomerSites;
  /** A copy older than this is "behind" (default 6). */
  readonly replicaLagHours?: number;
}

/** One sentence on where the data live and whether the second-site copy is up to date. */
function sitesParagraph(s: CustomerSites, to: string, lagHours: number, locale: Locale): string {
  const fr = locale === 'fr';
  const site = (x: SiteSummary): string => `${x.provider || (fr ? 'hébergeur non précisé' : 'provider not specified')} (${x.country}${x.hdsCertified ? (fr ? ', certifié HDS' : ', certified health-data host') : ''})`;
  const where = s.primary ? (fr ? `Vos données sont hébergées chez ${site(s.primary)}` : `Your data are hosted by ${site(s.primary)}`) : fr ? 'Vos données sont hébergées sur le site principal' : 'Your data are hosted on the primary site';
  if (!s.replica) return `${where}${fr ? ' ; aucune copie sur un second site.' : '; no copy on a second site.'}`;
  const fresh = s.replicatedUpTo !== null && Date.parse(to) - Date.parse(s.replicatedUpTo) <= lagHours * 3_600_000;
  const copy = fr
    ? `, avec une copie sur un second site chez ${site(s.replica)}, ${fresh ? `à jour (copiée jusqu'au ${dateTime(s.replicatedUpTo!, locale)})` : s.replicatedUpTo ? `EN RETARD (copiée jusqu'au ${dateTime(s.replicatedUpTo, locale)} seulement)` : 'PAS ENCORE COPIÉES'}.`
    : `, with a copy on a second site at ${site(s.replica)}, ${fresh ? `up to date (copied up to ${dateTime(s.replicatedUpTo!, locale)})` : s.replicatedUpTo ? `BEHIND (copied up to ${dateTime(s.replicatedUpTo, locale)} only)` : 'NOT COPIED YET'}.`;
  return where + copy;
}

export function customerWeeklyEmail(w: CustomerWeeklyInput, locale: Locale): RenderedEmail {
  const fr = locale === 'fr';
  const weekNo = w.week.split('-W')[1] ?? w.week;
  const subject = fr ? `[coffre] Rapport hebdomadaire, semaine ${weekNo} — ${w.customerName}` : `[coffre] Weekly report, week ${weekNo} — ${w.customerName}`;
  const proven = (t: RestoreTestSummary | null) =>
    t === null
      ? fr
        ? 'aucun test'
        : 'no test yet'
      : t.result === 'success'
        ? fr
          ? `réussie le ${date(t.finishedAt, locale)} (${t.comparedFiles} fichier(s) comparé(s))`
          : `succeeded on ${date(t.finishedAt, locale)} (${t.comparedFiles} file(s) compared)`
        : fr
          ? `ÉCHEC le ${date(t.finishedAt, locale)} (${t.mismatches} écart(s))`
          : `FAILED on ${date(t.finishedAt, locale)} (${t.mismatches} mismatch(es))`;
  const total = w.runs.success + w.runs.partial + w.runs.failed;
  return render(locale, subject, {
    title: fr ? `Rapport hebdomadaire — ${w.customerName}` : `Weekly report — ${w.customerName}`,
    paragraphs: [
      fr ? `Semaine du ${date(w.from, locale)} au ${date(w.to, locale)}.` : `Week from ${date(w.from, locale)} to ${date(w.to, locale)}.`,
      fr
        ? `Sauvegardes : ${total} exécution(s) — ${w.runs.success} réussie(s), ${w.runs.partial} partielle(s), ${w.runs.failed} en échec.`
        : `Backups: ${total} run(s) — ${w.runs.success} succeeded, ${w.runs.partial} partial, ${w.runs.failed} failed.`,
      fr
        ? `Volume protégé : ${formatBytes(w.protectedBytes, locale)} ; volume stocké (chiffré, dédupliqué) : ${formatBytes(w.storedBytes, locale)}.`
        : `Protected volume: ${formatBytes(w.protectedBytes, locale)}; stored volume (encrypted, deduplicated): ${formatBytes(w.storedBytes, locale)}.`,
      ...(w.sites ? [sitesParagraph(w.sites, w.to, w.replicaLagHours ?? 6, locale)] : []),
      w.openAlerts.length === 0 ? (fr ? 'Aucune alerte ouverte.' : 'No open alert.') : fr ? `${w.openAlerts.length} alerte(s) ouverte(s) :` : `${w.openAlerts.length} open alert(s):`,
      ...w.openAlerts.map((a) => `• ${alertFacts(a, locale)}`),
    ],
    tables: [
      {
        caption: fr ? 'Machines' : 'Machines',
        table: {
          head: fr ? ['Machine', 'État', 'Dernière sauvegarde réussie', 'Dernière restauration prouvée'] : ['Machine', 'Status', 'Last successful backup', 'Last proven restore'],
          rows: w.machines.map((m) => [m.name, STATUS[locale][m.status], m.lastSuccessAt ? dateTime(m.lastSuccessAt, locale) : fr ? 'jamais' : 'never', proven(m.lastRestoreTest)]),
        },
      },
    ],
    link: w.consoleUrl ? { label: fr ? 'Voir dans la console' : 'See it in the console', url: w.consoleUrl } : null,
  });
}

// ------------------------------------------------------------------- tiers

export interface TierExceededInput {
  readonly customerName: string;
  readonly tierName: string;
  readonly limitBytes: number;
  readonly protectedBytes: number;
  /** The tier that applies from `from` (YYYY-MM-01), or null when there is no larger tier. */
  readonly nextTier: { readonly name: string; readonly limitBytes: number; readonly monthlyPriceCents: number } | null;
  readonly from: string;
}

export function tierExceededEmail(t: TierExceededInput, locale: Locale): RenderedEmail {
  const fr = locale === 'fr';
  const subject = fr ? `[coffre] Dépassement de votre offre ${t.tierName} — ${t.customerName}` : `[coffre] Your ${t.tierName} plan is exceeded — ${t.customerName}`;
  const facts = fr
    ? `Le volume protégé de « ${t.customerName} » atteint ${formatBytes(t.protectedBytes, locale)}, au-delà de la limite de ${formatBytes(t.limitBytes, locale)} de l'offre « ${t.tierName} ».`
    : `The protected volume of "${t.customerName}" reached ${formatBytes(t.protectedBytes, locale)}, above the ${formatBytes(t.limitBytes, locale)} limit of the "${t.tierName}" plan.`;
  const next = t.nextTier
    ? fr
      ? `Conformément aux conditions de service, l'offre « ${t.nextTier.name} » (jusqu'à ${formatBytes(t.nextTier.limitBytes, locale)}, ${euros(t.nextTier.monthlyPriceCents, locale)} HT par mois) s'applique à partir de ${monthName(t.from.slice(0, 7), locale)}, sans nouvelle signature.`
      : `As the service terms provide, the "${t.nextTier.name}" plan (up to ${formatBytes(t.nextTier.limitBytes, locale)}, ${euros(t.nextTier.monthlyPriceCents, locale)} excl. VAT per month) applies from ${monthName(t.from.slice(0, 7), locale)}, with no new signature.`
    : fr
      ? "Aucune offre supérieure n'existe : votre prestataire vous contactera."
      : 'There is no larger plan: your provider will contact you.';
  return render(locale, subject, {
    title: fr ? 'Dépassement de votre offre' : 'Your plan is exceeded',
    paragraphs: [facts, next, fr ? 'Vos sauvegardes continuent normalement : aucune sauvegarde n’est refusée pour un dépassement.' : 'Your backups go on as usual: no backup is ever refused for being over a plan.'],
  });
}
