import { useCallback, useEffect, useId, useRef, useState, type FormEvent, type ReactNode } from 'react';
import { CodeField } from '../components/CodeField';
import QRCode from 'qrcode';
import { api, ApiFailure } from '../api';
import { CopyButton } from '../components/CopyButton';
import { LangSwitch } from '../components/LangSwitch';
import { createCredential, getAssertion, webauthnErrorKind, webauthnSupported, type CreationOptionsJSON, type RequestOptionsJSON } from '../components/webauthn';
import { common } from '../i18n/common';
import { defineMessages, useLang, useT, type Lang } from '../i18n/i18n';
import { useSession, type Me, type SessionInfo } from '../session';
import '../components/console-ui.css';

/**
 * Everything before the console proper: password, second factor, and the first sign-in's
 * set-up (new password, authenticator app or security key, recovery codes shown once).
 * The step follows the session's stage from the server; `refresh()` moves on after each step.
 */
const m = defineMessages({
  fr: {
    tagline: 'Sauvegardes chiffrées de bout en bout pour les cabinets de santé',
    signInTitle: 'Connexion',
    signInLead: 'Accédez à la console de supervision de vos sauvegardes.',
    email: 'Adresse e-mail',
    password: 'Mot de passe',
    signIn: 'Se connecter',
    signingIn: 'Connexion…',
    waitRetry: 'Trop de tentatives. Réessayez dans {n} s.',
    twoStepTitle: 'Vérification en deux étapes',
    twoStepLeadTotp: "Saisissez le code à 6 chiffres affiché par votre application d'authentification.",
    twoStepLeadKey: 'Confirmez votre connexion avec votre clé de sécurité.',
    twoStepLeadRecovery: "Saisissez l'un de vos codes de secours. Chaque code ne fonctionne qu'une fois.",
    code: 'Code de vérification',
    recoveryCode: 'Code de secours',
    recoveryFormat: 'Format : xxxx-xxxx-xxxx (majuscules, espaces et tirets indifférents).',
    verify: 'Valider',
    verifying: 'Vérification…',
    useKey: 'Utiliser une clé de sécurité',
    useRecovery: 'Utiliser un code de secours',
    useTotp: "Utiliser l'application d'authentification",
    keyWaiting: 'Touchez votre clé de sécurité lorsque le navigateur le demande…',
    keyCancelled: "La clé n'a pas répondu ou l'opération a été annulée. Réessayez.",
    keyUnsupported: 'Ce navigateur ne prend pas en charge les clés de sécurité.',
    keyKnown: 'Cette clé est déjà enregistrée sur votre compte.',
    keySecurity: "Les clés de sécurité ne fonctionnent qu'à l'adresse habituelle de la console (nom de domaine en HTTPS).",
    notYou: "Ce n'est pas votre compte ?",
    switchAccount: 'Changer de compte',
    signedInAs: 'Connecté en tant que {email}',
    stepPassword: 'Mot de passe',
    stepFactor: 'Second facteur',
    stepCodes: 'Codes de secours',
    stepOf: 'Étape {n} sur {total}',
    pwTitle: 'Choisissez votre mot de passe',
    pwLead: 'Remplacez le mot de passe temporaire qui vous a été communiqué par un mot de passe personnel.',
    currentPassword: 'Mot de passe actuel',
    newPassword: 'Nouveau mot de passe',
    confirmPassword: 'Confirmer le nouveau mot de passe',
    pwHint: 'Au moins 12 caractères. Quelques mots sans rapport entre eux font un bon mot de passe : facile à retenir, difficile à deviner.',
    pwMismatch: 'Les deux saisies du nouveau mot de passe ne sont pas identiques.',
    changePassword: 'Changer le mot de passe',
    changing: 'Enregistrement…',
    factorTitle: 'Protégez votre compte',
    factorLead: 'Un second facteur est obligatoire : à chaque connexion, il vous sera demandé en plus du mot de passe. Choisissez une méthode.',
    totpTitle: "Application d'authentification",
    totpApps: 'Par exemple Microsoft Authenticator, Google Authenticator, FreeOTP ou 2FAS, sur votre téléphone.',
    totpScan: "Scannez ce QR code avec l'application.",
    qrAlt: 'QR code à scanner',
    totpManual: 'Ou saisissez cette clé dans l’application :',
    copySecret: 'Copier la clé',
    totpEnter: "Saisissez le code à 6 chiffres qu'elle affiche.",
    activate: 'Activer',
    activating: 'Activation…',
    preparing: 'Préparation de la configuration…',
    restarted: "La configuration a été relancée : scannez le nouveau QR code.",
    keyTitle: 'Clé de sécurité',
    keyLead: 'Une clé USB ou NFC (YubiKey, SoloKey…) ou le capteur d’empreinte de cet appareil.',
    keyName: 'Nom de la clé (facultatif)',
    keyNameHint: 'Pour la reconnaître plus tard, par exemple « YubiKey bleue ».',
    registerKey: 'Enregistrer une clé de sécurité',
    or: 'ou',
    codesTitle: 'Codes de secours',
    codesLead:
      'Si vous perdez votre téléphone ou votre clé, chacun de ces codes permet de vous connecter une fois. Ils ne seront plus jamais affichés : imprimez-les ou recopiez-les maintenant, et rangez-les en lieu sûr, hors de cet ordinateur.',
    codesFor: 'Codes de secours coffre — {email}',
    copyCodes: 'Copier les codes',
    print: 'Imprimer',
    codesDone: "J'ai noté mes codes",
    continuing: 'Ouverture de la console…',
    stuck: 'Votre compte est prêt.',
    continue: 'Continuer',
  },
  en: {
    tagline: 'End-to-end encrypted backups for health practices',
    signInTitle: 'Sign in',
    signInLead: 'Access the console that supervises your backups.',
    email: 'Email address',
    password: 'Password',
    signIn: 'Sign in',
    signingIn: 'Signing in…',
    waitRetry: 'Too many attempts. Try again in {n} s.',
    twoStepTitle: 'Two-step verification',
    twoStepLeadTotp: 'Enter the 6-digit code shown by your authenticator app.',
    twoStepLeadKey: 'Confirm your sign-in with your security key.',
    twoStepLeadRecovery: 'Enter one of your recovery codes. Each code works only once.',
    code: 'Verification code',
    recoveryCode: 'Recovery code',
    recoveryFormat: 'Format: xxxx-xxxx-xxxx (case, spaces and dashes do not matter).',
    verify: 'Verify',
    verifying: 'Checking…',
    useKey: 'Use a security key',
    useRecovery: 'Use a recovery code',
    useTotp: 'Use the authenticator app',
    keyWaiting: 'Touch your security key when the browser asks…',
    keyCancelled: 'The key did not answer or the operation was cancelled. Try again.',
    keyUnsupported: 'This browser does not support security keys.',
    keyKnown: 'This key is already registered on your account.',
    keySecurity: "Security keys only work at the console's usual address (a domain name over HTTPS).",
    notYou: 'Not your account?',
    switchAccount: 'Switch account',
    signedInAs: 'Signed in as {email}',
    stepPassword: 'Password',
    stepFactor: 'Second factor',
    stepCodes: 'Recovery codes',
    stepOf: 'Step {n} of {total}',
    pwTitle: 'Choose your password',
    pwLead: 'Replace the temporary password you were given with a personal one.',
    currentPassword: 'Current password',
    newPassword: 'New password',
    confirmPassword: 'Confirm the new password',
    pwHint: 'At least 12 characters. A few unrelated words make a good password: easy to remember, hard to guess.',
    pwMismatch: 'The two entries of the new password differ.',
    changePassword: 'Change password',
    changing: 'Saving…',
    factorTitle: 'Protect your account',
    factorLead: 'A second factor is required: every sign-in will ask for it on top of the password. Choose a method.',
    totpTitle: 'Authenticator app',
    totpApps: 'For example Microsoft Authenticator, Google Authenticator, FreeOTP or 2FAS, on your phone.',
    totpScan: 'Scan this QR code with the app.',
    qrAlt: 'QR code to scan',
    totpManual: 'Or type this key into the app:',
    copySecret: 'Copy the key',
    totpEnter: 'Enter the 6-digit code it shows.',
    activate: 'Activate',
    activating: 'Activating…',
    preparing: 'Preparing the set-up…',
    restarted: 'The set-up was restarted: scan the new QR code.',
    keyTitle: 'Security key',
    keyLead: "A USB or NFC key (YubiKey, SoloKey…) or this device's fingerprint reader.",
    keyName: 'Key name (optional)',
    keyNameHint: 'To recognise it later, e.g. "blue YubiKey".',
    registerKey: 'Register a security key',
    or: 'or',
    codesTitle: 'Recovery codes',
    codesLead:
      'If you lose your phone or your key, each of these codes signs you in once. They will never be shown again: print them or write them down now, and keep them somewhere safe, away from this computer.',
    codesFor: 'coffre recovery codes — {email}',
    copyCodes: 'Copy the codes',
    print: 'Print',
    codesDone: 'I have saved my codes',
    continuing: 'Opening the console…',
    stuck: 'Your account is ready.',
    continue: 'Continue',
  },
});

