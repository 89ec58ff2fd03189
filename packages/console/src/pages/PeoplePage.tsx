import type { AccessReport, AccessReviewRow, OrgWithReview, PersonRecord } from '@coffre/core/people-api';
import { useEffect, useId, useRef, useState, type FormEvent, type ReactNode } from 'react';
import { mayGrant, mayResetCredentials, ROLES_BY_ORG_TYPE, type OrgType, type Role } from '@coffre/core/roles';
import { api, ApiFailure } from '../api';
import { ErrorBox, Loaded, Loading, useLoad } from '../components/Async';
import { CopyButton } from '../components/CopyButton';
import { Dialog } from '../components/Dialog';
import { isReauthCancelled as isCancelled, useReauth } from '../components/ReauthDialog';
import { common } from '../i18n/common';
import { defineMessages, useFormat, useLang, useT } from '../i18n/i18n';
import { useRoute } from '../router';
import { can, useMe, type Me } from '../session';
import './PeoplePage.css';

const m = defineMessages({
  fr: {
    title: 'Personnes et accès',
    organisation: 'Organisation',
    sep: ' : ',
    orgNotFound: "Cette organisation n'existe pas ou ne fait pas partie de votre périmètre.",
    suspended: 'Suspendue',
    reviewOverdue: 'Revue des accès en retard',
    kpiActive: 'Personnes actives',
    kpiDisabled: 'Comptes désactivés',
    kpiNoFactor: 'Sans second facteur',
    kpiReview: 'Prochaine revue des accès',
    people: 'Personnes',
    peopleCount: '{n} personnes',
    peopleCountOne: '1 personne',
    noPeople: "Personne n'a encore de compte dans cette organisation.",
    colPerson: 'Personne',
    colRole: 'Rôle',
    colFactor: 'Second facteur',
    colLastLogin: 'Dernière connexion',
    colStatus: 'État',
    colActions: 'Actions',
    you: 'Vous',
    active: 'Actif',
    disabled: 'Désactivé',
    mustChange: 'Mot de passe temporaire',
    factorBoth: 'Application + clé',
    factorTotp: 'Application',
    factorKeys: 'Clé de sécurité ({n})',
    factorKey: 'Clé de sécurité',
    factorNone: 'Aucun',
    never: 'Jamais',
    manage: 'Gérer',
    manageOf: 'Gérer {name}',
    close: 'Fermer',
    changeRole: 'Changer le rôle',
    changeRoleHelp: 'Ses sessions ouvertes seront fermées.',
    newRole: "Nouveau niveau d'accès de {name}",
    applyRole: 'Appliquer',
    access: 'Accès au compte',
    disable: 'Désactiver',
    enable: 'Réactiver',
    disableHelp: 'La personne ne pourra plus se connecter ; ses sessions sont fermées.',
    enableHelp: 'La personne pourra de nouveau se connecter.',
    credentials: 'Identifiants',
    credentialsHelp: "En cas de perte du téléphone ou du mot de passe. Les sessions ouvertes sont fermées.",
    resetFactor: 'Réinitialiser le second facteur',
    resetPassword: 'Réinitialiser le mot de passe',
    confirmRoleTitle: 'Changer le rôle de {name} ?',
    confirmRoleBody: '{name} passera de « {from} » à « {to} ». Ses sessions ouvertes seront fermées.',
    confirmDisableTitle: 'Désactiver {name} ?',
    confirmDisableBody: '{name} ne pourra plus se connecter et ses sessions ouvertes sont fermées immédiatement. Vous pourrez réactiver le compte plus tard.',
    confirmFactorTitle: 'Réinitialiser le second facteur de {name} ?',
    confirmFactorBody: "Son application d'authentification, ses clés de sécurité et ses codes de secours seront supprimés. À sa prochaine connexion, {name} devra configurer un nouveau second facteur. Vérifiez d'abord son identité (par exemple en la rappelant à un numéro connu).",
    confirmPasswordTitle: 'Réinitialiser le mot de passe de {name} ?',
    confirmPasswordBody: "Son mot de passe actuel ne fonctionnera plus. Un mot de passe temporaire vous sera affiché une seule fois, à transmettre à {name} ; il devra être changé à la première connexion.",
    roleChanged: '{name} a maintenant le rôle « {role} ».',
    disabledDone: 'Le compte de {name} est désactivé.',
    enabledDone: 'Le compte de {name} est réactivé.',
    factorDone: 'Le second facteur de {name} a été réinitialisé : un nouveau sera demandé à la prochaine connexion.',
    tempTitle: 'Mot de passe temporaire de {name}',
    tempOnce: "Il n'est affiché qu'une seule fois : il n'est ni conservé ni envoyé par e-mail.",
    tempChannel: "Transmettez-le à {name} par un autre canal que l'adresse e-mail du compte : de vive voix, par téléphone, ou en main propre.",
    tempNext: "À la première connexion, {name} devra le remplacer par son propre mot de passe et configurer un second facteur.",
    tempLogin: 'Identifiant de connexion : {email}',
    copy: 'Copier le mot de passe',
    tempDone: "J'ai transmis le mot de passe",
    add: 'Ajouter une personne',
    addHelp: 'La personne reçoit un mot de passe temporaire, à changer à sa première connexion, où elle configure aussi son second facteur.',
    email: 'E-mail',
    fullName: 'Nom complet',
    role: 'Rôle',
    personLang: 'Interface et messages en',
    create: 'Créer la personne',
    creating: 'Création…',
    created: 'Le compte de {name} a été créé.',
    noGrantable: "Vous ne pouvez attribuer aucun rôle dans cette organisation.",
    'roleHelp.operator-admin': 'Tous les droits, sur toutes les organisations.',
    'roleHelp.reseller-admin': 'Gère ses clients, leurs personnes et leurs machines ; lit leur journal d’audit.',
    'roleHelp.technician': 'Enrôle et révoque les machines ; ne gère pas les personnes.',
    'roleHelp.customer-admin': 'Gère les personnes, les contacts et les machines du cabinet ; lit son journal d’audit.',
    'roleHelp.customer-viewer': "Consulte l'état des sauvegardes, sans rien modifier.",
    'roleHelp.auditor': "Lit tout, journal d'audit compris ; ne modifie rien.",
    contacts: "Contacts d'alerte et d'incident",
    contactsHelp: "L'adresse des alertes reçoit les avertissements de sauvegarde (retard, échec). Le référent incident est la personne prévenue en cas d'incident de sécurité.",
    alertEmail: 'Adresse des alertes',
    referent: 'Référent incident',
    referentName: 'Nom du référent',
    referentEmail: 'Courriel du référent',
    referentPhone: 'Téléphone du référent',
    notSet: 'Non renseigné',
    editContacts: 'Modifier les contacts',
    save: 'Enregistrer',
    saving: 'Enregistrement…',
    contactsSaved: 'Contacts enregistrés.',
    phoneHint: 'Chiffres, espaces et + ( ) . - uniquement.',
    review: 'Revue des accès',
    reviewHelp: "Au moins tous les six mois, vérifiez que chaque personne a encore besoin de son accès et que son rôle est le bon ; désactivez les comptes qui ne servent plus.",
    reviewOk: 'À jour',
    reviewLate: 'En retard',
    reviewDue: 'Prochaine revue avant le {date}',
    reviewDueLate: 'Revue attendue depuis le {date}',
    lastReview: 'Dernière revue le {date} par {name}',
    noReview: 'Aucune revue enregistrée pour le moment.',
    generatedAt: 'Rapport établi le {date}',
    colEmail: 'E-mail',
    colCreated: 'Créé le',
    colAttention: "Points d'attention",
    flagNoFactor: 'Sans second facteur',
    flagNever: 'Aucune connexion',
    flagDormant: 'Aucune connexion depuis 90 jours',
    flagDisabled: 'Compte désactivé',
    noFactorNote: '{n} personnes sans second facteur, signalées en rouge : elles devront en configurer un à leur prochaine connexion.',
    noFactorNoteOne: 'Une personne sans second facteur, signalée en rouge : elle devra en configurer un à sa prochaine connexion.',
    note: 'Note (facultatif)',
    noteHint: 'Par exemple : comptes vérifiés avec la direction du cabinet.',
    mark: 'Marquer comme revue',
    marking: 'Enregistrement…',
    marked: 'Revue des accès enregistrée.',
    reviewReadOnly: "La revue peut être marquée par l'administrateur de l'organisation ou de son revendeur.",
  },
  en: {
    title: 'People and access',
    organisation: 'Organisation',
    sep: ': ',
    orgNotFound: 'This organisation does not exist or is outside what you may see.',
    suspended: 'Suspended',
    reviewOverdue: 'Access review overdue',
    kpiActive: 'Active people',
    kpiDisabled: 'Disabled accounts',
    kpiNoFactor: 'Without a second factor',
    kpiReview: 'Next access review',
    people: 'People',
    peopleCount: '{n} people',
    peopleCountOne: '1 person',
    noPeople: 'Nobody has an account in this organisation yet.',
    colPerson: 'Person',
    colRole: 'Role',
    colFactor: 'Second factor',
    colLastLogin: 'Last sign-in',
    colStatus: 'Status',
    colActions: 'Actions',
    you: 'You',
    active: 'Active',
    disabled: 'Disabled',
    mustChange: 'Temporary password',
    factorBoth: 'App + key',
    factorTotp: 'Authenticator app',
    factorKeys: 'Security key ({n})',
    factorKey: 'Security key',
    factorNone: 'None',
    never: 'Never',
    manage: 'Manage',
    manageOf: 'Manage {name}',
    close: 'Close',
    changeRole: 'Change role',
    changeRoleHelp: 'Their open sessions will be ended.',
    newRole: 'New access level for {name}',
    applyRole: 'Apply',
    access: 'Account access',
    disable: 'Disable',
    enable: 'Enable',
    disableHelp: 'The person can no longer sign in; their sessions are ended.',
    enableHelp: 'The person will be able to sign in again.',
    credentials: 'Credentials',
    credentialsHelp: 'When a phone or a password is lost. Open sessions are ended.',
    resetFactor: 'Reset second factor',
    resetPassword: 'Reset password',
    confirmRoleTitle: "Change {name}'s role?",
    confirmRoleBody: '{name} will go from “{from}” to “{to}”. Their open sessions will be ended.',
    confirmDisableTitle: 'Disable {name}?',
    confirmDisableBody: '{name} will no longer be able to sign in and their open sessions end now. You can enable the account again later.',
    confirmFactorTitle: "Reset {name}'s second factor?",
    confirmFactorBody: 'Their authenticator app, security keys and recovery codes will be removed. At their next sign-in, {name} will have to set up a new second factor. Check their identity first (for example by calling them back on a known number).',
    confirmPasswordTitle: "Reset {name}'s password?",
    confirmPasswordBody: 'Their current password will stop working. A temporary password will be shown to you once, to hand over to {name}; it must be changed at the first sign-in.',
    roleChanged: '{name} now has the role “{role}”.',
    disabledDone: '{name} has been disabled.',
    enabledDone: '{name} has been enabled.',
    factorDone: "{name}'s second factor has been reset. They will set up a new one at their next sign-in.",
    tempTitle: 'Temporary password for {name}',
    tempOnce: 'It is shown only once: it is neither kept nor sent by email.',
    tempChannel: "Hand it over to {name} through another channel than the account's email address: in person, by phone, or on paper.",
    tempNext: 'At the first sign-in, {name} will have to replace it with their own password and set up a second factor.',
    tempLogin: 'Sign-in address: {email}',
    copy: 'Copy the password',
    tempDone: 'I have handed the password over',
    add: 'Add a person',
    addHelp: 'The person gets a temporary password, to be changed at their first sign-in, where they also set up their second factor.',
    email: 'Email',
    fullName: 'Full name',
    role: 'Role',
    personLang: 'Interface and messages in',
    create: 'Create person',
    creating: 'Creating…',
    created: "{name}'s account has been created.",
    noGrantable: 'You may not give any role in this organisation.',
    'roleHelp.operator-admin': 'Every right, over every organisation.',
    'roleHelp.reseller-admin': 'Manages its customers, their people and machines; reads their audit trail.',
    'roleHelp.technician': 'Enrols and revokes machines; does not manage people.',
    'roleHelp.customer-admin': "Manages the practice's people, contacts and machines; reads its audit trail.",
    'roleHelp.customer-viewer': 'Sees the state of the backups, changes nothing.',
    'roleHelp.auditor': 'Reads everything, the audit trail included; changes nothing.',
    contacts: 'Alert and incident contacts',
    contactsHelp: 'The alert address receives backup warnings (late, failed). The incident referent is the person told about a security incident.',
    alertEmail: 'Alert address',
    referent: 'Incident referent',
    referentName: 'Referent name',
    referentEmail: 'Referent email',
    referentPhone: 'Referent phone',
    notSet: 'Not set',
    editContacts: 'Edit contacts',
    save: 'Save',
    saving: 'Saving…',
    contactsSaved: 'Contacts saved.',
    phoneHint: 'Digits, spaces and + ( ) . - only.',
    review: 'Access review',
    reviewHelp: 'At least every six months, check that each person still needs their access and has the right role; disable the accounts no longer used.',
    reviewOk: 'Up to date',
    reviewLate: 'Overdue',
    reviewDue: 'Next review before {date}',
    reviewDueLate: 'Review due since {date}',
    lastReview: 'Last review on {date} by {name}',
    noReview: 'No review recorded yet.',
    generatedAt: 'Report generated on {date}',
    colEmail: 'Email',
    colCreated: 'Created',
    colAttention: 'Attention points',
    flagNoFactor: 'No second factor',
    flagNever: 'Never signed in',
    flagDormant: 'No sign-in for 90 days',
    flagDisabled: 'Account disabled',
    noFactorNote: '{n} people without a second factor, highlighted in red: they will have to set one up at their next sign-in.',
    noFactorNoteOne: 'One person without a second factor, highlighted in red: they will have to set one up at their next sign-in.',
    note: 'Note (optional)',
    noteHint: "For example: accounts checked with the practice's management.",
    mark: 'Mark as reviewed',
    marking: 'Saving…',
    marked: 'Access review recorded.',
    reviewReadOnly: "The review can be marked by the organisation's administrator or its reseller's.",
  },
});

