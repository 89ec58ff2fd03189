import type { CustomerSites, SiteSummary } from '@coffre/core/people-api';
import { useTime } from '../components/time';
import { defineMessages, useT } from '../i18n/i18n';

/** Where a customer's data live (its two sites: country, provider, certification) and how far the second-site copy is. */
const m = defineMessages({
  fr: {
    title: 'Lieux d’hébergement',
    primary: 'Site principal',
    replica: 'Site de secours (réplique)',
    none: 'aucun',
    hds: 'hébergeur certifié HDS',
    notHds: 'non certifié HDS',
    outsideEu: 'hors UE/EEE (autorisation du client enregistrée)',
    noProvider: 'hébergeur non précisé',
    replicated: 'Répliqué jusqu’au',
    never: 'pas encore répliqué',
    announced: 'Changement annoncé au client, effectif le {date}',
  },
  en: {
    title: 'Where the data live',
    primary: 'Primary site',
    replica: 'Second site (replica)',
    none: 'none',
    hds: 'certified health-data host',
    notHds: 'not a certified health-data host',
    outsideEu: 'outside the EU/EEA (customer’s authorisation recorded)',
    noProvider: 'provider not specified',
    replicated: 'Replicated up to',
    never: 'not replicated yet',
    announced: 'Change announced to the customer, effective on {date}',
  },
});

function Site({ s }: { s: SiteSummary | null }) {
  const t = useT(m);
  if (!s) return <span className="muted">{t('none')}</span>;
  return (
    <>
      <strong>{s.name}</strong> — {s.provider || t('noProvider')}, {s.country} ({s.hdsCertified ? t('hds') : t('notHds')}){!s.inEu && <> · {t('outsideEu')}</>}
    </>
  );
}

export function SitesSection({ sites }: { sites: CustomerSites }) {
  const t = useT(m);
  const f = useTime();
  return (
    <section className="card cf-card" aria-labelledby="cf-sites">
      <h2 id="cf-sites">{t('title')}</h2>
      <dl className="cf-dl">
        <dt>{t('primary')}</dt>
        <dd>
          <Site s={sites.primary} />
        </dd>
        <dt>{t('replica')}</dt>
        <dd>
          <Site s={sites.replica} />
        </dd>
        {sites.replica && (
          <>
            <dt>{t('replicated')}</dt>
            <dd>{sites.replicatedUpTo ? `${f.dateTime(sites.replicatedUpTo)} (${f.relative(sites.replicatedUpTo)})` : <span className="muted">{t('never')}</span>}</dd>
          </>
        )}
      </dl>
      {sites.announced.map((a) => (
        <p key={a.effectiveAt} className="alert info">
          {t('announced', { date: f.date(a.effectiveAt) })}
        </p>
      ))}
    </section>
  );
}
