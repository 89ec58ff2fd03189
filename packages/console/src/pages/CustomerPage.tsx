import { customerStatus, type AlertRecord, type CustomerMachineRecord, type OrgDetail, type RunRecord, type RunResult, type SnapshotSummary, type UsageResponse } from '@coffre/core/people-api';
import { When } from '../components/When';
import { useEffect, useId, useMemo, useRef, useState, type ReactNode } from 'react';
import { api, ApiFailure } from '../api';
import { Loaded, useLoad } from '../components/Async';
import { BarChart, LineChart, type Bar } from '../components/Charts';
import { CopyButton } from '../components/CopyButton';
import { Dialog } from '../components/Dialog';
import { isReauthCancelled, useReauth } from '../components/ReauthDialog';
import { daysBetween, lastDays, useTime } from '../components/time';
import { common } from '../i18n/common';
import { defineMessages, useLang, useT } from '../i18n/i18n';
import { Link } from '../router';
import { can, useMe } from '../session';
import { StatusBadge, type BackupStatus } from './DashboardPage';
import { SitesSection } from './SitesSection';
import '../components/console-ui.css';

/**
 * One customer: its machines (enrol, revoke, re-issue, last run), its backups (30-day
 * timeline per machine, size of each snapshot, history; duration and list of the runs the
 * agents report, failed ones included) and its volumes over time.
 */