type Org = OrgWithReview;

type Person = PersonRecord;

type ReviewRow = AccessReviewRow;

type Review = AccessReport;

type WithReauth = <R>(call: () => Promise<R>) => Promise<R>;

const TYPE_ORDER: Readonly<Record<OrgType, number>> = { operator: 0, reseller: 1, customer: 2 };
const DORMANT_MS = 90 * 86_400_000;

/** Roles the signed-in person may give in an organisation of this type (the server checks again). */
function grantableRoles(me: Me, type: OrgType): Role[] {
  return ROLES_BY_ORG_TYPE[type].filter((r) => mayGrant(me.role, r, type));
}

function hasNoFactor(p: Person): boolean {
  return !p.secondFactor.totp && p.secondFactor.webauthn === 0;
}

/** People of an organisation, their roles and credentials, the organisation's contacts and its access review. */
export function PeoplePage({ orgId }: { orgId: string }) {
  const t = useT(m);
  const orgs = useLoad(() => api<{ orgs: Org[] }>('GET', '/orgs'), []);
  const { withReauth, dialog } = useReauth();
  return (
    <>
      <h1>{t('title')}</h1>
      <Loaded state={orgs}>
        {(d) => {
          const org = d.orgs.find((o) => o.id === orgId);
          return (
            <>
              <OrgPicker orgs={d.orgs} current={orgId} />
              {org ? (
                <OrgPeople key={org.id} org={org} onOrgChanged={orgs.reload} withReauth={withReauth} />
              ) : (
                <div className="alert error" role="alert">
                  {t('orgNotFound')}
                </div>
              )}
            </>
          );
        }}
      </Loaded>
      {dialog}
    </>
  );
}

