import type { AuditEntryRecord, ChainVerdictRecord } from '@coffre/core/people-api';
import { Fragment, useEffect, useId, useMemo, useRef, useState, type FormEvent } from 'react';
import { api, downloadUrl } from '../api';
import { ErrorBox, Loading, useLoad } from '../components/Async';
import { defineMessages, useFormat, useLang, useT } from '../i18n/i18n';
import { useRoute } from '../router';
import { can, useMe } from '../session';
import { actionMessages, AUDIT_ACTIONS, AUDIT_PREFIXES, isKnownAction } from './AuditActions';
import './PeoplePage.css';
import './AuditPage.css';

const m = defineMessages({
  fr: {
    title: "Journal d'audit",
    intro: "Chaque action sur le service est enregistrée ici : connexions, gestion des personnes et des machines, accès aux sauvegardes. Les entrées sont chaînées par empreintes : toute modification ou suppression après coup est détectée. Consulter ce journal est aussi enregistré.",
    chain: 'Intégrité de la chaîne',
    chainChecking: 'Vérification de la chaîne…',
    chainOk: 'Chaîne vérifiée ({n} entrées)',
    chainOkDetail: "Aucune entrée n'a été modifiée, insérée ni supprimée. Dernière entrée vérifiée : n° {seq}.",
    chainBroken: "Chaîne rompue à l'entrée {seq}",
    chainBrokenDetail: '{n} entrées vérifiées avant le problème. Préservez une copie des données et prévenez le responsable de la sécurité.',
    'problem.hash-mismatch': "Le contenu de l'entrée ne correspond plus à son empreinte : elle a été modifiée après coup.",
    'problem.prev-hash-mismatch': "L'entrée ne suit pas la précédente : une entrée a été supprimée ou insérée.",
    'problem.seq-gap': 'Des numéros manquent : des entrées ont été supprimées.',
    'problem.seq-out-of-order': 'La numérotation des entrées est désordonnée.',
    'problem.head-missing': 'Les entrées les plus récentes ont disparu.',
    'problem.head-mismatch': "La tête de chaîne enregistrée ne correspond pas à la dernière entrée.",
    technical: 'Message technique : {message}',
    verifyAgain: 'Vérifier de nouveau',
    verifyOperatorOnly: "Vérification réservée à l'opérateur.",
    filters: 'Filtres',
    who: 'Qui',
    whoHint: 'E-mail, nom de machine ou identifiant (partie du texte).',
    action: 'Action',
    allActions: 'Toutes les actions',
    families: "Familles d'actions",
    precise: 'Actions précises',
    outcome: 'Résultat',
    allOutcomes: 'Tous',
    success: 'Réussite',
    failure: 'Échec',
    denied: 'Refusé',
    org: 'Organisation',
    allOrgs: 'Toutes',
    from: 'Du',
    to: 'Au',
    filter: 'Filtrer',
    clear: 'Effacer les filtres',
    badRange: 'La date « Au » doit être le même jour ou après la date « Du ».',
    exports: 'Exports',
    exportHelp: 'Toutes les entrées correspondant aux filtres appliqués, de la plus ancienne à la plus récente.',
    exportCsv: 'Exporter en CSV',
    exportJson: 'Exporter en JSON',
    entries: 'Entrées',
    pageInfo: 'Page {page} · {n} entrées, de la plus récente à la plus ancienne',
    pageInfoOne: 'Page {page} · 1 entrée',
    pageHelp: 'Le journal est lu page par page ({size} entrées) : utilisez « Plus ancien » pour remonter dans le temps.',
    empty: 'Aucune entrée ne correspond à ces filtres.',
    end: 'Début du journal atteint.',
    colTime: 'Date et heure',
    colWho: 'Qui',
    colAction: 'Action',
    colOrg: 'Organisation',
    colOutcome: 'Résultat',
    colDetails: 'Détails',
    details: 'Détails',
    entryN: "de l'entrée {seq}",
    'actor.user': 'Personne',
    'actor.machine': 'Machine',
    'actor.system': 'Système',
    'actor.cli': 'Ligne de commande',
    'actor.anonymous': 'Anonyme',
    seq: 'Entrée n°',
    exactTime: 'Horodatage exact (UTC)',
    actorType: "Type d'acteur",
    actorId: "Identifiant de l'acteur",
    target: 'Cible',
    ip: 'Adresse IP',
    userAgent: 'Navigateur ou logiciel',
    requestId: 'Identifiant de requête',
    hash: 'Empreinte',
    prevHash: 'Empreinte précédente',
    data: 'Données',
    none: '—',
    newer: 'Plus récent',
    older: 'Plus ancien',
    newest: 'Revenir aux plus récentes',
    loadingPage: 'Chargement de la page…',
  },
  en: {
    title: 'Audit trail',
    intro: 'Every action on the service is recorded here: sign-ins, management of people and machines, access to backups. Entries are chained by hashes: any later change or deletion is detected. Reading this trail is recorded too.',
    chain: 'Chain integrity',
    chainChecking: 'Checking the chain…',
    chainOk: 'Chain verified ({n} entries)',
    chainOkDetail: 'No entry has been changed, inserted or deleted. Last entry verified: #{seq}.',
    chainBroken: 'Chain broken at entry {seq}',
    chainBrokenDetail: '{n} entries verified before the problem. Keep a copy of the data and tell the security officer.',
    'problem.hash-mismatch': 'The content of the entry no longer matches its hash: it was changed afterwards.',
    'problem.prev-hash-mismatch': 'The entry does not follow the previous one: an entry was deleted or inserted.',
    'problem.seq-gap': 'Numbers are missing: entries were deleted.',
    'problem.seq-out-of-order': 'The entries are numbered out of order.',
    'problem.head-missing': 'The newest entries have disappeared.',
    'problem.head-mismatch': 'The recorded head of the chain does not match the last entry.',
    technical: 'Technical message: {message}',
    verifyAgain: 'Verify again',
    verifyOperatorOnly: 'Verification is for the operator.',
    filters: 'Filters',
    who: 'Who',
    whoHint: 'Email, machine name or identifier (part of the text).',
    action: 'Action',
    allActions: 'All actions',
    families: 'Families of actions',
    precise: 'Precise actions',
    outcome: 'Outcome',
    allOutcomes: 'All',
    success: 'Success',
    failure: 'Failure',
    denied: 'Denied',
    org: 'Organisation',
    allOrgs: 'All',
    from: 'From',
    to: 'To',
    filter: 'Filter',
    clear: 'Clear filters',
    badRange: 'The “To” date must be the same day as or after the “From” date.',
    exports: 'Exports',
    exportHelp: 'Every entry matching the applied filters, oldest first.',
    exportCsv: 'Export as CSV',
    exportJson: 'Export as JSON',
    entries: 'Entries',
    pageInfo: 'Page {page} · {n} entries, newest first',
    pageInfoOne: 'Page {page} · 1 entry',
    pageHelp: 'The trail is read page by page ({size} entries): use “Older” to go back in time.',
    empty: 'No entry matches these filters.',
    end: 'Beginning of the trail reached.',
    colTime: 'Date and time',
    colWho: 'Who',
    colAction: 'Action',
    colOrg: 'Organisation',
    colOutcome: 'Outcome',
    colDetails: 'Details',
    details: 'Details',
    entryN: 'of entry {seq}',
    'actor.user': 'Person',
    'actor.machine': 'Machine',
    'actor.system': 'System',
    'actor.cli': 'Command line',
    'actor.anonymous': 'Anonymous',
    seq: 'Entry #',
    exactTime: 'Exact time (UTC)',
    actorType: 'Actor type',
    actorId: 'Actor identifier',
    target: 'Target',
    ip: 'IP address',
    userAgent: 'Browser or software',
    requestId: 'Request identifier',
    hash: 'Hash',
    prevHash: 'Previous hash',
    data: 'Data',
    none: '—',
    newer: 'Newer',
    older: 'Older',
    newest: 'Back to the newest',
    loadingPage: 'Loading the page…',
  },
});