function errorText(e: unknown, lang: Lang, fallback: string): string {
  return e instanceof ApiFailure ? e.text(lang) : fallback;
}

/** Seconds to wait after a 429, counting down; 0 when free to try again. */
function useRetryAfter(): [number, (e: unknown) => boolean] {
  const [until, setUntil] = useState(0);
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (until <= Date.now()) return;
    const id = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(id);
  }, [until]);
  const left = Math.max(0, Math.ceil((until - now) / 1000));
  const take = useCallback((e: unknown): boolean => {
    if (!(e instanceof ApiFailure && e.code === 'TOO_MANY_ATTEMPTS')) return false;
    const s = Number(e.details?.retryAfterSeconds ?? 0);
    const n = Date.now();
    setNow(n);
    setUntil(n + (Number.isFinite(s) && s > 0 ? s : 5) * 1000);
    return true;
  }, []);
  return [left, take];
}

export function SignInFlow() {
  const { session, expired, refresh } = useSession();
  // A 401 from a set-up call (wrong current password, wrong code) makes the app believe the
  // session ended; while such a call runs we keep showing the step, then ask the server.
  const [hold, setHold] = useState<SessionInfo | null>(null);
  const [codes, setCodes] = useState<string[] | null>(null);
  const [sawPasswordStep, setSawPasswordStep] = useState(false);
  const current = session ?? hold;

  const guarded = useCallback(
    async <R,>(call: () => Promise<R>): Promise<R> => {
      setHold(session ?? null);
      try {
        return await call();
      } catch (e) {
        if (e instanceof ApiFailure && e.status === 401) await refresh().catch(() => undefined);
        throw e;
      } finally {
        setHold(null);
      }
    },
    [session, refresh],
  );

  const needsPassword = current?.stage === 'setup' && current.user.mustChangePassword;
  useEffect(() => {
    if (needsPassword) setSawPasswordStep(true);
  }, [needsPassword]);

  let body: ReactNode;
  let wide = false;
  if (codes && current) {
    body = <RecoveryCodesStep codes={codes} me={current.user} steps={<SetupSteps withPassword={sawPasswordStep} at="codes" />} />;
  } else if (!current) {
    body = <PasswordStep expired={expired} />;
  } else if (current.stage === 'second-factor') {
    body = <SecondFactorStep me={current.user} />;
  } else if (current.stage === 'setup' && current.user.mustChangePassword) {
    body = <ChangePasswordStep guarded={guarded} steps={<SetupSteps withPassword={needsPassword || sawPasswordStep} at="password" />} />;
  } else if (current.stage === 'setup') {
    wide = true;
    body = <FactorStep me={current.user} guarded={guarded} onCodes={setCodes} steps={<SetupSteps withPassword={sawPasswordStep} at="factor" />} />;
  } else {
    body = <ReadyStep />;
  }
  return <AuthShell wide={wide}>{body}</AuthShell>;
}