function OrgPicker({ orgs, current }: { orgs: readonly Org[]; current: string }) {
  const t = useT(m);
  const tc = useT(common);
  const { navigate } = useRoute();
  const byId = new Map(orgs.map((o) => [o.id, o]));
  const sorted = [...orgs].sort((a, b) => TYPE_ORDER[a.type] - TYPE_ORDER[b.type] || a.name.localeCompare(b.name, 'fr'));
  const org = byId.get(current);
  if (orgs.length <= 1 && org) {
    return (
      <p className="people-sub">
        <span>
          {t('organisation')}
          {t('sep')}
          <strong>{org.name}</strong>
        </span>
        <OrgBadges org={org} />
      </p>
    );
  }
  return (
    <div className="people-picker">
      <label htmlFor="people-org">{t('organisation')}</label>
      <select id="people-org" value={org ? current : ''} onChange={(e) => navigate(`/organisations/${encodeURIComponent(e.target.value)}/personnes`)}>
        {!org && <option value="">—</option>}
        {(['operator', 'reseller', 'customer'] as const).map((type) => {
          const group = sorted.filter((o) => o.type === type);
          if (group.length === 0) return null;
          return (
            <optgroup key={type} label={tc(`org.${type}`)}>
              {group.map((o) => {
                const parent = o.parentId ? byId.get(o.parentId) : undefined;
                return (
                  <option key={o.id} value={o.id}>
                    {parent && parent.type === 'reseller' ? `${o.name} (${parent.name})` : o.name}
                  </option>
                );
              })}
            </optgroup>
          );
        })}
      </select>
      {org && <OrgBadges org={org} />}
    </div>
  );
}