const PAGE_SIZE = 50;
const OUTCOMES = ['success', 'failure', 'denied'] as const;
type Outcome = (typeof OUTCOMES)[number];
const OUTCOME_TONE: Readonly<Record<Outcome, string>> = { success: 'ok', failure: 'warn', denied: 'bad' };
const ACTOR_TYPES = ['user', 'machine', 'system', 'cli', 'anonymous'] as const;
const PROBLEMS = ['hash-mismatch', 'prev-hash-mismatch', 'seq-gap', 'seq-out-of-order', 'head-missing', 'head-mismatch'] as const;

type Entry = AuditEntryRecord;

type Verdict = ChainVerdictRecord;

interface OrgLite {
  readonly id: string;
  readonly name: string;
  readonly type: 'operator' | 'reseller' | 'customer';
}

/** Filters as in the page's address (dates as YYYY-MM-DD in the display time zone). */
interface Filters {
  readonly actor: string;
  readonly action: string;
  readonly outcome: string;
  readonly orgId: string;
  readonly from: string;
  readonly to: string;
}
const FILTER_KEYS = ['actor', 'action', 'outcome', 'orgId', 'from', 'to'] as const;

function filtersOf(search: string): Filters {
  const q = new URLSearchParams(search);
  const get = (k: string) => q.get(k) ?? '';
  const outcome = get('outcome');
  const action = get('action');
  return {
    actor: get('actor').slice(0, 254),
    action: /^[a-z.-]{1,100}$/.test(action) ? action : '',
    outcome: (OUTCOMES as readonly string[]).includes(outcome) ? outcome : '',
    orgId: /^[0-9a-f-]{36}$/i.test(get('orgId')) ? get('orgId') : '',
    from: /^\d{4}-\d{2}-\d{2}$/.test(get('from')) ? get('from') : '',
    to: /^\d{4}-\d{2}-\d{2}$/.test(get('to')) ? get('to') : '',
  };
}