function AuthShell({ children, wide }: { children: ReactNode; wide?: boolean }) {
  const t = useT(m);
  return (
    <div className="cf-auth">
      <header className={`cf-auth-top${wide ? ' wide' : ''}`}>
        <span className="cf-logo">
          <span className="cf-logo-mark" aria-hidden="true">
            c
          </span>
          coffre
        </span>
        <LangSwitch />
      </header>
      <main id="main" className={`cf-auth-main${wide ? ' wide' : ''}`}>
        <div className="card">{children}</div>
        <p className="cf-foot">{t('tagline')}</p>
      </main>
    </div>
  );
}

function SetupSteps({ withPassword, at }: { withPassword: boolean; at: 'password' | 'factor' | 'codes' }) {
  const t = useT(m);
  const steps: { id: typeof at; label: string }[] = [
    ...(withPassword ? [{ id: 'password' as const, label: t('stepPassword') }] : []),
    { id: 'factor', label: t('stepFactor') },
    { id: 'codes', label: t('stepCodes') },
  ];
  const index = steps.findIndex((s) => s.id === at);
  return (
    <ol className="cf-steps" aria-label={t('stepOf', { n: index + 1, total: steps.length })}>
      {steps.map((s, i) => (
        <li key={s.id} aria-current={i === index ? 'step' : undefined} className={i < index ? 'done' : undefined}>
          <span className="n" aria-hidden="true">
            {i < index ? '✓' : i + 1}
          </span>
          <span className="label">{s.label}</span>
        </li>
      ))}
    </ol>
  );
}