const m = defineMessages({
  fr: {
    allCustomers: '← Tous les clients',
    refresh: 'Actualiser',
    since: 'Client depuis le {date}',
    orgActive: 'Actif',
    orgSuspended: 'Suspendu',
    notCustomer: "Cette organisation n'est pas un client : elle n'a ni machines ni sauvegardes.",
    kpiMachines: 'Machines actives',
    kpiRevoked: '{n} révoquée',
    kpiRevokedMany: '{n} révoquées',
    kpiLast: 'Dernière sauvegarde réussie',
    kpiNever: 'Jamais',
    kpiProtected: 'Volume protégé',
    kpiStored: 'Volume stocké',
    kpiSnapshot: '{n} sauvegarde conservée',
    kpiSnapshots: '{n} sauvegardes conservées',
    contacts: 'Contacts',
    alertEmail: 'Adresse des alertes',
    referent: 'Référent incidents',
    none: 'Non renseigné',
    machines: 'Machines',
    createToken: "Créer un jeton d'enrôlement",
    creating: 'Création…',
    enrollTitle: "Commande d'enrôlement",
    reissueTitle: 'Commande de réenrôlement de « {name} »',
    enrollHelp:
      "Lancez cette commande sur le poste à sauvegarder, dans une invite de commandes ouverte en administrateur. Ajoutez --machine NOM pour choisir le nom affiché ici (par défaut : le nom de l'ordinateur).",
    reissueHelp: "Lancez cette commande sur la machine « {name} » : elle y recevra un nouvel identifiant. L'ancien ne fonctionne déjà plus.",
    onceWarning: "Cette commande n'est affichée qu'une seule fois. Le jeton est à usage unique et expire le {date}.",
    copyCommand: 'Copier la commande',
    hide: 'Masquer',
    noMachines: 'Aucune machine enrôlée',
    noMachinesHelp: "Créez un jeton d'enrôlement, puis lancez la commande affichée sur le poste à sauvegarder.",
    noMachinesViewer: 'Les machines de ce client apparaîtront ici une fois enrôlées.',
    colMachine: 'Machine',
    colAgent: "Version de l'agent",
    colSeen: 'Dernier contact',
    colLast: 'Dernière sauvegarde réussie',
    colLastRun: 'Dernière exécution',
    lastRunPrefix: 'Dernière exécution\u00a0:',
    noRun: 'Aucune exécution signalée',
    colNext: 'Prochaine exécution prévue',
    colState: 'État',
    colActions: 'Actions',
    revoked: 'Révoquée',
    revokedOn: 'depuis le {date}',
    never: 'Jamais',
    noSchedule: 'Aucune sauvegarde planifiée',
    noRestoreTest: 'Aucun test de restauration',
    restoreProven: 'Restauration prouvée le {date} ({n} fichiers comparés)',
    restoreFailed: 'Test de restauration en échec le {date} ({n} écarts)',
    scheduleOf: 'Planification {name} : « {cron} » ({tz})',
    alerts: 'Alertes',
    alertsNone: 'Aucune alerte : les sauvegardes planifiées ont eu lieu.',
    alertsNoneClosed: 'Aucune alerte ouverte. Les alertes résolues restent listées ci-dessous.',
    alertsHelp: "L'observatoire compare chaque jour les planifications avec les sauvegardes reçues ; une alerte se ferme d'elle-même dès que tout est revenu à la normale.",
    colAlert: 'Alerte',
    colOpened: 'Ouverte le',
    colAlertState: 'Suivi',
    alertMissed: 'Sauvegarde manquée',
    alertFailed: 'Sauvegarde en échec',
    alertMissedDetail: "La sauvegarde prévue le {date} n'a pas eu lieu.",
    alertVerify: 'Contrôle d’intégrité en échec',
    alertVerifyDetail: "Une donnée stockée ne correspond plus à son empreinte (détecté le {date}) : l'exploitant intervient.",
    alertReplica: 'Copie de secours en retard',
    alertReplicaDetail: "La copie sur le second site n'est plus à jour depuis le {date} : l'exploitant intervient.",
    alertFailedDetail: 'La dernière exécution a échoué le {date}.',
    alertOpen: 'Ouverte',
    alertClosed: 'Résolue le {date}',
    revoke: 'Révoquer',
    reissue: 'Réémettre',
    revokeTitle: 'Révoquer « {name} » ?',
    revokeText:
      "L'agent de cette machine ne pourra plus envoyer de sauvegarde ni lire le dépôt. Les sauvegardes déjà faites restent conservées. Pour remettre la machine en service, il faudra la réenrôler.",
    revokeConfirm: 'Révoquer la machine',
    reissueTitle2: "Réémettre l'identifiant de « {name} » ?",
    reissueText:
      "L'identifiant actuel de la machine est révoqué immédiatement, et une commande à usage unique est créée pour lui en donner un nouveau (par exemple après une réinstallation ou une suspicion de compromission).",
    reissueConfirm: "Réémettre l'identifiant",
    revokedDone: 'La machine « {name} » est révoquée : son agent est désormais refusé.',
    reissuedDone: "L'identifiant de « {name} » est révoqué ; lancez la commande ci-dessous sur la machine.",
    backups: 'Sauvegardes',
    last30: '30 derniers jours',
    noSnapshots: "Aucune sauvegarde reçue pour l'instant.",
    noSnapshotsMachine: 'Aucune sauvegarde reçue de cette machine.',
    dayNone: 'Aucune sauvegarde',
    dayOne: '1 sauvegarde',
    dayMany: 'Plusieurs sauvegardes',
    dayTitle: '{day} : {n} sauvegarde',
    dayTitleMany: '{day} : {n} sauvegardes',
    today: "Aujourd'hui",
    timelineLabel: '{name} : sauvegardé {n} jour sur les 30 derniers ; dernière sauvegarde le {last}.',
    timelineLabelMany: '{name} : sauvegardé {n} jours sur les 30 derniers ; dernière sauvegarde le {last}.',
    timelineLabelNone: '{name} : aucune sauvegarde sur les 30 derniers jours.',
    machineFilter: 'Machine',
    allMachines: 'Toutes les machines',
    sizeTitle: 'Taille de chaque sauvegarde',
    sizeLabel: 'Diagramme en barres : taille de la seule sauvegarde ({scope}) : {last} le {date}.',
    sizeLabelMany: 'Diagramme en barres : taille des {n} dernières sauvegardes ({scope}), de {min} à {max} ; la plus récente : {last} le {date}.',
    history: 'Historique',
    colDate: 'Date',
    colSize: 'Taille',
    colChunks: 'Blocs',
    colId: 'Identifiant',
    showMore: 'Afficher {n} de plus',
    shownOf: '{n} sur {total}',
    runSuccess: 'Réussie',
    runPartial: 'Partielle',
    runFailed: 'Échec',
    durationTitle: 'Durée de chaque sauvegarde',
    durationLabel: 'Diagramme en barres : durée de la seule exécution ({scope}) : {last} le {date}, {result}.',
    durationLabelMany: 'Diagramme en barres : durée des {n} dernières exécutions ({scope}), de {min} à {max} ; la plus récente : {last} le {date}, {result}.',
    durationFailedNone: 'Aucune en échec.',
    durationFailedOne: '{n} en échec, barre en rouge.',
    durationFailedMany: '{n} en échec, barres en rouge.',
    legendRunOk: 'Réussie ou partielle',
    legendRunFailed: 'Échec',
    runs: 'Exécutions',
    runsNone: "Aucune exécution signalée pour l'instant. Les agents rendent compte de chaque exécution (réussie ou non, avec sa durée) à partir de cette version ; les plus anciens n'envoient que leurs sauvegardes.",
    runsNoneMachine: "Aucune exécution signalée pour cette machine.",
    colResult: 'Résultat',
    colDuration: 'Durée',
    colFiles: 'Fichiers',
    colBytes: 'Données traitées',
    colWarnings: 'Avertissements',
    errorCode: "Code d'erreur :",
    volumes: 'Volumes',
    protectedNow: 'Protégé',
    storedNow: 'Stocké',
    ratio: 'Stocké / protégé',
    seriesProtected: 'Volume protégé',
    seriesStored: 'Volume stocké',
    volumeLabel: 'Courbe : volume protégé et volume stocké par jour, du {from} au {to} ; au {to}, protégé {protected}, stocké {stored}.',
    noVolumes: 'Les volumes apparaîtront après la première sauvegarde.',
    volumesHelp: 'Protégé : taille des données de la dernière sauvegarde de chaque machine. Stocké : espace occupé chez nous, chiffré, après déduplication et compression.',
  },
  en: {
    allCustomers: '← All customers',
    refresh: 'Refresh',
    since: 'Customer since {date}',
    orgActive: 'Active',
    orgSuspended: 'Suspended',
    notCustomer: 'This organisation is not a customer: it has no machines or backups.',
    kpiMachines: 'Active machines',
    kpiRevoked: '{n} revoked',
    kpiRevokedMany: '{n} revoked',
    kpiLast: 'Last successful backup',
    kpiNever: 'Never',
    kpiProtected: 'Protected volume',
    kpiStored: 'Stored volume',
    kpiSnapshot: '{n} backup kept',
    kpiSnapshots: '{n} backups kept',
    contacts: 'Contacts',
    alertEmail: 'Alert address',
    referent: 'Incident referent',
    none: 'Not set',
    machines: 'Machines',
    createToken: 'Create an enrollment token',
    creating: 'Creating…',
    enrollTitle: 'Enrollment command',
    reissueTitle: 'Re-enrollment command for "{name}"',
    enrollHelp:
      'Run this command on the computer to back up, in a command prompt opened as administrator. Add --machine NAME to choose the name shown here (default: the computer name).',
    reissueHelp: 'Run this command on the machine "{name}": it will receive a new credential there. The old one already no longer works.',
    onceWarning: 'This command is shown only once. The token works once and expires on {date}.',
    copyCommand: 'Copy the command',
    hide: 'Hide',
    noMachines: 'No machine enrolled',
    noMachinesHelp: 'Create an enrollment token, then run the command shown on the computer to back up.',
    noMachinesViewer: "This customer's machines will appear here once enrolled.",
    colMachine: 'Machine',
    colAgent: 'Agent version',
    colSeen: 'Last contact',
    colLast: 'Last successful backup',
    colLastRun: 'Last run',
    lastRunPrefix: 'Last run:',
    noRun: 'No run reported',
    colNext: 'Next expected run',
    colState: 'State',
    colActions: 'Actions',
    revoked: 'Revoked',
    revokedOn: 'since {date}',
    never: 'Never',
    noSchedule: 'No scheduled backup',
    noRestoreTest: 'No restore test yet',
    restoreProven: 'Restore proven on {date} ({n} files compared)',
    restoreFailed: 'Restore test failed on {date} ({n} mismatches)',
    scheduleOf: 'Schedule {name}: "{cron}" ({tz})',
    alerts: 'Alerts',
    alertsNone: 'No alerts: the scheduled backups took place.',
    alertsNoneClosed: 'No open alert. Resolved alerts stay listed below.',
    alertsHelp: 'Every day the observatory compares the schedules with the backups received; an alert closes by itself once things are back to normal.',
    colAlert: 'Alert',
    colOpened: 'Opened',
    colAlertState: 'Follow-up',
    alertMissed: 'Missed backup',
    alertFailed: 'Failed backup',
    alertMissedDetail: 'The backup scheduled for {date} did not take place.',
    alertVerify: 'Integrity check failed',
    alertVerifyDetail: 'Stored data no longer matches its checksum (found on {date}): the operator is on it.',
    alertReplica: 'Second-site copy behind',
    alertReplicaDetail: 'The copy on the second site has not been up to date since {date}: the operator is on it.',
    alertFailedDetail: 'The latest run failed on {date}.',
    alertOpen: 'Open',
    alertClosed: 'Resolved on {date}',
    revoke: 'Revoke',
    reissue: 'Re-issue',
    revokeTitle: 'Revoke "{name}"?',
    revokeText:
      "This machine's agent will no longer be able to send backups or read the repository. Existing backups are kept. To put the machine back in service, it will have to be enrolled again.",
    revokeConfirm: 'Revoke the machine',
    reissueTitle2: 'Re-issue the credential of "{name}"?',
    reissueText:
      "The machine's current credential is revoked at once, and a one-time command is created to give it a new one (for example after a reinstall or a suspected compromise).",
    reissueConfirm: 'Re-issue the credential',
    revokedDone: 'The machine "{name}" is revoked: its agent is now refused.',
    reissuedDone: 'The credential of "{name}" is revoked; run the command below on the machine.',
    backups: 'Backups',
    last30: 'Last 30 days',
    noSnapshots: 'No backup received yet.',
    noSnapshotsMachine: 'No backup received from this machine.',
    dayNone: 'No backup',
    dayOne: '1 backup',
    dayMany: 'Several backups',
    dayTitle: '{day}: {n} backup',
    dayTitleMany: '{day}: {n} backups',
    today: 'Today',
    timelineLabel: '{name}: backed up on {n} of the last 30 days; last backup on {last}.',
    timelineLabelMany: '{name}: backed up on {n} of the last 30 days; last backup on {last}.',
    timelineLabelNone: '{name}: no backup in the last 30 days.',
    machineFilter: 'Machine',
    allMachines: 'All machines',
    sizeTitle: 'Size of each backup',
    sizeLabel: 'Bar chart: size of the only backup ({scope}): {last} on {date}.',
    sizeLabelMany: 'Bar chart: size of the last {n} backups ({scope}), from {min} to {max}; the newest: {last} on {date}.',
    history: 'History',
    colDate: 'Date',
    colSize: 'Size',
    colChunks: 'Chunks',
    colId: 'Identifier',
    showMore: 'Show {n} more',
    shownOf: '{n} of {total}',
    runSuccess: 'Succeeded',
    runPartial: 'Partial',
    runFailed: 'Failed',
    durationTitle: 'Duration of each backup',
    durationLabel: 'Bar chart: duration of the only run ({scope}): {last} on {date}, {result}.',
    durationLabelMany: 'Bar chart: duration of the last {n} runs ({scope}), from {min} to {max}; the newest: {last} on {date}, {result}.',
    durationFailedNone: 'None failed.',
    durationFailedOne: '{n} failed, its bar in red.',
    durationFailedMany: '{n} failed, their bars in red.',
    legendRunOk: 'Succeeded or partial',
    legendRunFailed: 'Failed',
    runs: 'Runs',
    runsNone: 'No run reported yet. Agents report each run (successful or not, with its duration) from this version on; older ones only send their backups.',
    runsNoneMachine: 'No run reported for this machine.',
    colResult: 'Result',
    colDuration: 'Duration',
    colFiles: 'Files',
    colBytes: 'Data processed',
    colWarnings: 'Warnings',
    errorCode: 'Error code:',
    volumes: 'Volumes',
    protectedNow: 'Protected',
    storedNow: 'Stored',
    ratio: 'Stored / protected',
    seriesProtected: 'Protected volume',
    seriesStored: 'Stored volume',
    volumeLabel: 'Line chart: protected and stored volume per day, from {from} to {to}; on {to}, protected {protected}, stored {stored}.',
    noVolumes: 'Volumes will appear after the first backup.',
    volumesHelp: "Protected: data size of each machine's latest backup. Stored: space used on our side, encrypted, after deduplication and compression.",
  },
});