function searchOf(f: Filters): string {
  const q = new URLSearchParams();
  for (const k of FILTER_KEYS) if (f[k]) q.set(k, f[k]);
  return q.toString();
}

/** Milliseconds the time zone is ahead of UTC at instant t. */
function zoneOffset(t: number, timeZone: string): number {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  }).formatToParts(new Date(t));
  const n = (type: string) => Number(parts.find((p) => p.type === type)?.value ?? 0);
  return Date.UTC(n('year'), n('month') - 1, n('day'), n('hour'), n('minute'), n('second')) - Math.floor(t / 1000) * 1000;
}

/** Midnight at the start of a calendar day (YYYY-MM-DD, plus `addDays`) in a time zone, as ISO UTC. */
function startOfDayIso(day: string, timeZone: string, addDays = 0): string {
  const [y, mo, d] = day.split('-').map(Number) as [number, number, number];
  const wall = Date.UTC(y, mo - 1, d + addDays);
  let t = wall - zoneOffset(wall, timeZone);
  t = wall - zoneOffset(t, timeZone); // once more across a daylight-saving change
  return new Date(t).toISOString();
}

/** The API's query for the filters: Du = start of that day, Au = end of that day (exclusive bound: next midnight). */
function apiQuery(f: Filters, timeZone: string): URLSearchParams {
  const q = new URLSearchParams();
  if (f.actor.trim()) q.set('actor', f.actor.trim());
  if (f.action) q.set('action', f.action);
  if (f.outcome) q.set('outcome', f.outcome);
  if (f.orgId) q.set('orgId', f.orgId);
  if (f.from) q.set('since', startOfDayIso(f.from, timeZone));
  if (f.to) q.set('until', startOfDayIso(f.to, timeZone, 1));
  return q;
}