function ErrorAlert({ children, id }: { children: ReactNode; id?: string }) {
  return (
    <div className="alert error" role="alert" id={id}>
      {children}
    </div>
  );
}

// ---------------------------------------------------------------- password

function PasswordStep({ expired }: { expired: boolean }) {
  const t = useT(m);
  const tc = useT(common);
  const { lang } = useLang();
  const { refresh } = useSession();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [wait, takeWait] = useRetryAfter();
  const passwordRef = useRef<HTMLInputElement>(null);
  const errorId = useId();

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (busy || wait > 0) return;
    setBusy(true);
    setError(null);
    try {
      await api('POST', '/auth/login', { email: email.trim(), password });
      await refresh();
    } catch (err) {
      takeWait(err);
      setError(err);
      setPassword('');
      setBusy(false);
      setTimeout(() => passwordRef.current?.focus(), 0);
    }
  };

  const tooMany = error instanceof ApiFailure && error.code === 'TOO_MANY_ATTEMPTS';
  return (
    <>
      <h1>{t('signInTitle')}</h1>
      <p className="cf-lead">{t('signInLead')}</p>
      {expired && !error && (
        <div className="alert info" role="status">
          {tc('sessionExpired')}
        </div>
      )}
      {error ? <ErrorAlert id={errorId}>{tooMany && wait > 0 ? t('waitRetry', { n: wait }) : errorText(error, lang, tc('error'))}</ErrorAlert> : null}
      <form onSubmit={(e) => void submit(e)}>
        <label htmlFor="signin-email">{t('email')}</label>
        <input
          id="signin-email"
          type="email"
          autoComplete="username"
          autoFocus
          value={email}
          onChange={(e) => setEmail(e.target.value)}
          required
          spellCheck={false}
          autoCapitalize="none"
          aria-describedby={error ? errorId : undefined}
        />
        <label htmlFor="signin-password">{t('password')}</label>
        <input
          id="signin-password"
          ref={passwordRef}
          type="password"
          autoComplete="current-password"
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          required
          aria-describedby={error ? errorId : undefined}
        />
        <button type="submit" disabled={busy || wait > 0}>
          {busy ? t('signingIn') : t('signIn')}
        </button>
      </form>
    </>
  );
}

// ---------------------------------------------------------------- second factor

type ProofMode = 'totp' | 'recovery';

