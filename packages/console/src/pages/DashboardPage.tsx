import { BACKUP_STATUS_SEVERITY, type BackupStatus, type CustomerSummary, type DashboardResponse } from '@coffre/core/people-api';
import { When } from '../components/When';
import { useId, useMemo, useState } from 'react';
import { api } from '../api';
import { Loaded, useLoad } from '../components/Async';
import { useTime } from '../components/time';
import { defineMessages, useT } from '../i18n/i18n';
import { Link } from '../router';
import { useMe } from '../session';
import '../components/console-ui.css';

/**
 * The dashboard: every customer the person may see (the server filters by tenant), its
 * backup status (failed, late, never backed up, no schedule or OK; sorted in that order of
 * severity), last success, volumes against the tier and open alerts; KPIs on top; search,
 * status and open-alert filters and sortable columns.
 */
const m = defineMessages({
  fr: {
    title: 'Tableau de bord',
    asOf: 'État au {date}',
    refresh: 'Actualiser',
    kpiCustomers: 'Clients',
    kpiMachines: '{n} machines actives',
    kpiMachine: '{n} machine active',
    kpiOk: 'À jour',
    kpiOkNote: 'Sauvegardes planifiées faites',
    kpiLate: 'En retard',
    kpiLateNote: "Une sauvegarde planifiée n'a pas eu lieu",
    kpiFailed: 'En échec',
    kpiFailedNote: "La dernière exécution d'une machine a échoué",
    kpiNever: 'Jamais sauvegardés',
    kpiNeverNote: 'Aucune sauvegarde reçue',
    kpiNoSchedule: 'Sans planification',
    kpiNoScheduleNote: "Une machine n'a aucune sauvegarde planifiée",
    kpiAlerts: 'Alertes ouvertes',
    kpiAlertsNote: 'Sauvegardes manquées ou en échec',
    kpiProtected: 'Volume protégé',
    kpiProtectedNote: 'Stocké : {stored} après déduplication et compression',
    customers: 'Clients',
    search: 'Rechercher',
    searchPlaceholder: 'Nom du client ou du revendeur',
    status: 'État',
    all: 'Tous les états',
    ok: 'OK',
    late: 'En retard',
    failed: 'Échec',
    never: 'Jamais sauvegardé',
    no_schedule: 'Sans planification',
    suspended: 'Suspendu',
    onlyAlerts: 'Avec alertes ouvertes uniquement',
    shown: '{n} clients affichés sur {total}',
    shownOne: '{n} client affiché sur {total}',
    colName: 'Client',
    colParent: 'Revendeur',
    colStatus: 'État',
    colLast: 'Dernière sauvegarde réussie',
    colMachines: 'Machines',
    colProtected: 'Volume protégé',
    colStored: 'Volume stocké',
    colTier: 'Offre',
    tierUse: '{pct} % de {limit} protégés',
    noTier: 'Aucune',
    colAlerts: 'Alertes',
    alertsNone: 'Aucune alerte ouverte',
    alertsLink: '{n} alertes ouvertes',
    alertsLinkOne: '{n} alerte ouverte',
    never_short: 'Jamais',
    noneTitle: 'Aucun client pour le moment',
    noneText: "Les cabinets que vous suivez apparaîtront ici, avec l'état de leurs sauvegardes, dès leur création.",
    noMatch: 'Aucun client ne correspond à ces critères.',
    clear: 'Effacer les filtres',
  },
  en: {
    title: 'Dashboard',
    asOf: 'As of {date}',
    refresh: 'Refresh',
    kpiCustomers: 'Customers',
    kpiMachines: '{n} active machines',
    kpiMachine: '{n} active machine',
    kpiOk: 'Up to date',
    kpiOkNote: 'Scheduled backups done',
    kpiLate: 'Late',
    kpiLateNote: 'A scheduled backup did not happen',
    kpiFailed: 'Failed',
    kpiFailedNote: "A machine's latest run failed",
    kpiNever: 'Never backed up',
    kpiNeverNote: 'No backup received',
    kpiNoSchedule: 'No schedule',
    kpiNoScheduleNote: 'A machine has no scheduled backup',
    kpiAlerts: 'Open alerts',
    kpiAlertsNote: 'Missed or failed backups',
    kpiProtected: 'Protected volume',
    kpiProtectedNote: 'Stored: {stored} after deduplication and compression',
    customers: 'Customers',
    search: 'Search',
    searchPlaceholder: 'Customer or reseller name',
    status: 'Status',
    all: 'All statuses',
    ok: 'OK',
    late: 'Late',
    failed: 'Failed',
    never: 'Never backed up',
    no_schedule: 'No schedule',
    suspended: 'Suspended',
    onlyAlerts: 'With open alerts only',
    shown: '{n} of {total} customers shown',
    shownOne: '{n} of {total} customers shown',
    colName: 'Customer',
    colParent: 'Reseller',
    colStatus: 'Status',
    colLast: 'Last successful backup',
    colMachines: 'Machines',
    colProtected: 'Protected volume',
    colStored: 'Stored volume',
    colTier: 'Plan',
    tierUse: '{pct}% of {limit} protected',
    noTier: 'None',
    colAlerts: 'Alerts',
    alertsNone: 'No open alert',
    alertsLink: '{n} open alerts',
    alertsLinkOne: '{n} open alert',
    never_short: 'Never',
    noneTitle: 'No customers yet',
    noneText: 'The practices you look after will appear here, with the state of their backups, as soon as they are created.',
    noMatch: 'No customer matches these criteria.',
    clear: 'Clear the filters',
  },
});