/** The audit trail: chain status, filters, exports, entries page by page (newest first). */
export function AuditPage() {
  const t = useT(m);
  const me = useMe();
  const { path, navigate } = useRoute();
  const { timeZone } = useLang();
  const search = path.includes('?') ? path.slice(path.indexOf('?') + 1) : '';
  const filters = useMemo(() => filtersOf(search), [search]);
  const key = searchOf(filters);
  const query = apiQuery(filters, timeZone).toString();
  const orgs = useLoad(() => api<{ orgs: OrgLite[] }>('GET', '/orgs').catch(() => ({ orgs: [] as OrgLite[] })), []);
  const orgList = orgs.data?.orgs ?? [];
  const mayVerify = can(me.role, 'audit:verify') && me.org?.type === 'operator';

  return (
    <>
      <h1>{t('title')}</h1>
      <p className="muted audit-intro">{t('intro')}</p>
      {mayVerify ? (
        <ChainStatus />
      ) : (
        <p className="muted">
          {t('verifyOperatorOnly')}
        </p>
      )}
      <FilterForm
        key={`filters:${key}`}
        initial={filters}
        orgs={orgList}
        onApply={(f) => {
          const s = searchOf(f);
          navigate(s ? `/journal?${s}` : '/journal');
        }}
      />
      <section className="card audit-exports" aria-labelledby="audit-exports">
        <h2 id="audit-exports">{t('exports')}</h2>
        <p className="muted">{t('exportHelp')}</p>
        <div className="actions">
          <a className="audit-button" href={downloadUrl(`/audit/export?format=csv${query ? `&${query}` : ''}`)} download>
            {t('exportCsv')}
          </a>
          <a className="audit-button" href={downloadUrl(`/audit/export?format=json${query ? `&${query}` : ''}`)} download>
            {t('exportJson')}
          </a>
        </div>
      </section>
      <Entries key={`entries:${query}`} query={query} orgs={orgList} />
    </>
  );
}

function ChainStatus() {
  const t = useT(m);
  const verdict = useLoad(() => api<Verdict>('GET', '/audit/verify'), []);
  const [checking, setChecking] = useState(false);
  useEffect(() => {
    if (verdict.data || verdict.error) setChecking(false);
  }, [verdict.data, verdict.error]);
  const again = () => {
    setChecking(true);
    verdict.reload();
  };
  const v = verdict.data;
  const problem = v?.firstBad && (PROBLEMS as readonly string[]).includes(v.firstBad.problem) ? t(`problem.${v.firstBad.problem as (typeof PROBLEMS)[number]}`) : null;
  return (
    <section className="card audit-chain" aria-labelledby="audit-chain">
      <div className="people-section-head">
        <h2 id="audit-chain">{t('chain')}</h2>
        {v && (
          <button type="button" className="secondary people-small" onClick={again} disabled={checking}>
            {t('verifyAgain')}
          </button>
        )}
      </div>
      <div data-testid="chain-status" role="status" aria-live="polite">
        {verdict.error ? (
          <ErrorBox error={verdict.error} onRetry={again} />
        ) : !v || checking ? (
          <p className="muted">{t('chainChecking')}</p>
        ) : v.ok ? (
          <div className="audit-verdict ok">
            <span className="audit-verdict-icon" aria-hidden="true">
              ✓
            </span>
            <div>
              <strong>{t('chainOk', { n: v.count })}</strong>
              <p>{t('chainOkDetail', { seq: v.lastSeq ?? 0 })}</p>
            </div>
          </div>
        ) : (
          <div className="audit-verdict bad">
            <span className="audit-verdict-icon" aria-hidden="true">
              ✕
            </span>
            <div>
              <strong>{t('chainBroken', { seq: v.firstBad?.seq ?? (v.lastSeq ?? 0) + 1 })}</strong>
              {problem && <p>{problem}</p>}
              <p>{t('chainBrokenDetail', { n: v.count })}</p>
              {v.firstBad?.message && <p className="mono audit-technical">{t('technical', { message: v.firstBad.message })}</p>}
            </div>
          </div>
        )}
      </div>
    </section>
  );
}