function SecondFactorStep({ me }: { me: Me }) {
  const t = useT(m);
  const tc = useT(common);
  const { lang } = useLang();
  const { refresh, signOut } = useSession();
  const hasKey = me.secondFactors.webauthn > 0;
  const keyUsable = hasKey && webauthnSupported();
  const [mode, setMode] = useState<ProofMode>(me.secondFactors.totp || !hasKey ? 'totp' : 'recovery');
  const [onlyKey] = useState(!me.secondFactors.totp && hasKey);
  const [showCodeForm, setShowCodeForm] = useState(!onlyKey);
  const [code, setCode] = useState('');
  const [busy, setBusy] = useState<null | 'code' | 'key'>(null);
  const [error, setError] = useState<string | null>(null);
  const [wait, takeWait] = useRetryAfter();
  const inputRef = useRef<HTMLInputElement>(null);
  const hintId = useId();

  const done = async () => {
    await refresh();
  };

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (busy || wait > 0) return;
    setBusy('code');
    setError(null);
    try {
      if (mode === 'recovery') await api('POST', '/auth/second-factor/recovery-code', { code: code.trim() });
      else await api('POST', '/auth/second-factor/totp', { code: code.replace(/\s+/g, '') });
      await done();
    } catch (err) {
      takeWait(err);
      setError(errorText(err, lang, tc('error')));
      setCode('');
      setBusy(null);
      setTimeout(() => inputRef.current?.focus(), 0);
    }
  };

  const withKey = async () => {
    if (busy) return;
    if (!keyUsable) {
      setError(t('keyUnsupported'));
      return;
    }
    setBusy('key');
    setError(null);
    try {
      const options = await api<RequestOptionsJSON>('POST', '/auth/second-factor/webauthn/options');
      const response = await getAssertion(options);
      await api('POST', '/auth/second-factor/webauthn', { response });
      await done();
    } catch (err) {
      takeWait(err);
      setBusy(null);
      if (err instanceof ApiFailure) setError(err.text(lang));
      else {
        const kind = webauthnErrorKind(err);
        setError(kind === 'unsupported' ? t('keyUnsupported') : kind === 'security' ? t('keySecurity') : t('keyCancelled'));
      }
    }
  };

  const switchTo = (next: ProofMode) => {
    setMode(next);
    setShowCodeForm(true);
    setError(null);
    setCode('');
    setTimeout(() => inputRef.current?.focus(), 0);
  };

  const lead = !showCodeForm ? t('twoStepLeadKey') : mode === 'totp' ? t('twoStepLeadTotp') : t('twoStepLeadRecovery');
  return (
    <>
      <h1>{t('twoStepTitle')}</h1>
      <p className="cf-lead">{lead}</p>
      {error && <ErrorAlert>{wait > 0 ? `${error} ${t('waitRetry', { n: wait })}` : error}</ErrorAlert>}
      {busy === 'key' && (
        <div className="alert info" role="status">
          {t('keyWaiting')}
        </div>
      )}
      {showCodeForm ? (
        <form onSubmit={(e) => void submit(e)}>
          <label htmlFor="second-factor-code">{mode === 'totp' ? t('code') : t('recoveryCode')}</label>
          <CodeField
            mode={mode}
            id="second-factor-code"
            inputRef={inputRef}
            value={code}
            onChange={(e) => setCode(e.target.value)}
            autoFocus
            aria-describedby={mode === 'recovery' ? hintId : undefined}
          />
          {mode === 'recovery' && (
            <p className="cf-hint" id={hintId}>
              {t('recoveryFormat')}
            </p>
          )}
          <button type="submit" disabled={busy !== null || wait > 0}>
            {busy === 'code' ? t('verifying') : t('verify')}
          </button>
        </form>
      ) : (
        <button type="button" className="cf-primary" onClick={() => void withKey()} disabled={busy !== null}>
          {t('useKey')}
        </button>
      )}
      <div className="cf-alt">
        {hasKey && showCodeForm && (
          <button type="button" className="link" onClick={() => void withKey()} disabled={busy !== null}>
            {t('useKey')}
          </button>
        )}
        {mode === 'recovery' && me.secondFactors.totp && (
          <button type="button" className="link" onClick={() => switchTo('totp')}>
            {t('useTotp')}
          </button>
        )}
        {(mode !== 'recovery' || !showCodeForm) && (
          <button type="button" className="link" onClick={() => switchTo('recovery')}>
            {t('useRecovery')}
          </button>
        )}
        <span className="muted cf-small">
          {t('signedInAs', { email: me.email })} · {t('notYou')}{' '}
          <button type="button" className="link" onClick={() => void signOut()}>
            {t('switchAccount')}
          </button>
        </span>
      </div>
    </>
  );
}

// ---------------------------------------------------------------- set-up: password

interface StepProps {
  readonly guarded: <R>(call: () => Promise<R>) => Promise<R>;
  readonly steps: ReactNode;
}