/** 'failed': the latest run reported by one of the customer's machines failed (server rule). */
export type { BackupStatus };


type Dashboard = DashboardResponse;

type SortKey = 'name' | 'parent' | 'status' | 'last' | 'machines' | 'protected' | 'stored' | 'alerts';
type Dir = 'ascending' | 'descending';

const SEVERITY = BACKUP_STATUS_SEVERITY;
const TONE: Readonly<Record<BackupStatus, string>> = { ok: 'ok', late: 'warn', failed: 'bad', never: 'bad', no_schedule: 'warn' };

/** Lower case without accents, for a forgiving search ("medecin" finds "Médecin"). */
function fold(s: string): string {
  return s.normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase();
}

export function StatusBadge({ status }: { status: BackupStatus }) {
  const t = useT(m);
  return <span className={`badge ${TONE[status]}`}>{t(status)}</span>;
}

export function DashboardPage() {
  const t = useT(m);
  const f = useTime();
  const state = useLoad(() => api<Dashboard>('GET', '/dashboard'), []);
  return (
    <>
      <div className="cf-page-head">
        <div>
          <h1>{t('title')}</h1>
          {state.data && <p className="cf-meta">{t('asOf', { date: f.dateTime(state.data.generatedAt) })}</p>}
        </div>
        <button type="button" className="secondary" onClick={state.reload}>
          {t('refresh')}
        </button>
      </div>
      <Loaded state={state}>{(d) => <DashboardBody data={d} />}</Loaded>
    </>
  );
}