function FilterForm({ initial, orgs, onApply }: { initial: Filters; orgs: readonly OrgLite[]; onApply: (f: Filters) => void }) {
  const t = useT(m);
  const ta = useT(actionMessages);
  const [f, setF] = useState<Filters>(initial);
  const [badRange, setBadRange] = useState(false);
  const set = (k: keyof Filters) => (e: { target: { value: string } }) => setF((x) => ({ ...x, [k]: e.target.value }));
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (f.from && f.to && f.to < f.from) {
      setBadRange(true);
      return;
    }
    setBadRange(false);
    onApply({ ...f, actor: f.actor.trim() });
  };
  const knownAction = f.action === '' || isKnownAction(f.action) || (AUDIT_PREFIXES as readonly string[]).includes(f.action);
  const sortedOrgs = [...orgs].sort((a, b) => a.name.localeCompare(b.name, 'fr'));
  const active = FILTER_KEYS.some((k) => initial[k]);
  return (
    <section className="card" aria-labelledby="audit-filters">
      <h2 id="audit-filters">{t('filters')}</h2>
      <form onSubmit={submit} role="search" aria-labelledby="audit-filters">
        {badRange && (
          <div className="alert error" role="alert">
            {t('badRange')}
          </div>
        )}
        <div className="audit-filters">
          <div>
            <label htmlFor="audit-actor">{t('who')}</label>
            <input id="audit-actor" type="search" value={f.actor} onChange={set('actor')} maxLength={254} aria-describedby="audit-actor-hint" spellCheck={false} autoComplete="off" />
            <p className="hint" id="audit-actor-hint">
              {t('whoHint')}
            </p>
          </div>
          <div>
            <label htmlFor="audit-action">{t('action')}</label>
            <select id="audit-action" value={f.action} onChange={set('action')}>
              <option value="">{t('allActions')}</option>
              {!knownAction && <option value={f.action}>{f.action}</option>}
              <optgroup label={t('families')}>
                {AUDIT_PREFIXES.map((p) => (
                  <option key={p} value={p}>
                    {`${ta(p)} (${p}*)`}
                  </option>
                ))}
              </optgroup>
              <optgroup label={t('precise')}>
                {AUDIT_ACTIONS.map((a) => (
                  <option key={a} value={a}>
                    {ta(a)}
                  </option>
                ))}
              </optgroup>
            </select>
          </div>
          <div>
            <label htmlFor="audit-outcome">{t('outcome')}</label>
            <select id="audit-outcome" value={f.outcome} onChange={set('outcome')}>
              <option value="">{t('allOutcomes')}</option>
              {OUTCOMES.map((o) => (
                <option key={o} value={o}>
                  {t(o)}
                </option>
              ))}
            </select>
          </div>
          {sortedOrgs.length > 1 && (
            <div>
              <label htmlFor="audit-org">{t('org')}</label>
              <select id="audit-org" value={f.orgId} onChange={set('orgId')}>
                <option value="">{t('allOrgs')}</option>
                {sortedOrgs.map((o) => (
                  <option key={o.id} value={o.id}>
                    {o.name}
                  </option>
                ))}
              </select>
            </div>
          )}
          <div>
            <label htmlFor="audit-from">{t('from')}</label>
            <input id="audit-from" type="date" value={f.from} onChange={set('from')} max={f.to || undefined} />
          </div>
          <div>
            <label htmlFor="audit-to">{t('to')}</label>
            <input id="audit-to" type="date" value={f.to} onChange={set('to')} min={f.from || undefined} />
          </div>
        </div>
        <div className="actions">
          <button type="submit">{t('filter')}</button>
          {active && (
            <button type="button" className="secondary" onClick={() => onApply({ actor: '', action: '', outcome: '', orgId: '', from: '', to: '' })}>
              {t('clear')}
            </button>
          )}
        </div>
      </form>
    </section>
  );
}