function ChangePasswordStep({ guarded, steps }: StepProps) {
  const t = useT(m);
  const tc = useT(common);
  const { lang } = useLang();
  const { refresh } = useSession();
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [again, setAgain] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<{ text: string; problems: string[]; field: 'current' | 'next' } | null>(null);
  const [wait, takeWait] = useRetryAfter();
  const currentRef = useRef<HTMLInputElement>(null);
  const nextRef = useRef<HTMLInputElement>(null);
  const hintId = useId();
  const errorId = useId();

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (busy) return;
    if (next !== again) {
      setError({ text: t('pwMismatch'), problems: [], field: 'next' });
      setAgain('');
      nextRef.current?.focus();
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await guarded(() => api('POST', '/me/password', { currentPassword: current, newPassword: next }));
      await refresh();
    } catch (err) {
      takeWait(err);
      const raw = err instanceof ApiFailure ? err.details?.messages : undefined;
      const problems = Array.isArray(raw) ? raw.map((p: { en?: string; fr?: string }) => (lang === 'fr' ? p.fr : p.en) ?? '').filter((s) => s !== '') : [];
      const wrongCurrent = err instanceof ApiFailure && err.status === 401;
      setError({ text: errorText(err, lang, tc('error')), problems, field: wrongCurrent ? 'current' : 'next' });
      setBusy(false);
      if (wrongCurrent) {
        setCurrent('');
        setTimeout(() => currentRef.current?.focus(), 0);
      } else {
        setTimeout(() => nextRef.current?.focus(), 0);
      }
    }
  };

  return (
    <>
      {steps}
      <h1>{t('pwTitle')}</h1>
      <p className="cf-lead">{t('pwLead')}</p>
      {error && (
        <ErrorAlert id={errorId}>
          {error.text}
          {wait > 0 ? ` ${t('waitRetry', { n: wait })}` : ''}
          {error.problems.length > 0 && (
            <ul className="cf-problems">
              {error.problems.map((p) => (
                <li key={p}>{p}</li>
              ))}
            </ul>
          )}
        </ErrorAlert>
      )}
      <form onSubmit={(e) => void submit(e)}>
        <label htmlFor="pw-current">{t('currentPassword')}</label>
        <input
          id="pw-current"
          ref={currentRef}
          type="password"
          autoComplete="current-password"
          value={current}
          onChange={(e) => setCurrent(e.target.value)}
          required
          aria-invalid={error?.field === 'current' ? true : undefined}
          aria-describedby={error?.field === 'current' ? errorId : undefined}
        />
        <label htmlFor="pw-new">{t('newPassword')}</label>
        <input
          id="pw-new"
          ref={nextRef}
          type="password"
          autoComplete="new-password"
          value={next}
          onChange={(e) => setNext(e.target.value)}
          required
          aria-invalid={error?.field === 'next' ? true : undefined}
          aria-describedby={error?.field === 'next' ? `${errorId} ${hintId}` : hintId}
        />
        <p className="cf-hint" id={hintId}>
          {t('pwHint')}
        </p>
        <label htmlFor="pw-again">{t('confirmPassword')}</label>
        <input id="pw-again" type="password" autoComplete="new-password" value={again} onChange={(e) => setAgain(e.target.value)} required />
        <button type="submit" disabled={busy || wait > 0}>
          {busy ? t('changing') : t('changePassword')}
        </button>
      </form>
    </>
  );
}

// ---------------------------------------------------------------- set-up: second factor

interface TotpSetup {
  readonly secret: string;
  readonly otpauthUri: string;
  readonly qr: string;
}

function groupBy4(s: string): string {
  return (s.match(/.{1,4}/g) ?? []).join(' ');
}