function DashboardBody({ data }: { data: Dashboard }) {
  const t = useT(m);
  const f = useTime();
  const me = useMe();
  const searchId = useId();
  const statusId = useId();
  const alertsId = useId();
  const [query, setQuery] = useState('');
  const [onlyAlerts, setOnlyAlerts] = useState(false);
  const [status, setStatus] = useState<'' | BackupStatus>('');
  const [sort, setSort] = useState<{ key: SortKey; dir: Dir }>({ key: 'status', dir: 'ascending' });
  const all = data.customers;
  // The reseller column helps only those who see several resellers' customers.
  const showParent = me.org?.type === 'operator' || new Set(all.map((c) => c.parentId)).size > 1;

  const counts = useMemo(() => {
    const c = { ok: 0, late: 0, failed: 0, never: 0, no_schedule: 0, alerts: 0, machines: 0, protectedBytes: 0, storedBytes: 0 };
    for (const x of all) {
      c[x.backupStatus]++;
      c.alerts += x.openAlerts;
      c.machines += x.machines;
      c.protectedBytes += x.protectedBytes;
      c.storedBytes += x.storedBytes;
    }
    return c;
  }, [all]);

  const rows = useMemo(() => {
    const q = fold(query.trim());
    const filtered = all.filter((c) => (!status || c.backupStatus === status) && (!onlyAlerts || c.openAlerts > 0) && (!q || fold(c.name).includes(q) || fold(c.parentName ?? '').includes(q)));
    const coll = new Intl.Collator(f.locale, { sensitivity: 'base', numeric: true });
    const byName = (a: CustomerSummary, b: CustomerSummary) => coll.compare(a.name, b.name);
    const cmp: Record<SortKey, (a: CustomerSummary, b: CustomerSummary) => number> = {
      name: byName,
      parent: (a, b) => coll.compare(a.parentName ?? '', b.parentName ?? ''),
      status: (a, b) => SEVERITY[a.backupStatus] - SEVERITY[b.backupStatus],
      last: (a, b) => (a.lastSuccessAt ? Date.parse(a.lastSuccessAt) : 0) - (b.lastSuccessAt ? Date.parse(b.lastSuccessAt) : 0),
      machines: (a, b) => a.machines - b.machines,
      protected: (a, b) => a.protectedBytes - b.protectedBytes,
      stored: (a, b) => a.storedBytes - b.storedBytes,
      alerts: (a, b) => a.openAlerts - b.openAlerts,
    };
    const sign = sort.dir === 'ascending' ? 1 : -1;
    return [...filtered].sort((a, b) => sign * cmp[sort.key](a, b) || byName(a, b));
  }, [all, query, status, onlyAlerts, sort, f.locale]);

  if (all.length === 0) {
    return (
      <div className="card cf-empty">
        <strong>{t('noneTitle')}</strong>
        {t('noneText')}
      </div>
    );
  }

  const toggle = (key: SortKey) =>
    setSort((s) => (s.key === key ? { key, dir: s.dir === 'ascending' ? 'descending' : 'ascending' } : { key, dir: key === 'name' || key === 'parent' || key === 'status' ? 'ascending' : 'descending' }));

  const th = (k: SortKey, label: string, num?: boolean, narrow?: boolean) => {
    const active = sort.key === k;
    const words = label.split(' ');
    const lastWord = words.pop() ?? '';
    const head = words.join(' ');
    return (
      <th key={k} scope="col" aria-sort={active ? sort.dir : undefined} className={`${num ? 'cf-num' : ''}${narrow ? ' hide-narrow' : ''}`}>
        <button type="button" className="sort" onClick={() => toggle(k)}>
          {head ? `${head} ` : ''}
          {/* The arrow stays with the last word when the header wraps. */}
          <span className="cf-nowrap">
            {lastWord}
            <span className="cf-sort-icon" aria-hidden="true">
              {active ? (sort.dir === 'ascending' ? '▲' : '▼') : '↕'}
            </span>
          </span>
        </button>
      </th>
    );
  };

  const clear = () => {
    setQuery('');
    setStatus('');
    setOnlyAlerts(false);
  };

  return (
    <>
      <section className="cf-kpis four" aria-label={t('customers')}>
        <Kpi label={t('kpiCustomers')} value={f.number(all.length)} note={t(f.plural(counts.machines, 'kpiMachine', 'kpiMachines'), { n: f.number(counts.machines) })} tone="primary" />
        <Kpi label={t('kpiOk')} value={f.number(counts.ok)} note={t('kpiOkNote')} tone="ok" />
        <Kpi label={t('kpiLate')} value={f.number(counts.late)} note={t('kpiLateNote')} tone={counts.late > 0 ? 'warn' : undefined} />
        <Kpi label={t('kpiFailed')} value={f.number(counts.failed)} note={t('kpiFailedNote')} tone={counts.failed > 0 ? 'bad' : undefined} />
        <Kpi label={t('kpiNever')} value={f.number(counts.never)} note={t('kpiNeverNote')} tone={counts.never > 0 ? 'bad' : undefined} />
        <Kpi label={t('kpiNoSchedule')} value={f.number(counts.no_schedule)} note={t('kpiNoScheduleNote')} tone={counts.no_schedule > 0 ? 'warn' : undefined} />
        <Kpi label={t('kpiAlerts')} value={f.number(counts.alerts)} note={t('kpiAlertsNote')} tone={counts.alerts > 0 ? 'bad' : 'ok'} />
        <Kpi label={t('kpiProtected')} value={f.bytes(counts.protectedBytes)} note={t('kpiProtectedNote', { stored: f.bytes(counts.storedBytes) })} />
      </section>

      <h2 className="cf-sr">{t('customers')}</h2>
      <div className="cf-toolbar">
        <div className="cf-field grow">
          <label htmlFor={searchId}>{t('search')}</label>
          <input id={searchId} type="search" value={query} onChange={(e) => setQuery(e.target.value)} placeholder={t('searchPlaceholder')} autoComplete="off" />
        </div>
        <div className="cf-field">
          <label htmlFor={statusId}>{t('status')}</label>
          <select id={statusId} value={status} onChange={(e) => setStatus(e.target.value as '' | BackupStatus)}>
            <option value="">{t('all')}</option>
            <option value="ok">{t('ok')}</option>
            <option value="failed">{t('failed')}</option>
            <option value="late">{t('late')}</option>
            <option value="never">{t('never')}</option>
            <option value="no_schedule">{t('no_schedule')}</option>
          </select>
        </div>
        <div className="cf-check">
          <input id={alertsId} type="checkbox" checked={onlyAlerts} onChange={(e) => setOnlyAlerts(e.target.checked)} />
          <label htmlFor={alertsId}>{t('onlyAlerts')}</label>
        </div>
        <p className="cf-count" role="status">
          {t(f.plural(rows.length, 'shownOne', 'shown'), { n: f.number(rows.length), total: f.number(all.length) })}
        </p>
      </div>

      <div className="table-wrap">
        <table className="cf-table">
          <thead>
            <tr>
              {th('name', t('colName'))}
              {showParent && th('parent', t('colParent'), false, true)}
              {th('status', t('colStatus'))}
              {th('last', t('colLast'))}
              {th('machines', t('colMachines'), true, true)}
              {th('protected', t('colProtected'), true, true)}
              {th('stored', t('colStored'), true, true)}
              <th scope="col" className="hide-narrow">
                {t('colTier')}
              </th>
              {th('alerts', t('colAlerts'), true)}
            </tr>
          </thead>
          <tbody>
            {rows.length === 0 ? (
              <tr>
                <td colSpan={showParent ? 9 : 8} className="cf-empty">
                  <strong>{t('noMatch')}</strong>
                  <button type="button" className="link" onClick={clear}>
                    {t('clear')}
                  </button>
                </td>
              </tr>
            ) : (
              rows.map((c) => (
                <tr key={c.id}>
                  <td className="cf-col-name">
                    <span className="cf-name">
                      <Link to={`/clients/${encodeURIComponent(c.id)}`}>{c.name}</Link>
                    </span>
                    {c.orgStatus === 'suspended' && (
                      <>
                        {' '}
                        <span className="badge neutral">{t('suspended')}</span>
                      </>
                    )}
                  </td>
                  {showParent && <td className="hide-narrow">{c.parentName ?? '—'}</td>}
                  <td>
                    <StatusBadge status={c.backupStatus} />
                  </td>
                  <td>
                    {c.lastSuccessAt ? (
                      <When at={c.lastSuccessAt} />
                    ) : (
                      <span className="muted">
                        <span aria-hidden="true">—</span>
                        <span className="cf-sr">{t('never_short')}</span>
                      </span>
                    )}
                  </td>
                  <td className="cf-num hide-narrow">{f.number(c.machines)}</td>
                  <td className="cf-num hide-narrow">{f.bytes(c.protectedBytes)}</td>
                  <td className="cf-num hide-narrow">{f.bytes(c.storedBytes)}</td>
                  <td className="hide-narrow">
                    {c.tier ? (
                      <>
                        <span className="cf-nowrap">{c.tier.name}</span>
                        <span className={`cf-sub${c.protectedBytes > c.tier.limitBytes ? ' cf-over' : ''}`}>
                          {t('tierUse', { pct: f.number(Math.round((100 * c.protectedBytes) / c.tier.limitBytes)), limit: f.bytes(c.tier.limitBytes) })}
                        </span>
                      </>
                    ) : (
                      <span className="muted">{t('noTier')}</span>
                    )}
                  </td>
                  <td className="cf-num">
                    {c.openAlerts > 0 ? (
                      <Link to={`/clients/${encodeURIComponent(c.id)}#alertes`} className="badge bad" aria-label={t(f.plural(c.openAlerts, 'alertsLinkOne', 'alertsLink'), { n: f.number(c.openAlerts) })}>
                        {f.number(c.openAlerts)}
                      </Link>
                    ) : (
                      <span className="muted">
                        <span aria-hidden="true">0</span>
                        <span className="cf-sr">{t('alertsNone')}</span>
                      </span>
                    )}
                  </td>
                </tr>
              ))
            )}
          </tbody>
        </table>
      </div>
    </>
  );
}

function Kpi({ label, value, note, tone }: { label: string; value: string; note?: string; tone?: 'ok' | 'warn' | 'bad' | 'primary' }) {
  return (
    <div className={`cf-kpi${tone ? ` ${tone}` : ''}`}>
      <p className="label">{label}</p>
      <p className="value">{value}</p>
      {note && <p className="note">{note}</p>}
    </div>
  );
}
