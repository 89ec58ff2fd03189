import { useState } from 'react';
import { api } from '../api';
import { isReauthCancelled, useReauth } from '../components/ReauthDialog';
import { ErrorBox, Loaded, useLoad } from '../components/Async';
import { common } from '../i18n/common';
import { DEFAULT_TIME_ZONE, defineMessages, useFormat, useLang, useT } from '../i18n/i18n';
import { useMe } from '../session';

const m = defineMessages({
  fr: {
    title: 'Mon compte',
    identity: 'Identité',
    email: 'E-mail :',
    role: 'Rôle :',
    organisation: 'Organisation :',
    display: 'Affichage',
    timeZone: 'Fuseau horaire des dates',
    sessions: 'Mes sessions ouvertes',
    sessionsHelp: "Chaque connexion ouvre une session. Fermez celles que vous ne reconnaissez pas : l'appareil concerné devra se reconnecter.",
    started: 'Ouverte le',
    lastSeen: 'Dernière activité',
    expires: 'Expire le',
    from: 'Depuis',
    device: 'Navigateur',
    current: 'Cette session',
    end: 'Fermer la session',
    ended: 'Session fermée.',
    factors: 'Second facteur',
    totpOn: "Application d'authentification : activée",
    totpOff: "Application d'authentification : non configurée",
    keys: 'Clés de sécurité : {n}',
    codesLeft: 'Codes de secours restants : {n}',
    renew: 'Générer de nouveaux codes de secours',
    newCodes: 'Vos nouveaux codes de secours (les anciens ne fonctionnent plus). Notez-les maintenant : ils ne seront plus affichés.',
  },
  en: {
    title: 'My account',
    identity: 'Identity',
    email: 'Email:',
    role: 'Role:',
    organisation: 'Organisation:',
    display: 'Display',
    timeZone: 'Time zone for dates',
    sessions: 'My open sessions',
    sessionsHelp: 'Each sign-in opens a session. End the ones you do not recognise: that device will have to sign in again.',
    started: 'Opened',
    lastSeen: 'Last activity',
    expires: 'Expires',
    from: 'From',
    device: 'Browser',
    current: 'This session',
    end: 'End session',
    ended: 'Session ended.',
    factors: 'Second factor',
    totpOn: 'Authenticator app: on',
    totpOff: 'Authenticator app: not set up',
    keys: 'Security keys: {n}',
    codesLeft: 'Recovery codes left: {n}',
    renew: 'Generate new recovery codes',
    newCodes: 'Your new recovery codes (the old ones no longer work). Write them down now: they will not be shown again.',
  },
});

interface SessionRow {
  id: string;
  current: boolean;
  createdAt: string;
  lastSeenAt: string;
  expiresAt: string;
  ip: string | null;
  userAgent: string | null;
}

const ZONES = [DEFAULT_TIME_ZONE, 'Europe/Brussels', 'Europe/Zurich', 'Europe/Luxembourg', 'America/Guadeloupe', 'America/Martinique', 'America/Cayenne', 'Indian/Reunion', 'Indian/Mayotte', 'Pacific/Noumea', 'Pacific/Tahiti', 'UTC'];

/** A person's own account: identity, display time zone, second factors, open sessions (list and end). */
export function AccountPage() {
  const { withReauth, dialog } = useReauth();
  const t = useT(m);
  const tc = useT(common);
  const me = useMe();
  const f = useFormat();
  const { timeZone, setTimeZone } = useLang();
  const sessions = useLoad(() => api<{ sessions: SessionRow[] }>('GET', '/me/sessions'), []);
  const [notice, setNotice] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [codes, setCodes] = useState<string[] | null>(null);

  const end = async (id: string) => {
    setError(null);
    try {
      await api('DELETE', `/me/sessions/${id}`);
      setNotice(t('ended'));
      sessions.reload();
    } catch (e) {
      setError(e);
    }
  };
  const renew = async () => {
    setError(null);
    try {
      const r = await withReauth(() => api<{ recoveryCodes: string[] }>('POST', '/me/recovery-codes'));
      setCodes(r.recoveryCodes);
    } catch (e) {
      if (!isReauthCancelled(e)) setError(e);
    }
  };

  return (
    <>
      {dialog}
      <h1>{t('title')}</h1>
      {error ? <ErrorBox error={error} /> : null}
      {notice && <div className="alert success" role="status">{notice}</div>}
      <section className="card" aria-labelledby="acc-identity">
        <h2 id="acc-identity">{t('identity')}</h2>
        <p>
          <strong>{me.name}</strong>
          <br />
          {t('email')} {me.email}
          <br />
          {t('role')} {tc(`role.${me.role}`)}
          {me.org ? (
            <>
              <br />
              {t('organisation')} {me.org.name}
            </>
          ) : null}
        </p>
      </section>
      <section className="card" aria-labelledby="acc-display">
        <h2 id="acc-display">{t('display')}</h2>
        <label htmlFor="acc-tz">{t('timeZone')}</label>
        <select id="acc-tz" value={timeZone} onChange={(e) => setTimeZone(e.target.value)}>
          {ZONES.map((z) => (
            <option key={z} value={z}>
              {z}
            </option>
          ))}
        </select>
      </section>
      <section className="card" aria-labelledby="acc-factors">
        <h2 id="acc-factors">{t('factors')}</h2>
        <ul>
          <li>{me.secondFactors.totp ? t('totpOn') : t('totpOff')}</li>
          <li>{t('keys', { n: me.secondFactors.webauthn })}</li>
          <li>{t('codesLeft', { n: me.secondFactors.recoveryCodesLeft })}</li>
        </ul>
        <button type="button" className="secondary" onClick={() => void renew()}>
          {t('renew')}
        </button>
        {codes && (
          <div className="alert info" role="status">
            <p>{t('newCodes')}</p>
            <ul className="codes" data-testid="recovery-codes">
              {codes.map((c) => (
                <li key={c}>{c}</li>
              ))}
            </ul>
          </div>
        )}
      </section>
      <section className="card" aria-labelledby="acc-sessions">
        <h2 id="acc-sessions">{t('sessions')}</h2>
        <p className="muted">{t('sessionsHelp')}</p>
        <Loaded state={sessions}>
          {(d) => (
            <div className="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th scope="col">{t('started')}</th>
                    <th scope="col">{t('lastSeen')}</th>
                    <th scope="col" className="hide-narrow">{t('expires')}</th>
                    <th scope="col">{t('from')}</th>
                    <th scope="col" className="hide-narrow">{t('device')}</th>
                    <th scope="col"><span className="cf-sr">{t('end')}</span></th>
                  </tr>
                </thead>
                <tbody>
                  {d.sessions.map((s) => (
                    <tr key={s.id}>
                      <td>{f.dateTime(s.createdAt)}</td>
                      <td>{f.dateTime(s.lastSeenAt)}</td>
                      <td className="hide-narrow">{f.dateTime(s.expiresAt)}</td>
                      <td className="mono">{s.ip ?? '—'}</td>
                      <td className="hide-narrow">{s.userAgent ? s.userAgent.slice(0, 60) : '—'}</td>
                      <td>
                        {s.current ? (
                          <span className="badge ok">{t('current')}</span>
                        ) : (
                          <button type="button" className="secondary" onClick={() => void end(s.id)} aria-label={`${t('end')} (${f.dateTime(s.createdAt)}, ${s.ip ?? ''})`}>
                            {t('end')}
                          </button>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </Loaded>
      </section>
    </>
  );
}