function FactorStep({ me, guarded, onCodes, steps }: StepProps & { me: Me; onCodes: (codes: string[]) => void }) {
  const t = useT(m);
  const tc = useT(common);
  const { lang } = useLang();
  const { refresh } = useSession();
  const [setup, setSetup] = useState<TotpSetup | null>(null);
  const [setupError, setSetupError] = useState<unknown>(null);
  const [generation, setGeneration] = useState(0);
  const [notice, setNotice] = useState<string | null>(null);
  const [code, setCode] = useState('');
  const [busy, setBusy] = useState<null | 'totp' | 'key'>(null);
  const [totpError, setTotpError] = useState<string | null>(null);
  const [keyName, setKeyName] = useState('');
  const [keyError, setKeyError] = useState<string | null>(null);
  const [wait, takeWait] = useRetryAfter();
  const codeRef = useRef<HTMLInputElement>(null);
  // One set-up request per generation, even when React runs the effect twice (StrictMode).
  const started = useRef<{ generation: number; promise: Promise<TotpSetup> } | null>(null);
  const totpTitleId = useId();
  const keyTitleId = useId();
  const keyHintId = useId();

  useEffect(() => {
    let live = true;
    if (!started.current || started.current.generation !== generation) {
      const promise = api<{ secret: string; otpauthUri: string }>('POST', '/me/totp/setup').then(async (r) => ({
        ...r,
        qr: await QRCode.toDataURL(r.otpauthUri, { margin: 1, width: 368, errorCorrectionLevel: 'M', color: { dark: '#0f1b24', light: '#ffffff' } }),
      }));
      started.current = { generation, promise };
    }
    started.current.promise.then(
      (s) => live && setSetup(s),
      (e: unknown) => live && setSetupError(e),
    );
    return () => {
      live = false;
    };
  }, [generation]);

  const restart = () => {
    setSetup(null);
    setSetupError(null);
    setCode('');
    setGeneration((g) => g + 1);
  };

  const confirmTotp = async (e: FormEvent) => {
    e.preventDefault();
    if (busy || wait > 0) return;
    setBusy('totp');
    setTotpError(null);
    setNotice(null);
    try {
      const r = await guarded(() => api<{ recoveryCodes: string[] }>('POST', '/me/totp/confirm', { code: code.replace(/\s+/g, '') }));
      onCodes(r.recoveryCodes);
    } catch (err) {
      takeWait(err);
      setBusy(null);
      setCode('');
      if (err instanceof ApiFailure && err.code === 'CONFLICT') {
        setNotice(t('restarted'));
        restart();
        return;
      }
      setTotpError(errorText(err, lang, tc('error')));
      setTimeout(() => codeRef.current?.focus(), 0);
    }
  };

  const registerKey = async () => {
    if (busy) return;
    setBusy('key');
    setKeyError(null);
    try {
      const options = await guarded(() => api<CreationOptionsJSON>('POST', '/me/webauthn/register/options'));
      const response = await createCredential(options);
      const name = keyName.trim();
      const r = await guarded(() => api<{ recoveryCodes?: string[] }>('POST', '/me/webauthn/register', { response, ...(name ? { name } : {}) }));
      if (r.recoveryCodes) onCodes(r.recoveryCodes);
      else await refresh();
    } catch (err) {
      setBusy(null);
      if (err instanceof ApiFailure) setKeyError(err.text(lang));
      else {
        const kind = webauthnErrorKind(err);
        setKeyError(
          kind === 'already-registered' ? t('keyKnown') : kind === 'unsupported' ? t('keyUnsupported') : kind === 'security' ? t('keySecurity') : t('keyCancelled'),
        );
      }
    }
  };

  return (
    <>
      {steps}
      <h1>{t('factorTitle')}</h1>
      <p className="cf-lead">{t('factorLead')}</p>

      {setupError ? (
        <ErrorAlert>
          {errorText(setupError, lang, tc('error'))}{' '}
          <button type="button" className="link" onClick={restart}>
            {tc('retry')}
          </button>
        </ErrorAlert>
      ) : !setup ? (
        <p className="muted" role="status">
          {t('preparing')}
        </p>
      ) : (
        <section className="cf-method" aria-labelledby={totpTitleId}>
          <h2 id={totpTitleId}>{t('totpTitle')}</h2>
          <p className="muted cf-small">{t('totpApps')}</p>
          {notice && (
            <div className="alert info" role="status">
              {notice}
            </div>
          )}
          <ol>
            <li>
              {t('totpScan')}
              <div className="cf-qr-row">
                <img className="cf-qr" src={setup.qr} alt={t('qrAlt')} width={184} height={184} />
                <div className="cf-qr-side">
                  <p className="cf-small">{t('totpManual')}</p>
                  <p>
                    <code className="cf-secret" data-testid="totp-secret">
                      {groupBy4(setup.secret)}
                    </code>
                  </p>
                  <div className="inline">
                    <CopyButton text={setup.secret} label={t('copySecret')} className="secondary cf-small-btn" />
                  </div>
                </div>
              </div>
            </li>
            <li>
              {t('totpEnter')}
              {totpError && <ErrorAlert>{wait > 0 ? `${totpError} ${t('waitRetry', { n: wait })}` : totpError}</ErrorAlert>}
              <form onSubmit={(e) => void confirmTotp(e)} className="inline cf-inline-form">
                <div>
                  <label htmlFor="totp-code">{t('code')}</label>
                  <input
                    id="totp-code"
                    ref={codeRef}
                    value={code}
                    onChange={(e) => setCode(e.target.value)}
                    inputMode="numeric"
                    autoComplete="one-time-code"
                    maxLength={7}
                    required
                    className="cf-code-input"
                    aria-invalid={totpError ? true : undefined}
                  />
                </div>
                <button type="submit" disabled={busy !== null || wait > 0}>
                  {busy === 'totp' ? t('activating') : t('activate')}
                </button>
              </form>
            </li>
          </ol>
        </section>
      )}

      {webauthnSupported() && (
        <>
          <p className="cf-or">{t('or')}</p>
          <section className="cf-method" aria-labelledby={keyTitleId}>
            <h2 id={keyTitleId}>{t('keyTitle')}</h2>
            <p className="muted cf-small">{t('keyLead')}</p>
            {keyError && <ErrorAlert>{keyError}</ErrorAlert>}
            {busy === 'key' && (
              <div className="alert info" role="status">
                {t('keyWaiting')}
              </div>
            )}
            <label htmlFor="key-name">{t('keyName')}</label>
            <input id="key-name" value={keyName} onChange={(e) => setKeyName(e.target.value)} maxLength={100} aria-describedby={keyHintId} autoComplete="off" />
            <p className="cf-hint" id={keyHintId}>
              {t('keyNameHint')}
            </p>
            <div className="actions">
              <button type="button" className="secondary" onClick={() => void registerKey()} disabled={busy !== null}>
                {t('registerKey')}
              </button>
            </div>
          </section>
        </>
      )}
      <p className="cf-foot cf-small">{t('signedInAs', { email: me.email })}</p>
    </>
  );
}