type Org = OrgDetail;

type Machine = CustomerMachineRecord;

type Snapshot = SnapshotSummary;


/** One backup run as reported by the agent (successful or not), newest first. */
type Run = RunRecord;

type Usage = UsageResponse;

interface CustomerData {
  readonly org: Org;
  readonly machines: readonly Machine[];
  readonly snapshots: readonly Snapshot[];
  readonly runs: readonly Run[];
  readonly usage: Usage;
  readonly alerts: readonly AlertRecord[];
}

interface Issued {
  readonly kind: 'enroll' | 'reissue';
  readonly machineName?: string;
  readonly command: string;
  readonly expiresAt: string;
}

/** Each machine's newest reported run (the list comes newest first). */
function latestRunByMachine(runs: readonly Run[]): ReadonlyMap<string, Run> {
  const map = new Map<string, Run>();
  for (const r of runs) if (!map.has(r.machineId)) map.set(r.machineId, r);
  return map;
}

const RUN_TONE: Readonly<Record<RunResult, string>> = { success: 'ok', partial: 'warn', failed: 'bad' };
const RUN_LABEL: Readonly<Record<RunResult, 'runSuccess' | 'runPartial' | 'runFailed'>> = { success: 'runSuccess', partial: 'runPartial', failed: 'runFailed' };

function RunBadge({ result }: { result: RunResult }) {
  const t = useT(m);
  return <span className={`badge ${RUN_TONE[result]}`}>{t(RUN_LABEL[result])}</span>;
}

/** A duration in the same units in French and English: "120 ms", "8,5 s", "42 s", "5 min 30 s", "1 h 5 min". */
function useDuration(): (ms: number) => string {
  const f = useTime();
  return useMemo(() => {
    const whole = new Intl.NumberFormat(f.locale, { maximumFractionDigits: 0 });
    const tenth = new Intl.NumberFormat(f.locale, { maximumFractionDigits: 1 });
    return (ms: number) => {
      if (ms < 999.5) return `${whole.format(Math.max(0, ms))} ms`;
      if (ms < 9_950) return `${tenth.format(ms / 1000)} s`;
      const s = Math.round(ms / 1000);
      if (s < 3600) {
        const min = Math.floor(s / 60);
        const sec = s % 60;
        return min === 0 ? `${whole.format(sec)} s` : sec === 0 ? `${whole.format(min)} min` : `${whole.format(min)} min ${whole.format(sec)} s`;
      }
      const totalMin = Math.round(s / 60);
      const h = Math.floor(totalMin / 60);
      const min = totalMin % 60;
      return min === 0 ? `${whole.format(h)} h` : `${whole.format(h)} h ${whole.format(min)} min`;
    };
  }, [f.locale]);
}

export function CustomerPage({ orgId }: { orgId: string }) {
  const t = useT(m);
  const id = encodeURIComponent(orgId);
  const state = useLoad(async (): Promise<CustomerData> => {
    const [org, machines, snapshots, runs, usage, alerts] = await Promise.all([
      api<Org>('GET', `/orgs/${id}`),
      api<{ machines: Machine[] }>('GET', `/orgs/${id}/machines`),
      api<{ snapshots: Snapshot[] }>('GET', `/orgs/${id}/snapshots`),
      api<{ runs: Run[] }>('GET', `/orgs/${id}/runs`),
      api<Usage>('GET', `/orgs/${id}/usage`),
      api<{ alerts: AlertRecord[] }>('GET', `/orgs/${id}/alerts?state=all`),
    ]);
    return { org, machines: machines.machines, snapshots: snapshots.snapshots, runs: runs.runs, usage, alerts: alerts.alerts };
  }, [id]);
  return (
    <>
      <Link to="/" className="cf-back">
        {t('allCustomers')}
      </Link>
      <Loaded state={state}>{(d) => <CustomerBody data={d} reload={state.reload} />}</Loaded>
    </>
  );
}