function OrgBadges({ org }: { org: Org }) {
  const t = useT(m);
  const tc = useT(common);
  return (
    <span className="people-badges">
      <span className="badge neutral">{tc(`org.${org.type}`)}</span>
      {org.status === 'suspended' && <span className="badge bad">{t('suspended')}</span>}
      {org.accessReviewOverdue && <span className="badge warn">{t('reviewOverdue')}</span>}
    </span>
  );
}

function OrgPeople({ org, onOrgChanged, withReauth }: { org: Org; onOrgChanged: () => void; withReauth: WithReauth }) {
  const me = useMe();
  const users = useLoad(() => api<{ users: Person[] }>('GET', `/orgs/${org.id}/users`), [org.id]);
  const mayReview = can(me.role, 'access-review:read');
  const review = useLoad(() => (mayReview ? api<Review>('GET', `/orgs/${org.id}/access-review`) : Promise.resolve(null)), [org.id, mayReview]);
  const changed = () => {
    users.reload();
    review.reload();
  };
  const reviewChanged = () => {
    review.reload();
    onOrgChanged();
  };
  return (
    <>
      <Kpis users={users.data?.users} review={review.data ?? undefined} />
      <PeopleSection org={org} state={users} onChanged={changed} withReauth={withReauth} />
      {can(me.role, 'users:create') && <CreatePerson org={org} onCreated={changed} withReauth={withReauth} />}
      <ContactsSection org={org} onSaved={onOrgChanged} withReauth={withReauth} />
      {mayReview && <ReviewSection org={org} state={review} onMarked={reviewChanged} withReauth={withReauth} />}
    </>
  );
}

function Kpis({ users, review }: { users: readonly Person[] | undefined; review: Review | undefined }) {
  const t = useT(m);
  const f = useFormat();
  if (!users) return null;
  const active = users.filter((u) => u.status === 'active');
  const noFactor = active.filter(hasNoFactor).length;
  return (
    <div className="grid people-kpis">
      <div className="card kpi">
        <div className="value">{f.number(active.length)}</div>
        <div className="label">{t('kpiActive')}</div>
      </div>
      <div className="card kpi">
        <div className="value">{f.number(users.length - active.length)}</div>
        <div className="label">{t('kpiDisabled')}</div>
      </div>
      <div className="card kpi">
        <div className={`value${noFactor > 0 ? ' bad' : ''}`}>{f.number(noFactor)}</div>
        <div className="label">{t('kpiNoFactor')}</div>
      </div>
      {review && (
        <div className="card kpi">
          <div className={`value${review.overdue ? ' warn' : ''}`}>{f.date(review.dueAt)}</div>
          <div className="label">
            {t('kpiReview')}
            {review.overdue ? ` · ${t('reviewLate')}` : ''}
          </div>
        </div>
      )}
    </div>
  );
}

/* ------------------------------------------------------------------ people table */

function PeopleSection({
  org,
  state,
  onChanged,
  withReauth,
}: {
  org: Org;
  state: { data: { users: Person[] } | undefined; error: unknown; reload: () => void };
  onChanged: () => void;
  withReauth: WithReauth;
}) {
  const t = useT(m);
  const me = useMe();
  const [open, setOpen] = useState<string | null>(null);
  const mayUpdate = can(me.role, 'users:update');
  const mayReset = can(me.role, 'users:reset-credentials');
  return (
    <section className="card" aria-labelledby="people-list">
      <div className="people-section-head">
        <h2 id="people-list">{t('people')}</h2>
        {state.data && <span className="muted">{state.data.users.length === 1 ? t('peopleCountOne') : t('peopleCount', { n: state.data.users.length })}</span>}
      </div>
      <Loaded state={state}>
        {(d) =>
          d.users.length === 0 ? (
            <p className="muted">{t('noPeople')}</p>
          ) : (
            <div className="table-wrap people-scroll">
              <table>
                <thead>
                  <tr>
                    <th scope="col">{t('colPerson')}</th>
                    <th scope="col">{t('colRole')}</th>
                    <th scope="col">{t('colFactor')}</th>
                    <th scope="col">{t('colLastLogin')}</th>
                    <th scope="col">{t('colStatus')}</th>
                    <th scope="col">
                      <span className="cf-sr">{t('colActions')}</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {sortPeople(d.users).map((u) => {
                    const self = u.id === me.id;
                    const manageable = !self && (mayUpdate || mayReset) && mayGrant(me.role, u.role, org.type);
                    const isOpen = open === u.id && manageable;
                    return (
                      <PersonRows
                        key={u.id}
                        org={org}
                        person={u}
                        self={self}
                        manageable={manageable}
                        open={isOpen}
                        onToggle={() => setOpen(isOpen ? null : u.id)}
                        onChanged={onChanged}
                        withReauth={withReauth}
                      />
                    );
                  })}
                </tbody>
              </table>
            </div>
          )
        }
      </Loaded>
    </section>
  );
}

function sortPeople(users: readonly Person[]): Person[] {
  return [...users].sort((a, b) => (a.status === b.status ? a.name.localeCompare(b.name, 'fr') : a.status === 'active' ? -1 : 1));
}

function FactorCell({ totp, keys }: { totp: boolean; keys: number }) {
  const t = useT(m);
  if (totp && keys > 0) return <>{t('factorBoth')}</>;
  if (totp) return <>{t('factorTotp')}</>;
  if (keys > 0) return <>{t('factorKeys', { n: keys })}</>;
  return <span className="badge bad">{t('factorNone')}</span>;
}