// ---------------------------------------------------------------- set-up: recovery codes

function RecoveryCodesStep({ codes, me, steps }: { codes: string[]; me: Me; steps: ReactNode }) {
  const t = useT(m);
  const tc = useT(common);
  const { lang } = useLang();
  const { refresh } = useSession();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const headingRef = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    headingRef.current?.focus();
  }, []);
  const text = `${t('codesFor', { email: me.email })}\n\n${codes.join('\n')}\n`;
  const proceed = async () => {
    setBusy(true);
    setError(null);
    try {
      await refresh();
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };
  return (
    <>
      {steps}
      <div className="cf-print-area">
        <h1 ref={headingRef} tabIndex={-1}>
          {t('codesTitle')}
        </h1>
        <p className="cf-lead">{t('codesLead')}</p>
        <p className="cf-small muted">{t('codesFor', { email: me.email })}</p>
        <ul className="cf-codes" data-testid="recovery-codes">
          {codes.map((c) => (
            <li key={c}>{c}</li>
          ))}
        </ul>
      </div>
      <div className="actions">
        <CopyButton text={text} label={t('copyCodes')} />
        <button type="button" className="secondary" onClick={() => window.print()}>
          {t('print')}
        </button>
      </div>
      {error ? <ErrorAlert>{errorText(error, lang, tc('error'))}</ErrorAlert> : null}
      <button type="button" className="cf-primary" onClick={() => void proceed()} disabled={busy}>
        {busy ? t('continuing') : t('codesDone')}
      </button>
    </>
  );
}

function ReadyStep() {
  const t = useT(m);
  const { refresh } = useSession();
  return (
    <>
      <h1>{t('stuck')}</h1>
      <button type="button" className="cf-primary" onClick={() => void refresh()}>
        {t('continue')}
      </button>
    </>
  );
}