function CustomerBody({ data, reload }: { data: CustomerData; reload: () => void }) {
  const t = useT(m);
  const f = useTime();
  const { org, machines, snapshots, runs } = data;
  const active = machines.filter((x) => !x.revoked);
  const last = snapshots[0]?.time ?? null;
  const latestRuns = useMemo(() => latestRunByMachine(runs), [runs]);
  // The dashboard's rule: the worst status of the customer's active machines (each server-computed).
  const status: BackupStatus = customerStatus(machines);
  // Coming from the dashboard's alert count: bring the alerts into view once loaded.
  useEffect(() => {
    if (window.location.hash === '#alertes') document.getElementById('alertes')?.scrollIntoView();
  }, []);
  const protectedNow = data.usage.protected.at(-1)?.bytes ?? 0;
  const storedNow = data.usage.stored.at(-1)?.bytes ?? 0;
  return (
    <>
      <div className="cf-page-head">
        <div>
          <h1>{org.name}</h1>
          <p className="cf-meta">
            {org.type === 'customer' && <StatusBadge status={status} />}
            <span className={`badge ${org.status === 'suspended' ? 'neutral' : 'ok'}`}>{org.status === 'suspended' ? t('orgSuspended') : t('orgActive')}</span>
            <span>{t('since', { date: f.date(org.createdAt) })}</span>
          </p>
        </div>
        <button type="button" className="secondary" onClick={reload}>
          {t('refresh')}
        </button>
      </div>

      {org.type !== 'customer' ? (
        <div className="alert info">{t('notCustomer')}</div>
      ) : (
        <>
          <div className="cf-kpis">
            <div className="cf-kpi primary">
              <p className="label">{t('kpiMachines')}</p>
              <p className="value">{f.number(active.length)}</p>
              {machines.length > active.length && <p className="note">{t(f.plural(machines.length - active.length, 'kpiRevoked', 'kpiRevokedMany'), { n: f.number(machines.length - active.length) })}</p>}
            </div>
            <div className={`cf-kpi ${status === 'ok' ? 'ok' : status === 'late' || status === 'no_schedule' ? 'warn' : 'bad'}`}>
              <p className="label">{t('kpiLast')}</p>
              <p className="value">{last ? f.relative(last) : t('kpiNever')}</p>
              {last && <p className="note">{f.dateTime(last)}</p>}
            </div>
            <div className="cf-kpi">
              <p className="label">{t('kpiProtected')}</p>
              <p className="value">{f.bytes(protectedNow)}</p>
              <p className="note">{t(f.plural(snapshots.length, 'kpiSnapshot', 'kpiSnapshots'), { n: f.number(snapshots.length) })}</p>
            </div>
            <div className="cf-kpi">
              <p className="label">{t('kpiStored')}</p>
              <p className="value">{f.bytes(storedNow)}</p>
            </div>
          </div>
          <Contacts org={org} />
          {org.sites && <SitesSection sites={org.sites} />}
          <AlertsSection alerts={data.alerts} />
          <MachinesSection org={org} machines={machines} snapshots={snapshots} latestRuns={latestRuns} reload={reload} />
          <BackupsSection machines={machines} snapshots={snapshots} runs={runs} />
          <VolumesSection usage={data.usage} />
        </>
      )}
    </>
  );
}

function Contacts({ org }: { org: Org }) {
  const t = useT(m);
  const r = org.incidentReferent;
  const referent = [r.name, r.email, r.phone].filter((x): x is string => !!x);
  return (
    <section className="card cf-card" aria-labelledby="cf-contacts">
      <h2 id="cf-contacts">{t('contacts')}</h2>
      <dl className="cf-dl">
        <dt>{t('alertEmail')}</dt>
        <dd>{org.alertEmail ? <a href={`mailto:${org.alertEmail}`}>{org.alertEmail}</a> : <span className="muted">{t('none')}</span>}</dd>
        <dt>{t('referent')}</dt>
        <dd>{referent.length > 0 ? referent.join(' · ') : <span className="muted">{t('none')}</span>}</dd>
      </dl>
    </section>
  );
}

// ---------------------------------------------------------------- alerts

const ALERT_LABEL = { backup_missed: 'alertMissed', backup_failed: 'alertFailed', verify_mismatch: 'alertVerify', replica_lag: 'alertReplica' } as const;
const ALERT_DETAIL = { backup_missed: 'alertMissedDetail', backup_failed: 'alertFailedDetail', verify_mismatch: 'alertVerifyDetail', replica_lag: 'alertReplicaDetail' } as const;