function PersonRows(props: {
  org: Org;
  person: Person;
  self: boolean;
  manageable: boolean;
  open: boolean;
  onToggle: () => void;
  onChanged: () => void;
  withReauth: WithReauth;
}) {
  const { org, person: u, self, manageable, open, onToggle } = props;
  const t = useT(m);
  const tc = useT(common);
  const f = useFormat();
  const panelId = useId();
  const noFactor = hasNoFactor(u) && u.status === 'active';
  const rowClass = [noFactor ? 'people-row-alert' : '', open ? 'people-open' : ''].filter(Boolean).join(' ') || undefined;
  return (
    <>
      <tr className={rowClass}>
        <td>
          <div className="people-name">{u.name}</div>
          <div className="people-email">{u.email}</div>
        </td>
        <td>{tc(`role.${u.role}`)}</td>
        <td>
          <FactorCell totp={u.secondFactor.totp} keys={u.secondFactor.webauthn} />
        </td>
        <td className="people-nowrap">{u.lastLoginAt ? f.dateTime(u.lastLoginAt) : <span className="muted">{t('never')}</span>}</td>
        <td>
          <span className="people-badges">
            {u.status === 'active' ? <span className="badge ok">{t('active')}</span> : <span className="badge neutral">{t('disabled')}</span>}
            {u.mustChangePassword && <span className="badge warn">{t('mustChange')}</span>}
          </span>
        </td>
        <td>
          {self ? (
            <span className="badge neutral">{t('you')}</span>
          ) : manageable ? (
            <button type="button" className="secondary people-small" aria-expanded={open} aria-controls={panelId} onClick={onToggle} aria-label={t('manageOf', { name: u.name })}>
              {t('manage')}
            </button>
          ) : null}
        </td>
      </tr>
      {open && (
        <tr className="people-manage-row">
          <td colSpan={6} id={panelId}>
            <div className="people-sticky">
              <PersonPanel org={org} person={u} onChanged={props.onChanged} withReauth={props.withReauth} onClose={onToggle} />
            </div>
          </td>
        </tr>
      )}
    </>
  );
}

interface Confirmation {
  readonly title: string;
  readonly body: string;
  readonly action: string;
  readonly danger: boolean;
  readonly run: () => Promise<void>;
}

/** The actions on one person (never oneself): role, disable/enable, second factor and password resets. */
function PersonPanel({ org, person: u, onChanged, withReauth, onClose }: { org: Org; person: Person; onChanged: () => void; withReauth: WithReauth; onClose: () => void }) {
  const t = useT(m);
  const tc = useT(common);
  const me = useMe();
  const { lang } = useLang();
  const roles = grantableRoles(me, org.type);
  const [role, setRole] = useState<Role>(u.role);
  const [confirm, setConfirm] = useState<Confirmation | null>(null);
  const [busy, setBusy] = useState(false);
  // Kept as keys, not text, so that a language switch translates them too.
  const [notice, setNotice] = useState<{ key: 'roleChanged' | 'disabledDone' | 'enabledDone' | 'factorDone'; role?: Role } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [secret, setSecret] = useState<string | null>(null);
  const feedbackRef = useRef<HTMLDivElement>(null);
  const roleId = useId();
  const mayUpdate = can(me.role, 'users:update');
  // Only a higher role resets a password or second factor (never a peer): the server refuses it too.
  const mayReset = can(me.role, 'users:reset-credentials') && mayResetCredentials(me.role, u.role, org.type);

  const perform = async (run: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    setNotice(null);
    try {
      await run();
      onChanged();
    } catch (e) {
      if (!isCancelled(e)) setError(e);
    } finally {
      setBusy(false);
    }
  };

  useEffect(() => {
    if (notice || error || secret) feedbackRef.current?.focus();
  }, [notice, error, secret]);

  const ask = (c: Confirmation) => setConfirm(c);
  const name = u.name;

  const changeRole = () =>
    ask({
      title: t('confirmRoleTitle', { name }),
      body: t('confirmRoleBody', { name, from: tc(`role.${u.role}`), to: tc(`role.${role}`) }),
      action: t('changeRole'),
      danger: false,
      run: async () => {
        const to = role;
        await withReauth(() => api('PATCH', `/users/${u.id}`, { role: to }));
        setNotice({ key: 'roleChanged', role: to });
      },
    });
  const disable = () =>
    ask({
      title: t('confirmDisableTitle', { name }),
      body: t('confirmDisableBody', { name }),
      action: t('disable'),
      danger: true,
      run: async () => {
        await withReauth(() => api('PATCH', `/users/${u.id}`, { status: 'disabled' }));
        setNotice({ key: 'disabledDone' });
      },
    });
  const enable = () =>
    void perform(async () => {
      await withReauth(() => api('PATCH', `/users/${u.id}`, { status: 'active' }));
      setNotice({ key: 'enabledDone' });
    });
  const resetFactor = () =>
    ask({
      title: t('confirmFactorTitle', { name }),
      body: t('confirmFactorBody', { name }),
      action: t('resetFactor'),
      danger: true,
      run: async () => {
        await withReauth(() => api('POST', `/users/${u.id}/reset-second-factor`));
        setNotice({ key: 'factorDone' });
      },
    });
  const resetPassword = () =>
    ask({
      title: t('confirmPasswordTitle', { name }),
      body: t('confirmPasswordBody', { name }),
      action: t('resetPassword'),
      danger: true,
      run: async () => {
        const r = await withReauth(() => api<{ temporaryPassword: string }>('POST', `/users/${u.id}/reset-password`));
        setSecret(r.temporaryPassword);
      },
    });

  return (
    <>
      <div ref={feedbackRef} tabIndex={-1} className="people-feedback">
        {error ? <div className="alert error" role="alert">{error instanceof ApiFailure ? error.text(lang) : tc('error')}</div> : null}
        {notice && (
          <div className="alert success" role="status">
            {notice.role ? t('roleChanged', { name, role: tc(`role.${notice.role}`) }) : t(notice.key, { name })}
          </div>
        )}
        {secret && <TemporaryPassword name={u.name} email={u.email} password={secret} onDone={() => setSecret(null)} />}
      </div>
      <div className="people-manage">
        {mayUpdate && (
          <div className="people-manage-box">
            <h3>{t('changeRole')}</h3>
            <p className="muted">{t('changeRoleHelp')}</p>
            <form
              className="inline"
              onSubmit={(e) => {
                e.preventDefault();
                changeRole();
              }}
            >
              <div>
                <label htmlFor={roleId} className="cf-sr">
                  {t('newRole', { name })}
                </label>
                <select id={roleId} value={role} onChange={(e) => setRole(e.target.value as Role)}>
                  {roles.map((r) => (
                    <option key={r} value={r}>
                      {tc(`role.${r}`)}
                    </option>
                  ))}
                </select>
              </div>
              <button type="submit" className="people-small" disabled={busy || role === u.role}>
                {t('applyRole')}
              </button>
            </form>
          </div>
        )}
        {mayUpdate && (
          <div className="people-manage-box">
            <h3>{t('access')}</h3>
            <p className="muted">{u.status === 'active' ? t('disableHelp') : t('enableHelp')}</p>
            {u.status === 'active' ? (
              <button type="button" className="danger people-small" disabled={busy} onClick={disable}>
                {t('disable')}
              </button>
            ) : (
              <button type="button" className="people-small" disabled={busy} onClick={enable}>
                {t('enable')}
              </button>
            )}
          </div>
        )}
        {mayReset && (
          <div className="people-manage-box">
            <h3>{t('credentials')}</h3>
            <p className="muted">{t('credentialsHelp')}</p>
            <div className="actions" style={{ marginTop: 0 }}>
              <button type="button" className="secondary people-small" disabled={busy} onClick={resetFactor}>
                {t('resetFactor')}
              </button>
              <button type="button" className="secondary people-small" disabled={busy} onClick={resetPassword}>
                {t('resetPassword')}
              </button>
            </div>
          </div>
        )}
      </div>
      <div className="actions">
        <button type="button" className="link" onClick={onClose}>
          {t('close')}
        </button>
      </div>
      {confirm && (
        <Dialog title={confirm.title} onClose={() => setConfirm(null)} tone={confirm.danger ? 'danger' : undefined}>
          <p>{confirm.body}</p>
          <div className="actions">
            <button type="button" className="secondary" onClick={() => setConfirm(null)}>
              {tc('cancel')}
            </button>
            <button
              type="button"
              className={confirm.danger ? 'danger' : undefined}
              onClick={() => {
                const run = confirm.run;
                setConfirm(null);
                void perform(run);
              }}
            >
              {confirm.action}
            </button>
          </div>
        </Dialog>
      )}
    </>
  );
}