function Entries({ query, orgs }: { query: string; orgs: readonly OrgLite[] }) {
  const t = useT(m);
  // Cursor stack: the `before` of each page seen, newest first (null = the newest page).
  const [cursors, setCursors] = useState<(number | null)[]>([null]);
  const before = cursors[cursors.length - 1] ?? null;
  const request = `${query}${before === null ? '' : `${query ? '&' : ''}before=${before}`}`;
  const page = useLoad(async () => {
    const q = `limit=${PAGE_SIZE}${request ? `&${request}` : ''}`;
    const r = await api<{ entries: Entry[]; nextBefore: number | null }>('GET', `/audit?${q}`);
    return { request, ...r };
  }, [request]);
  const [open, setOpen] = useState<ReadonlySet<number>>(new Set());
  const headingRef = useRef<HTMLHeadingElement>(null);
  const moved = useRef(false);
  const loading = !page.error && page.data?.request !== request;
  const data = page.data;
  useEffect(() => {
    if (moved.current && data && data.request === request) {
      moved.current = false;
      headingRef.current?.focus();
    }
  }, [data, request]);

  const go = (next: (number | null)[]) => {
    moved.current = true;
    setOpen(new Set());
    setCursors(next);
  };
  const orgName = useMemo(() => new Map(orgs.map((o) => [o.id, o.name])), [orgs]);
  const toggle = (seq: number) =>
    setOpen((s) => {
      const n = new Set(s);
      if (n.has(seq)) n.delete(seq);
      else n.add(seq);
      return n;
    });

  const pager = data && (
    <nav className="audit-pager" aria-label={t('entries')}>
      <button type="button" className="secondary" disabled={cursors.length <= 1 || loading} onClick={() => go(cursors.slice(0, -1))}>
        <span aria-hidden="true">← </span>
        {t('newer')}
      </button>
      <button type="button" className="secondary" disabled={data.nextBefore === null || loading} onClick={() => go([...cursors, data.nextBefore])}>
        {t('older')}
        <span aria-hidden="true"> →</span>
      </button>
      {cursors.length > 2 && (
        <button type="button" className="link" disabled={loading} onClick={() => go([null])}>
          {t('newest')}
        </button>
      )}
      {data.nextBefore === null && data.entries.length > 0 && <span className="muted">{t('end')}</span>}
    </nav>
  );

  return (
    <section className="card" aria-labelledby="audit-entries" aria-busy={loading}>
      <div className="people-section-head">
        <h2 id="audit-entries" ref={headingRef} tabIndex={-1}>
          {t('entries')}
        </h2>
        {data && <span className="muted">{data.entries.length === 1 ? t('pageInfoOne', { page: cursors.length }) : t('pageInfo', { page: cursors.length, n: data.entries.length })}</span>}
      </div>
      <p className="hint">{t('pageHelp', { size: PAGE_SIZE })}</p>
      {page.error ? <ErrorBox error={page.error} onRetry={page.reload} /> : null}
      {!data && !page.error && <Loading />}
      {data && loading && (
        <p className="muted" role="status">
          {t('loadingPage')}
        </p>
      )}
      {data && data.entries.length === 0 && !loading && <p className="muted">{t('empty')}</p>}
      {data && data.entries.length > 0 && (
        <>
          <div className={`table-wrap people-scroll${loading ? ' audit-stale' : ''}`}>
            <table className="audit-table">
              <thead>
                <tr>
                  <th scope="col">{t('colTime')}</th>
                  <th scope="col">{t('colWho')}</th>
                  <th scope="col">{t('colAction')}</th>
                  <th scope="col">{t('colOrg')}</th>
                  <th scope="col">{t('colOutcome')}</th>
                  <th scope="col">
                    <span className="cf-sr">{t('colDetails')}</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {data.entries.map((e) => (
                  <EntryRows key={e.seq} entry={e} orgName={e.orgId ? orgName.get(e.orgId) ?? null : null} open={open.has(e.seq)} onToggle={() => toggle(e.seq)} />
                ))}
              </tbody>
            </table>
          </div>
          {pager}
        </>
      )}
      {data && data.entries.length === 0 && cursors.length > 1 && pager}
    </section>
  );
}