/** The observatory's alerts: open ones first (red), then the resolved ones, newest first. */
function AlertsSection({ alerts }: { alerts: readonly AlertRecord[] }) {
  const t = useT(m);
  const f = useTime();
  const open = alerts.filter((a) => a.closedAt === null);
  const shown = alerts.slice(0, Math.max(open.length, 10));
  return (
    <section className="card cf-card" aria-labelledby="alertes" data-testid="alerts">
      <h2 id="alertes" tabIndex={-1}>
        {t('alerts')} {open.length > 0 && <span className="badge bad">{f.number(open.length)}</span>}
      </h2>
      <p className="cf-meta">{t('alertsHelp')}</p>
      {open.length === 0 && <p className="alert success">{alerts.length === 0 ? t('alertsNone') : t('alertsNoneClosed')}</p>}
      {shown.length > 0 && (
        <div className="table-wrap">
          <table className="cf-table">
            <thead>
              <tr>
                <th scope="col">{t('colAlert')}</th>
                <th scope="col">{t('colMachine')}</th>
                <th scope="col" className="hide-narrow">
                  {t('colOpened')}
                </th>
                <th scope="col">{t('colAlertState')}</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((a) => (
                <tr key={a.id}>
                  <td>
                    <span className={`badge ${a.closedAt ? 'neutral' : 'bad'}`}>{t(ALERT_LABEL[a.kind])}</span>
                    {a.since && <span className="cf-sub">{t(ALERT_DETAIL[a.kind], { date: f.dateTime(a.since) })}</span>}
                    {a.errorCode && (
                      <span className="cf-sub">
                        {t('errorCode')} <code>{a.errorCode}</code>
                      </span>
                    )}
                  </td>
                  <td>{a.machineName ?? '—'}</td>
                  <td className="hide-narrow">
                    <When at={a.openedAt} />
                  </td>
                  <td>{a.closedAt ? <span className="muted">{t('alertClosed', { date: f.dateTime(a.closedAt) })}</span> : <span className="badge bad">{t('alertOpen')}</span>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

// ---------------------------------------------------------------- machines

function MachinesSection({
  org,
  machines,
  snapshots,
  latestRuns,
  reload,
}: {
  org: Org;
  machines: readonly Machine[];
  snapshots: readonly Snapshot[];
  latestRuns: ReadonlyMap<string, Run>;
  reload: () => void;
}) {
  const t = useT(m);
  const tc = useT(common);
  const f = useTime();
  const { lang } = useLang();
  const me = useMe();
  const { withReauth, dialog } = useReauth();
  const mayEnroll = can(me.role, 'machines:enroll');
  const mayRevoke = can(me.role, 'machines:revoke');
  const [issued, setIssued] = useState<Issued | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [confirm, setConfirm] = useState<{ kind: 'revoke' | 'reissue'; machine: Machine } | null>(null);
  const commandHeading = useRef<HTMLHeadingElement>(null);
  const doneRef = useRef<HTMLDivElement>(null);
  const confirmTextId = useId();

  const lastByMachine = useMemo(() => {
    const map = new Map<string, string>();
    for (const s of snapshots) if (!map.has(s.machineId)) map.set(s.machineId, s.time); // newest first
    return map;
  }, [snapshots]);

  const sorted = useMemo(() => {
    const coll = new Intl.Collator(f.locale, { sensitivity: 'base', numeric: true });
    return [...machines].sort((a, b) => Number(a.revoked) - Number(b.revoked) || coll.compare(a.name, b.name));
  }, [machines, f.locale]);

  const failed = (e: unknown) => {
    if (isReauthCancelled(e)) return;
    setError(e instanceof ApiFailure ? e.text(lang) : tc('error'));
  };

  const showIssued = (i: Issued) => {
    setIssued(i);
    setTimeout(() => commandHeading.current?.focus(), 0);
  };

  const createToken = async () => {
    setBusy('token');
    setError(null);
    setDone(null);
    try {
      const r = await withReauth(() => api<{ command: string; expiresAt: string }>('POST', `/orgs/${encodeURIComponent(org.id)}/enroll-tokens`, {}));
      showIssued({ kind: 'enroll', command: r.command, expiresAt: r.expiresAt });
    } catch (e) {
      failed(e);
    } finally {
      setBusy(null);
    }
  };

  const act = async (kind: 'revoke' | 'reissue', machine: Machine) => {
    setConfirm(null);
    setBusy(machine.id);
    setError(null);
    setDone(null);
    try {
      if (kind === 'revoke') {
        await withReauth(() => api('POST', `/machines/${encodeURIComponent(machine.id)}/revoke`));
        setDone(t('revokedDone', { name: machine.name }));
      } else {
        const r = await withReauth(() => api<{ command: string; expiresAt: string }>('POST', `/machines/${encodeURIComponent(machine.id)}/reissue`, {}));
        showIssued({ kind: 'reissue', machineName: machine.name, command: r.command, expiresAt: r.expiresAt });
        setDone(t('reissuedDone', { name: machine.name }));
      }
      reload();
      if (kind === 'revoke') setTimeout(() => doneRef.current?.focus(), 0);
    } catch (e) {
      failed(e);
    } finally {
      setBusy(null);
    }
  };

  const actions = (x: Machine, nameId: string) => (
    <>
      {!x.revoked && (
        <button
          type="button"
          className="danger cf-small-btn"
          aria-describedby={nameId}
          disabled={busy !== null}
          onClick={() => setConfirm({ kind: 'revoke', machine: x })}
        >
          {t('revoke')}
        </button>
      )}
      <button
        type="button"
        className="secondary cf-small-btn"
        aria-describedby={nameId}
        disabled={busy !== null}
        onClick={() => setConfirm({ kind: 'reissue', machine: x })}
      >
        {t('reissue')}
      </button>
    </>
  );

  return (
    <section className="cf-section" aria-labelledby="cf-machines">
      <div className="cf-section-head">
        <h2 id="cf-machines">{t('machines')}</h2>
        {mayEnroll && (
          <button type="button" onClick={() => void createToken()} disabled={busy !== null}>
            {busy === 'token' ? t('creating') : t('createToken')}
          </button>
        )}
      </div>

      {error && (
        <div className="alert error" role="alert">
          {error}
        </div>
      )}
      <div ref={doneRef} tabIndex={-1} role="status" className={done ? 'alert success' : undefined}>
        {done ?? ''}
      </div>

      {issued && (
        <div className="cf-command">
          <h3 ref={commandHeading} tabIndex={-1}>
            {issued.kind === 'enroll' ? t('enrollTitle') : t('reissueTitle', { name: issued.machineName ?? '' })}
          </h3>
          <p>{issued.kind === 'enroll' ? t('enrollHelp') : t('reissueHelp', { name: issued.machineName ?? '' })}</p>
          <pre className="command" data-testid="enroll-command">
            {issued.command}
          </pre>
          <p>
            <strong>{t('onceWarning', { date: f.dateTime(issued.expiresAt) })}</strong>
          </p>
          <div className="actions">
            <CopyButton text={issued.command} label={t('copyCommand')} className="" />
            <button type="button" className="secondary" onClick={() => setIssued(null)}>
              {t('hide')}
            </button>
          </div>
        </div>
      )}

      {machines.length === 0 ? (
        <div className="card cf-empty">
          <strong>{t('noMachines')}</strong>
          {mayEnroll ? t('noMachinesHelp') : t('noMachinesViewer')}
        </div>
      ) : (
        <>
          <div className="table-wrap">
            <table className="cf-table">
              <thead>
                <tr>
                  <th scope="col">{t('colMachine')}</th>
                  <th scope="col" className="hide-narrow">
                    {t('colAgent')}
                  </th>
                  <th scope="col" className="hide-narrow">
                    {t('colSeen')}
                  </th>
                  <th scope="col">{t('colLast')}</th>
                  <th scope="col" className="hide-narrow">
                    {t('colLastRun')}
                  </th>
                  <th scope="col" className="hide-narrow">
                    {t('colNext')}
                  </th>
                  <th scope="col">{t('colState')}</th>
                  {mayRevoke && (
                    <th scope="col" className="hide-narrow">
                      <span className="cf-sr">{t('colActions')}</span>
                    </th>
                  )}
                </tr>
              </thead>
              <tbody>
                {sorted.map((x) => {
                  const lastOk = lastByMachine.get(x.id) ?? null;
                  const lastRun = latestRuns.get(x.id);
                  const nameId = `cf-machine-${x.id}`;
                  return (
                    <tr key={x.id} className={x.revoked ? 'cf-row-revoked' : undefined}>
                      <td>
                        <span className="cf-name" id={nameId}>
                          {x.name}
                        </span>
                        {(x.hostname || x.os) && <span className="cf-sub">{[x.hostname !== x.name ? x.hostname : null, x.os].filter(Boolean).join(' · ')}</span>}
                        {/* On a phone the last-run column is hidden: its content comes under the name. */}
                        <span className="cf-sub cf-only-narrow">
                          {t('lastRunPrefix')}{' '}
                          {lastRun ? (
                            <>
                              <RunBadge result={lastRun.result} /> {f.relative(lastRun.finishedAt)}
                            </>
                          ) : (
                            t('noRun').toLowerCase()
                          )}
                        </span>
                        {mayRevoke && <div className="cf-row-actions cf-show-narrow">{actions(x, nameId)}</div>}
                      </td>
                      <td className="hide-narrow cf-mono cf-small">{x.agentVersion ?? '—'}</td>
                      <td className="hide-narrow">
                        {x.lastSeenAt ? (
                          <When at={x.lastSeenAt} exactOnNarrow />
                        ) : (
                          <span className="muted">{t('never')}</span>
                        )}
                      </td>
                      <td>
                        {lastOk ? (
                          <When at={lastOk} />
                        ) : (
                          <span className="muted">{t('never')}</span>
                        )}
                        <span className="cf-sub" data-testid="restore-test">
                          {x.lastRestoreTest === null
                            ? t('noRestoreTest')
                            : x.lastRestoreTest.result === 'success'
                              ? t('restoreProven', { date: f.date(x.lastRestoreTest.finishedAt), n: f.number(x.lastRestoreTest.comparedFiles) })
                              : t('restoreFailed', { date: f.date(x.lastRestoreTest.finishedAt), n: f.number(x.lastRestoreTest.mismatches) })}
                        </span>
                      </td>
                      <td className="hide-narrow">
                        {lastRun ? (
                          <>
                            <RunBadge result={lastRun.result} /> <When at={lastRun.finishedAt} />
                          </>
                        ) : (
                          <span className="muted">
                            <span aria-hidden="true">—</span>
                            <span className="cf-sr">{t('noRun')}</span>
                          </span>
                        )}
                      </td>
                      <td className="hide-narrow">
                        {x.revoked ? (
                          <span className="muted">—</span>
                        ) : x.nextExpectedAt ? (
                          <>
                            <When at={x.nextExpectedAt} />
                            {x.jobs.map((j) => (
                              <span key={j.name} className="cf-sub cf-mono cf-small">
                                {t('scheduleOf', { name: j.name, cron: j.schedule, tz: j.timezone })}
                              </span>
                            ))}
                          </>
                        ) : (
                          <span className="muted">{t('noSchedule')}</span>
                        )}
                      </td>
                      <td>
                        {x.revoked ? <span className="badge bad">{t('revoked')}</span> : <StatusBadge status={x.status} />}
                        {x.revoked && x.revokedAt && <span className="cf-sub cf-nowrap hide-narrow">{t('revokedOn', { date: f.date(x.revokedAt) })}</span>}
                      </td>
                      {mayRevoke && (
                        <td className="hide-narrow">
                          <div className="cf-row-actions">
                            {actions(x, nameId)}
                          </div>
                        </td>
                      )}
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        </>
      )}

      {confirm && (
        <Dialog
          title={confirm.kind === 'revoke' ? t('revokeTitle', { name: confirm.machine.name }) : t('reissueTitle2', { name: confirm.machine.name })}
          tone={confirm.kind === 'revoke' ? 'danger' : undefined}
          onClose={() => setConfirm(null)}
          describedBy={confirmTextId}
        >
          <p id={confirmTextId}>{confirm.kind === 'revoke' ? t('revokeText') : t('reissueText')}</p>
          <div className="actions">
            <button type="button" className="secondary" onClick={() => setConfirm(null)} data-autofocus>
              {tc('cancel')}
            </button>
            <button type="button" className={confirm.kind === 'revoke' ? 'danger' : undefined} onClick={() => void act(confirm.kind, confirm.machine)}>
              {confirm.kind === 'revoke' ? t('revokeConfirm') : t('reissueConfirm')}
            </button>
          </div>
        </Dialog>
      )}
      {dialog}
    </section>
  );
}

// ---------------------------------------------------------------- backups

function BackupsSection({ machines, snapshots, runs }: { machines: readonly Machine[]; snapshots: readonly Snapshot[]; runs: readonly Run[] }) {
  const t = useT(m);
  const f = useTime();
  const filterId = useId();
  const [machineId, setMachineId] = useState('');
  const [limit, setLimit] = useState(10);

  // Machines in the timeline: the active ones, and revoked ones that still have recent backups.
  const days = useMemo(() => lastDays(30, (x) => f.dayKey(x)), [f]);
  const perMachineDay = useMemo(() => {
    const map = new Map<string, Map<string, number>>();
    const first = days[0] ?? '';
    for (const s of snapshots) {
      const d = f.dayKey(s.time);
      if (d < first) continue;
      let inner = map.get(s.machineId);
      if (!inner) map.set(s.machineId, (inner = new Map()));
      inner.set(d, (inner.get(d) ?? 0) + 1);
    }
    return map;
  }, [snapshots, days, f]);
  const timelineMachines = useMemo(() => {
    const coll = new Intl.Collator(f.locale, { sensitivity: 'base', numeric: true });
    return machines.filter((x) => !x.revoked || perMachineDay.has(x.id)).sort((a, b) => Number(a.revoked) - Number(b.revoked) || coll.compare(a.name, b.name));
  }, [machines, perMachineDay, f.locale]);

  const machineOptions = useMemo(() => {
    const byId = new Map<string, string>();
    for (const x of machines) byId.set(x.id, x.name);
    for (const s of snapshots) if (!byId.has(s.machineId)) byId.set(s.machineId, s.machineName);
    for (const r of runs) if (!byId.has(r.machineId)) byId.set(r.machineId, r.machineName);
    return [...byId.entries()].sort((a, b) => a[1].localeCompare(b[1], f.locale));
  }, [machines, snapshots, runs, f.locale]);

  const shown = useMemo(() => (machineId ? snapshots.filter((s) => s.machineId === machineId) : snapshots), [snapshots, machineId]);
  const shownRuns = useMemo(() => (machineId ? runs.filter((r) => r.machineId === machineId) : runs), [runs, machineId]);
  const scope = machineId ? (machineOptions.find(([id]) => id === machineId)?.[1] ?? '') : t('allMachines').toLowerCase();

  const bars: Bar[] = useMemo(
    () =>
      shown
        .slice(0, 30)
        .reverse()
        .map((s) => ({
          key: s.id,
          label: f.shortDay(s.time),
          value: s.logicalSize,
          title: `${s.machineName} — ${f.dateTime(s.time)} — ${f.bytes(s.logicalSize)}`,
        })),
    [shown, f],
  );

  if (snapshots.length === 0 && runs.length === 0) {
    return (
      <section className="cf-section" aria-labelledby="cf-backups">
        <h2 id="cf-backups">{t('backups')}</h2>
        <div className="card cf-empty">
          <strong>{t('noSnapshots')}</strong>
          {t('runsNone')}
        </div>
      </section>
    );
  }

  const sizes = bars.map((b) => b.value);
  const newest = shown[0];
  const sizeLabel =
    bars.length > 0 && newest
      ? t(bars.length === 1 ? 'sizeLabel' : 'sizeLabelMany', {
          n: bars.length,
          scope,
          min: f.bytes(Math.min(...sizes)),
          max: f.bytes(Math.max(...sizes)),
          last: f.bytes(newest.logicalSize),
          date: f.dateTime(newest.time),
        })
      : '';

  return (
    <section className="cf-section" aria-labelledby="cf-backups">
      <h2 id="cf-backups">{t('backups')}</h2>

      {snapshots.length === 0 ? (
        <div className="card cf-empty">
          <strong>{t('noSnapshots')}</strong>
        </div>
      ) : (
        <div className="card cf-card">
          <h3>{t('last30')}</h3>
          <div className="cf-timeline">
            {timelineMachines.map((x) => {
              const perDay = perMachineDay.get(x.id) ?? new Map<string, number>();
              const daysWith = days.filter((d) => (perDay.get(d) ?? 0) > 0).length;
              const lastSnap = snapshots.find((s) => s.machineId === x.id);
              const label =
                daysWith > 0 && lastSnap
                  ? t(f.plural(daysWith, 'timelineLabel', 'timelineLabelMany'), { name: x.name, n: daysWith, last: f.dateTime(lastSnap.time) })
                  : t('timelineLabelNone', { name: x.name });
              return (
                <div className="cf-tl-row" key={x.id}>
                  <span className="cf-tl-name" aria-hidden="true" title={x.name}>
                    {x.name}
                  </span>
                  <div className="cf-tl-days" role="img" aria-label={label}>
                    {days.map((d, i) => {
                      const n = perDay.get(d) ?? 0;
                      return (
                        <span
                          key={d}
                          className={`cf-day${n > 1 ? ' many' : n === 1 ? ' on' : ''}${i === days.length - 1 ? ' today' : ''}`}
                          title={t(f.plural(n, 'dayTitle', 'dayTitleMany'), { day: f.shortDayOfKey(d), n })}
                        />
                      );
                    })}
                  </div>
                </div>
              );
            })}
            <div className="cf-tl-axis" aria-hidden="true">
              <span />
              <div>
                <span>{days[0] ? f.shortDayOfKey(days[0]) : ''}</span>
                <span>{t('today')}</span>
              </div>
            </div>
          </div>
          <div className="cf-tl-legend" aria-hidden="true">
            <span>
              <span className="cf-day" /> {t('dayNone')}
            </span>
            <span>
              <span className="cf-day on" /> {t('dayOne')}
            </span>
            <span>
              <span className="cf-day many" /> {t('dayMany')}
            </span>
          </div>
        </div>
      )}

      <div className="cf-toolbar">
        <div className="cf-field">
          <label htmlFor={filterId}>{t('machineFilter')}</label>
          <select
            id={filterId}
            value={machineId}
            onChange={(e) => {
              setMachineId(e.target.value);
              setLimit(10);
            }}
          >
            <option value="">{t('allMachines')}</option>
            {machineOptions.map(([id, name]) => (
              <option key={id} value={id}>
                {name}
              </option>
            ))}
          </select>
        </div>
      </div>

      <div className="cf-stack">
        {snapshots.length > 0 &&
          (shown.length === 0 ? (
            <div className="card cf-card">
              <h3>{t('history')}</h3>
              <p className="muted">{t('noSnapshotsMachine')}</p>
            </div>
          ) : (
            <>
              <div className="card cf-card">
                <h3>{t('sizeTitle')}</h3>
                <BarChart label={sizeLabel} bars={bars} formatValue={(v) => f.bytes(v)} />
              </div>
              <div className="card cf-card">
                <h3>{t('history')}</h3>
                <div className="table-wrap">
                  <table className="cf-table">
                    <thead>
                      <tr>
                        <th scope="col">{t('colDate')}</th>
                        <th scope="col">{t('colMachine')}</th>
                        <th scope="col" className="cf-num">
                          {t('colSize')}
                        </th>
                        <th scope="col" className="cf-num hide-narrow">
                          {t('colChunks')}
                        </th>
                        <th scope="col" className="hide-narrow">
                          {t('colId')}
                        </th>
                      </tr>
                    </thead>
                    <tbody>
                      {shown.slice(0, limit).map((s) => (
                        <tr key={s.id}>
                          <td>{f.dateTime(s.time)}</td>
                          <td>{s.machineName}</td>
                          <td className="cf-num">{f.bytes(s.logicalSize)}</td>
                          <td className="cf-num hide-narrow">{f.number(s.chunks)}</td>
                          <td className="hide-narrow cf-mono cf-small" title={s.id}>
                            {s.id.slice(0, 8)}
                          </td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </div>
                <div className="actions">
                  <span className="muted cf-small">{t('shownOf', { n: f.number(Math.min(limit, shown.length)), total: f.number(shown.length) })}</span>
                  {shown.length > limit && (
                    <button type="button" className="secondary cf-small-btn" onClick={() => setLimit((l) => l + 20)}>
                      {t('showMore', { n: f.number(Math.min(20, shown.length - limit)) })}
                    </button>
                  )}
                </div>
              </div>
            </>
          ))}
        <RunsPart runs={shownRuns} anyRuns={runs.length > 0} scope={scope} key={machineId} />
      </div>
    </section>
  );
}

/**
 * The reported runs (successful or not) of the machine filter's scope: the duration of each
 * (last 30, failed ones in red) and a compact list. Keyed by the filter, so it starts over
 * at 10 rows when the machine changes.
 */
function RunsPart({ runs, anyRuns, scope }: { runs: readonly Run[]; anyRuns: boolean; scope: string }) {
  const t = useT(m);
  const f = useTime();
  const duration = useDuration();
  const headingId = useId();
  const [limit, setLimit] = useState(10);

  const chart = useMemo(() => {
    const recent = runs.slice(0, 30).reverse();
    const longest = Math.max(0, ...recent.map((r) => r.durationMs));
    // Bars in milliseconds, seconds, minutes or hours, so the axis ticks fall on round durations.
    const unit = longest < 2_000 ? 1 : longest < 120_000 ? 1000 : longest < 7_200_000 ? 60_000 : 3_600_000;
    const bars: Bar[] = recent.map((r) => ({
      key: r.id,
      label: f.shortDay(r.startedAt),
      value: r.durationMs / unit,
      title: `${r.machineName} — ${f.dateTime(r.startedAt)} — ${t(RUN_LABEL[r.result])} — ${duration(r.durationMs)}`,
      // Charts has no "bad" tone: the accent tone is drawn red inside .cf-run-durations.
      tone: r.result === 'failed' ? 'accent' : undefined,
    }));
    return { recent, unit, bars, failed: recent.filter((r) => r.result === 'failed').length };
  }, [runs, f, t, duration]);

  if (runs.length === 0) {
    return (
      <div className="card cf-card">
        <h3>{t('runs')}</h3>
        <p className="muted">{anyRuns ? t('runsNoneMachine') : t('runsNone')}</p>
      </div>
    );
  }

  const newest = runs[0]!;
  const durations = chart.recent.map((r) => r.durationMs);
  const label = `${t(chart.recent.length === 1 ? 'durationLabel' : 'durationLabelMany', {
    n: chart.recent.length,
    scope,
    min: duration(Math.min(...durations)),
    max: duration(Math.max(...durations)),
    last: duration(newest.durationMs),
    date: f.dateTime(newest.startedAt),
    result: t(RUN_LABEL[newest.result]).toLowerCase(),
  })} ${chart.failed === 0 ? t('durationFailedNone') : t(f.plural(chart.failed, 'durationFailedOne', 'durationFailedMany'), { n: f.number(chart.failed) })}`;

  return (
    <>
      <div className="card cf-card">
        <h3>{t('durationTitle')}</h3>
        <div className="cf-run-durations">
          <BarChart label={label} bars={chart.bars} formatValue={(v) => duration(v * chart.unit)} />
        </div>
        {chart.failed > 0 && (
          <div className="cf-tl-legend" aria-hidden="true">
            <span>
              <span className="cf-run-swatch" /> {t('legendRunOk')}
            </span>
            <span>
              <span className="cf-run-swatch bad" /> {t('legendRunFailed')}
            </span>
          </div>
        )}
      </div>
      <div className="card cf-card">
        <h3 id={headingId}>{t('runs')}</h3>
        <div className="table-wrap">
          <table className="cf-table cf-runs" aria-labelledby={headingId}>
            <thead>
              <tr>
                <th scope="col">{t('colDate')}</th>
                <th scope="col" className="hide-narrow">
                  {t('colMachine')}
                </th>
                <th scope="col">{t('colResult')}</th>
                <th scope="col" className="cf-num">
                  {t('colDuration')}
                </th>
                <th scope="col" className="cf-num hide-narrow">
                  {t('colFiles')}
                </th>
                <th scope="col" className="cf-num hide-narrow">
                  {t('colBytes')}
                </th>
                <th scope="col" className="cf-num hide-narrow">
                  {t('colWarnings')}
                </th>
              </tr>
            </thead>
            <tbody>
              {runs.slice(0, limit).map((r) => (
                <tr key={r.id}>
                  <td>
                    {f.dateTime(r.startedAt)}
                    <span className="cf-sub cf-only-narrow">{r.machineName}</span>
                  </td>
                  <td className="hide-narrow">{r.machineName}</td>
                  <td>
                    <RunBadge result={r.result} />
                    {r.errorCode && (
                      <span className="cf-sub">
                        <span className="cf-sr">{t('errorCode')} </span>
                        <span className="cf-mono cf-code">{r.errorCode}</span>
                      </span>
                    )}
                  </td>
                  <td className="cf-num">{duration(r.durationMs)}</td>
                  <td className="cf-num hide-narrow">{f.number(r.files)}</td>
                  <td className="cf-num hide-narrow">{f.bytes(r.bytes)}</td>
                  <td className={`cf-num hide-narrow${r.warnings > 0 ? ' cf-warn' : ''}`}>{f.number(r.warnings)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <div className="actions">
          <span className="muted cf-small">{t('shownOf', { n: f.number(Math.min(limit, runs.length)), total: f.number(runs.length) })}</span>
          {runs.length > limit && (
            <button type="button" className="secondary cf-small-btn" aria-describedby={headingId} onClick={() => setLimit((l) => l + 20)}>
              {t('showMore', { n: f.number(Math.min(20, runs.length - limit)) })}
            </button>
          )}
        </div>
      </div>
    </>
  );
}

// ---------------------------------------------------------------- volumes

function VolumesSection({ usage }: { usage: Usage }) {
  const t = useT(m);
  const f = useTime();
  const chart = useMemo(() => {
    const firsts = [usage.stored[0]?.date, usage.protected[0]?.date].filter((x): x is string => !!x).sort();
    if (firsts.length === 0) return null;
    const today = new Date().toISOString().slice(0, 10);
    const lastData = [usage.stored.at(-1)?.date, usage.protected.at(-1)?.date].filter((x): x is string => !!x).sort().at(-1)!;
    const end = lastData > today ? lastData : today;
    let start = firsts[0]!;
    // At least two weeks on the axis: before the first backup nothing was protected or stored.
    const minStart = new Date(Date.parse(`${end}T00:00:00Z`) - 13 * 86_400_000).toISOString().slice(0, 10);
    if (minStart < start) start = minStart;
    const days = daysBetween(start, end);
    // Each series is a step: a day without an entry keeps the previous value.
    const fill = (points: readonly { date: string; bytes: number }[]) => {
      const byDay = new Map(points.map((p) => [p.date, p.bytes]));
      let cur: number | null = points.length > 0 ? 0 : null;
      return days.map((d) => {
        const v = byDay.get(d);
        if (v !== undefined) cur = v;
        return cur;
      });
    };
    return { days, protectedValues: fill(usage.protected), storedValues: fill(usage.stored) };
  }, [usage]);

  let body: ReactNode;
  if (!chart) {
    body = <p className="muted">{t('noVolumes')}</p>;
  } else {
    const protectedNow = chart.protectedValues.at(-1) ?? 0;
    const storedNow = chart.storedValues.at(-1) ?? 0;
    const from = f.shortDayOfKey(chart.days[0]!);
    const to = f.shortDayOfKey(chart.days.at(-1)!);
    body = (
      <>
        <dl className="cf-figures">
          <div>
            <dt>{t('protectedNow')}</dt>
            <dd>{f.bytes(protectedNow)}</dd>
          </div>
          <div>
            <dt>{t('storedNow')}</dt>
            <dd>{f.bytes(storedNow)}</dd>
          </div>
          {protectedNow > 0 && (
            <div>
              <dt>{t('ratio')}</dt>
              <dd>{new Intl.NumberFormat(f.locale, { style: 'percent', maximumFractionDigits: 0 }).format(storedNow / protectedNow)}</dd>
            </div>
          )}
        </dl>
        <LineChart
          label={t('volumeLabel', { from, to, protected: f.bytes(protectedNow), stored: f.bytes(storedNow) })}
          categories={chart.days}
          categoryLabel={(d) => f.shortDayOfKey(d)}
          formatValue={(v) => f.bytes(v)}
          series={[
            { name: t('seriesProtected'), values: chart.protectedValues, tone: 'primary' },
            { name: t('seriesStored'), values: chart.storedValues, tone: 'accent', dashed: true },
          ]}
        />
        <p className="cf-footnote">{t('volumesHelp')}</p>
      </>
    );
  }
  return (
    <section className="cf-section" aria-labelledby="cf-volumes">
      <h2 id="cf-volumes">{t('volumes')}</h2>
      <div className="card cf-card">{body}</div>
    </section>
  );
}