/** A temporary password, shown once, with how to hand it over. */
function TemporaryPassword({ name, email, password, onDone }: { name: string; email: string; password: string; onDone: () => void }) {
  const t = useT(m);
  const headingId = useId();
  return (
    <div className="people-secret" role="region" aria-labelledby={headingId}>
      <h3 id={headingId}>{t('tempTitle', { name })}</h3>
      <p className="people-secret-line">
        <code className="people-password" data-testid="temporary-password">
          {password}
        </code>
        <CopyButton text={password} label={t('copy')} className="secondary people-small" />
      </p>
      <ul>
        <li>
          <strong>{t('tempOnce')}</strong>
        </li>
        <li>{t('tempChannel', { name })}</li>
        <li>{t('tempLogin', { email })}</li>
        <li>{t('tempNext', { name })}</li>
      </ul>
      <div className="actions">
        <button type="button" className="people-small" onClick={onDone}>
          {t('tempDone')}
        </button>
      </div>
    </div>
  );
}

/* ------------------------------------------------------------------ create */

function CreatePerson({ org, onCreated, withReauth }: { org: Org; onCreated: () => void; withReauth: WithReauth }) {
  const t = useT(m);
  const tc = useT(common);
  const me = useMe();
  const roles = grantableRoles(me, org.type);
  const [email, setEmail] = useState('');
  const [name, setName] = useState('');
  const [role, setRole] = useState<Role | ''>(roles[0] ?? '');
  const [locale, setLocale] = useState<'fr' | 'en'>(org.locale);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [created, setCreated] = useState<{ name: string; email: string; password: string } | null>(null);
  const resultRef = useRef<HTMLDivElement>(null);

  useEffect(() => {
    if (created || error) resultRef.current?.focus();
  }, [created, error]);

  if (roles.length === 0) {
    return (
      <section className="card" aria-labelledby="people-add">
        <h2 id="people-add">{t('add')}</h2>
        <p className="muted">{t('noGrantable')}</p>
      </section>
    );
  }

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!role) return;
    setBusy(true);
    setError(null);
    setCreated(null);
    try {
      const body = { email: email.trim(), name: name.trim(), role, locale };
      const r = await withReauth(() => api<{ user: Person; temporaryPassword: string }>('POST', `/orgs/${org.id}/users`, body));
      setCreated({ name: r.user.name, email: r.user.email, password: r.temporaryPassword });
      setEmail('');
      setName('');
      onCreated();
    } catch (err) {
      if (!isCancelled(err)) setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="card" aria-labelledby="people-add">
      <h2 id="people-add">{t('add')}</h2>
      <p className="muted">{t('addHelp')}</p>
      <div ref={resultRef} tabIndex={-1}>
        {error ? <ErrorBox error={error} /> : null}
        {created && (
          <>
            <div className="alert success" role="status">
              {t('created', { name: created.name })}
            </div>
            <TemporaryPassword name={created.name} email={created.email} password={created.password} onDone={() => setCreated(null)} />
          </>
        )}
      </div>
      <form onSubmit={(e) => void submit(e)}>
        <div className="people-form">
          <div>
            <label htmlFor="people-new-email">{t('email')}</label>
            <input id="people-new-email" type="email" value={email} onChange={(e) => setEmail(e.target.value)} required maxLength={254} autoComplete="off" spellCheck={false} />
          </div>
          <div>
            <label htmlFor="people-new-name">{t('fullName')}</label>
            <input id="people-new-name" value={name} onChange={(e) => setName(e.target.value)} required minLength={2} maxLength={100} autoComplete="off" />
          </div>
          <div>
            <label htmlFor="people-new-role">{t('role')}</label>
            <select id="people-new-role" value={role} onChange={(e) => setRole(e.target.value as Role)} aria-describedby="people-new-role-help" required>
              {roles.map((r) => (
                <option key={r} value={r}>
                  {tc(`role.${r}`)}
                </option>
              ))}
            </select>
            <p className="hint" id="people-new-role-help">
              {role ? t(`roleHelp.${role}`) : ''}
            </p>
          </div>
          <div>
            <label htmlFor="people-new-locale">{t('personLang')}</label>
            <select id="people-new-locale" value={locale} onChange={(e) => setLocale(e.target.value as 'fr' | 'en')}>
              <option value="fr">Français</option>
              <option value="en">English</option>
            </select>
          </div>
        </div>
        <div className="actions">
          <button type="submit" disabled={busy}>
            {busy ? t('creating') : t('create')}
          </button>
        </div>
      </form>
    </section>
  );
}