function EntryRows({ entry: e, orgName, open, onToggle }: { entry: Entry; orgName: string | null; open: boolean; onToggle: () => void }) {
  const t = useT(m);
  const ta = useT(actionMessages);
  const f = useFormat();
  const { timeZone } = useLang();
  const panelId = useId();
  const timeFormat = useMemo(() => new Intl.DateTimeFormat(f.locale, { dateStyle: 'medium', timeStyle: 'medium', timeZone }), [f.locale, timeZone]);
  const actorType = (ACTOR_TYPES as readonly string[]).includes(e.actorType) ? t(`actor.${e.actorType as (typeof ACTOR_TYPES)[number]}`) : e.actorType;
  const label = isKnownAction(e.action) ? ta(e.action) : e.action;
  const outcome = (OUTCOMES as readonly string[]).includes(e.outcome) ? e.outcome : null;
  return (
    <>
      <tr className={open ? 'audit-open' : undefined}>
        <td className="people-nowrap">
          <time dateTime={e.time}>{timeFormat.format(new Date(e.time))}</time>
        </td>
        <td>
          <div className="audit-actor">{e.actorLabel ?? e.actorId ?? actorType}</div>
          <div className="muted audit-small">{actorType}</div>
        </td>
        <td>
          <div>{label}</div>
          <code className="muted audit-small">{e.action}</code>
        </td>
        <td>{orgName ?? (e.orgId ? <code className="audit-small">{e.orgId.slice(0, 8)}</code> : <span className="muted">{t('none')}</span>)}</td>
        <td>{outcome ? <span className={`badge ${OUTCOME_TONE[outcome]}`}>{t(outcome)}</span> : e.outcome}</td>
        <td>
          <button type="button" className="secondary people-small audit-toggle" aria-expanded={open} aria-controls={panelId} onClick={onToggle}>
            {t('details')}
            <span className="cf-sr"> {t('entryN', { seq: e.seq })}</span>
            <span className="audit-chevron" aria-hidden="true" />
          </button>
        </td>
      </tr>
      {open && (
        <tr className="audit-details-row">
          <td colSpan={6} id={panelId}>
            <div className="people-sticky">
            <dl className="people-dl audit-dl">
              <Item term={t('seq')} value={String(e.seq)} />
              <Item term={t('exactTime')} value={e.time} mono />
              <Item term={t('actorType')} value={actorType} />
              <Item term={t('actorId')} value={e.actorId} mono />
              <Item term={t('target')} value={e.target} mono />
              <Item term={t('ip')} value={e.ip} mono />
              <Item term={t('userAgent')} value={e.userAgent} />
              <Item term={t('requestId')} value={e.requestId} mono />
              <Item term={t('hash')} value={e.hash} mono />
              <Item term={t('prevHash')} value={e.prevHash} mono />
              <dt>{t('data')}</dt>
              <dd>{e.details ? <pre className="audit-json">{JSON.stringify(e.details, null, 2)}</pre> : <span className="muted">{t('none')}</span>}</dd>
            </dl>
            </div>
          </td>
        </tr>
      )}
    </>
  );
}

function Item({ term, value, mono }: { term: string; value: string | null; mono?: boolean }) {
  return (
    <Fragment>
      <dt>{term}</dt>
      <dd className={mono && value ? 'mono' : undefined}>{value ?? <span className="muted">—</span>}</dd>
    </Fragment>
  );
}