/* ------------------------------------------------------------------ contacts */

function ContactsSection({ org, onSaved, withReauth }: { org: Org; onSaved: () => void; withReauth: WithReauth }) {
  const t = useT(m);
  const me = useMe();
  const [editing, setEditing] = useState(false);
  const [saved, setSaved] = useState(false);
  const editButton = useRef<HTMLButtonElement>(null);
  const wasEditing = useRef(false);
  useEffect(() => {
    if (wasEditing.current && !editing) editButton.current?.focus();
    wasEditing.current = editing;
  }, [editing]);
  const r = org.incidentReferent;
  const value = (v: string | null) => (v ? v : <span className="muted">{t('notSet')}</span>);
  return (
    <section className="card" aria-labelledby="people-contacts">
      <div className="people-section-head">
        <h2 id="people-contacts">{t('contacts')}</h2>
        {can(me.role, 'orgs:update') && !editing && (
          <button
            type="button"
            ref={editButton}
            className="secondary people-small"
            onClick={() => {
              setSaved(false);
              setEditing(true);
            }}
          >
            {t('editContacts')}
          </button>
        )}
      </div>
      <p className="muted">{t('contactsHelp')}</p>
      {saved && (
        <div className="alert success" role="status">
          {t('contactsSaved')}
        </div>
      )}
      {editing ? (
        <ContactsForm
          org={org}
          withReauth={withReauth}
          onCancel={() => setEditing(false)}
          onSaved={() => {
            setEditing(false);
            setSaved(true);
            onSaved();
          }}
        />
      ) : (
        <dl className="people-dl">
          <dt>{t('alertEmail')}</dt>
          <dd>{value(org.alertEmail)}</dd>
          <dt>{t('referent')}</dt>
          <dd>
            {r.name || r.email || r.phone ? (
              <>
                {r.name && <div>{r.name}</div>}
                {r.email && <div>{r.email}</div>}
                {r.phone && <div>{r.phone}</div>}
              </>
            ) : (
              value(null)
            )}
          </dd>
        </dl>
      )}
    </section>
  );
}

function ContactsForm({ org, withReauth, onCancel, onSaved }: { org: Org; withReauth: WithReauth; onCancel: () => void; onSaved: () => void }) {
  const t = useT(m);
  const tc = useT(common);
  const [alertEmail, setAlertEmail] = useState(org.alertEmail ?? '');
  const [name, setName] = useState(org.incidentReferent.name ?? '');
  const [email, setEmail] = useState(org.incidentReferent.email ?? '');
  const [phone, setPhone] = useState(org.incidentReferent.phone ?? '');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const first = useRef<HTMLInputElement>(null);
  useEffect(() => first.current?.focus(), []);
  const orNull = (s: string) => (s.trim() === '' ? null : s.trim());
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const body = { alertEmail: orNull(alertEmail), referentName: orNull(name), referentEmail: orNull(email), referentPhone: orNull(phone) };
      await withReauth(() => api('PATCH', `/orgs/${org.id}`, body));
      onSaved();
    } catch (err) {
      if (!isCancelled(err)) setError(err);
      setBusy(false);
    }
  };
  return (
    <form onSubmit={(e) => void submit(e)}>
      {error ? <ErrorBox error={error} /> : null}
      <div className="people-form">
        <div>
          <label htmlFor="people-alert-email">{t('alertEmail')}</label>
          <input id="people-alert-email" ref={first} type="email" value={alertEmail} onChange={(e) => setAlertEmail(e.target.value)} maxLength={254} autoComplete="off" spellCheck={false} />
        </div>
        <div>
          <label htmlFor="people-ref-name">{t('referentName')}</label>
          <input id="people-ref-name" value={name} onChange={(e) => setName(e.target.value)} maxLength={200} autoComplete="off" />
        </div>
        <div>
          <label htmlFor="people-ref-email">{t('referentEmail')}</label>
          <input id="people-ref-email" type="email" value={email} onChange={(e) => setEmail(e.target.value)} maxLength={254} autoComplete="off" spellCheck={false} />
        </div>
        <div>
          <label htmlFor="people-ref-phone">{t('referentPhone')}</label>
          <input
            id="people-ref-phone"
            type="tel"
            value={phone}
            onChange={(e) => setPhone(e.target.value)}
            maxLength={40}
            pattern={'[0-9+\\(\\) .\\-]*'}
            aria-describedby="people-ref-phone-hint"
            autoComplete="off"
          />
          <p className="hint" id="people-ref-phone-hint">
            {t('phoneHint')}
          </p>
        </div>
      </div>
      <div className="actions">
        <button type="submit" disabled={busy}>
          {busy ? t('saving') : t('save')}
        </button>
        <button type="button" className="secondary" onClick={onCancel}>
          {tc('cancel')}
        </button>
      </div>
    </form>
  );
}

/* ------------------------------------------------------------------ access review */

function ReviewSection({
  org,
  state,
  onMarked,
  withReauth,
}: {
  org: Org;
  state: { data: Review | null | undefined; error: unknown; reload: () => void };
  onMarked: () => void;
  withReauth: WithReauth;
}) {
  const t = useT(m);
  const me = useMe();
  const f = useFormat();
  const [note, setNote] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [marked, setMarked] = useState(false);
  const mayMark = can(me.role, 'access-review:mark');

  const mark = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setMarked(false);
    try {
      const body = note.trim() ? { note: note.trim() } : {};
      await withReauth(() => api('POST', `/orgs/${org.id}/access-review`, body));
      setNote('');
      setMarked(true);
      onMarked();
    } catch (err) {
      if (!isCancelled(err)) setError(err);
    } finally {
      setBusy(false);
    }
  };

  let content: ReactNode;
  if (state.error) content = <ErrorBox error={state.error} onRetry={state.reload} />;
  else if (!state.data) content = <Loading />;
  else content = <ReviewBody review={state.data} />;

  return (
    <section className="card" aria-labelledby="people-review">
      <h2 id="people-review">{t('review')}</h2>
      <p className="muted">{t('reviewHelp')}</p>
      {content}
      {mayMark ? (
        <form className="people-review-mark" onSubmit={(e) => void mark(e)}>
          {error ? <ErrorBox error={error} /> : null}
          {marked && (
            <div className="alert success" role="status">
              {t('marked')}
            </div>
          )}
          <label htmlFor="people-review-note">{t('note')}</label>
          <textarea id="people-review-note" value={note} onChange={(e) => setNote(e.target.value)} maxLength={1000} aria-describedby="people-review-note-hint" />
          <p className="hint" id="people-review-note-hint">
            {t('noteHint')}
          </p>
          <div className="actions">
            <button type="submit" disabled={busy || !state.data}>
              {busy ? t('marking') : t('mark')}
            </button>
          </div>
        </form>
      ) : (
        state.data && <p className="muted">{t('reviewReadOnly')}</p>
      )}
      {state.data && <p className="hint">{t('generatedAt', { date: f.dateTime(state.data.generatedAt) })}</p>}
    </section>
  );
}

function ReviewBody({ review }: { review: Review }) {
  const t = useT(m);
  const tc = useT(common);
  const f = useFormat();
  const now = Date.parse(review.generatedAt);
  const noFactor = review.users.filter((u) => u.secondFactor === 'none' && u.status === 'active').length;
  const factorLabel = (s: ReviewRow['secondFactor']) =>
    s === 'totp+webauthn' ? t('factorBoth') : s === 'totp' ? t('factorTotp') : s === 'webauthn' ? t('factorKey') : null;
  return (
    <>
      <div className="people-review-status">
        {review.overdue ? <span className="badge warn">{t('reviewLate')}</span> : <span className="badge ok">{t('reviewOk')}</span>}
        <span>{t(review.overdue ? 'reviewDueLate' : 'reviewDue', { date: f.date(review.dueAt) })}</span>
        <span className="muted">
          {review.lastReview ? t('lastReview', { date: f.dateTime(review.lastReview.reviewedAt), name: review.lastReview.reviewerName ?? '—' }) : t('noReview')}
        </span>
      </div>
      {noFactor > 0 && (
        <div className="alert error" role="note">
          {noFactor === 1 ? t('noFactorNoteOne') : t('noFactorNote', { n: noFactor })}
        </div>
      )}
      <div className="table-wrap people-scroll">
        <table>
          <thead>
            <tr>
              <th scope="col">{t('colPerson')}</th>
              <th scope="col">{t('colEmail')}</th>
              <th scope="col">{t('colRole')}</th>
              <th scope="col">{t('colFactor')}</th>
              <th scope="col">{t('colLastLogin')}</th>
              <th scope="col">{t('colCreated')}</th>
              <th scope="col">{t('colAttention')}</th>
            </tr>
          </thead>
          <tbody>
            {review.users.map((u) => {
              const none = u.secondFactor === 'none';
              const flags: { text: string; tone: 'bad' | 'warn' | 'neutral' }[] = [];
              if (u.status !== 'active') flags.push({ text: t('flagDisabled'), tone: 'neutral' });
              if (none && u.status === 'active') flags.push({ text: t('flagNoFactor'), tone: 'bad' });
              if (u.status === 'active' && !u.lastLoginAt) flags.push({ text: t('flagNever'), tone: 'neutral' });
              else if (u.status === 'active' && u.lastLoginAt && now - Date.parse(u.lastLoginAt) > DORMANT_MS) flags.push({ text: t('flagDormant'), tone: 'warn' });
              return (
                <tr key={u.id} className={none && u.status === 'active' ? 'people-row-alert' : undefined}>
                  <td className="people-name">{u.name}</td>
                  <td className="people-email">{u.email}</td>
                  <td>{tc(`role.${u.role}`)}</td>
                  <td>{none ? <span className="badge bad">{t('factorNone')}</span> : factorLabel(u.secondFactor)}</td>
                  <td className="people-nowrap">{u.lastLoginAt ? f.dateTime(u.lastLoginAt) : <span className="muted">{t('never')}</span>}</td>
                  <td className="people-nowrap">{f.date(u.createdAt)}</td>
                  <td>
                    <span className="people-badges">
                      {flags.map((x) => (
                        <span key={x.text} className={`badge ${x.tone}`}>
                          {x.text}
                        </span>
                      ))}
                    </span>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </>
  );
}
