import { useCallback, useId, useRef, useState, type FormEvent, type ReactNode } from 'react';
import { CodeField } from './CodeField';
import { api, ApiFailure } from '../api';
import { common } from '../i18n/common';
import { defineMessages, useLang, useT } from '../i18n/i18n';
import { useSession } from '../session';
import { Dialog } from './Dialog';
import { getAssertion, webauthnErrorKind, webauthnSupported, type RequestOptionsJSON } from './webauthn';

/**
 * Re-authentication for sensitive actions. The server answers `403 REAUTH_REQUIRED` when the
 * person's last second-factor proof is more than 5 minutes old; `withReauth(call)` then opens
 * a modal dialog asking for a fresh proof (authenticator code, security key, or a recovery
 * code), sends it, and retries the call once.
 *
 *   const { withReauth, dialog } = useReauth();
 *   …
 *   try { await withReauth(() => api('POST', `/machines/${id}/revoke`)); }
 *   catch (e) { if (!isReauthCancelled(e)) setError(e); }
 *   …
 *   return <>{…}{dialog}</>;
 *
 * Cancelling (button or Escape) rejects with an ApiFailure of code REAUTH_CANCELLED, which
 * callers ignore (`isReauthCancelled`).
 */
const m = defineMessages({
  fr: {
    title: 'Confirmez votre identité',
    help: 'Cette action est sensible : confirmez-la avec votre second facteur.',
    totpHelp: "Saisissez le code à 6 chiffres affiché par votre application d'authentification.",
    code: 'Code de vérification',
    recoveryCode: 'Code de secours',
    recoveryHelp: "Saisissez l'un de vos codes de secours (il ne servira qu'une fois).",
    confirm: 'Confirmer',
    checking: 'Vérification…',
    keyHelp: 'Branchez ou approchez votre clé de sécurité, puis touchez-la lorsque votre navigateur le demande.',
    useKey: 'Utiliser ma clé de sécurité',
    keyWaiting: 'En attente de la clé de sécurité…',
    keyCancelled: "La clé n'a pas répondu ou l'opération a été annulée. Réessayez.",
    keyUnsupported: 'Ce navigateur ne prend pas en charge les clés de sécurité.',
    otherWays: 'Autre méthode :',
    viaTotp: "Utiliser l'application d'authentification",
    viaKey: 'Utiliser une clé de sécurité',
    viaRecovery: 'Utiliser un code de secours',
  },
  en: {
    title: 'Confirm your identity',
    help: 'This is a sensitive action: confirm it with your second factor.',
    totpHelp: 'Enter the 6-digit code shown by your authenticator app.',
    code: 'Verification code',
    recoveryCode: 'Recovery code',
    recoveryHelp: 'Enter one of your recovery codes (it works only once).',
    confirm: 'Confirm',
    checking: 'Checking…',
    keyHelp: 'Insert or tap your security key, then touch it when your browser asks.',
    useKey: 'Use my security key',
    keyWaiting: 'Waiting for the security key…',
    keyCancelled: 'The key did not answer or the operation was cancelled. Try again.',
    keyUnsupported: 'This browser does not support security keys.',
    otherWays: 'Another way:',
    viaTotp: 'Use the authenticator app',
    viaKey: 'Use a security key',
    viaRecovery: 'Use a recovery code',
  },
});

export const REAUTH_CANCELLED = 'REAUTH_CANCELLED';

/** True for the rejection of a re-authentication the person cancelled (show nothing). */
export function isReauthCancelled(e: unknown): boolean {
  return e instanceof ApiFailure && e.code === REAUTH_CANCELLED;
}

/** True for the server's "prove your second factor again" answer. */
export function isReauthRequired(e: unknown): boolean {
  return e instanceof ApiFailure && e.code === 'REAUTH_REQUIRED';
}

interface Pending {
  readonly promise: Promise<void>;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

export interface Reauth {
  /** Runs `call`; on REAUTH_REQUIRED asks for a fresh proof and runs it once more. */
  readonly withReauth: <T>(call: () => Promise<T>) => Promise<T>;
  /** Render this somewhere in the page (it is null while no proof is asked). */
  readonly dialog: ReactNode;
}

export function useReauth(): Reauth {
  const [open, setOpen] = useState(false);
  const pendingRef = useRef<Pending | null>(null);

  /** One dialog at a time: concurrent calls needing a proof wait for the same one. */
  const ask = useCallback((): Promise<void> => {
    if (pendingRef.current) return pendingRef.current.promise;
    let resolve!: () => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    pendingRef.current = { promise, resolve, reject };
    setOpen(true);
    return promise;
  }, []);

  const withReauth = useCallback(
    async <T,>(call: () => Promise<T>): Promise<T> => {
      try {
        return await call();
      } catch (e) {
        if (!isReauthRequired(e)) throw e;
        await ask();
        return call();
      }
    },
    [ask],
  );

  const finish = useCallback((ok: boolean) => {
    const p = pendingRef.current;
    pendingRef.current = null;
    setOpen(false);
    if (!p) return;
    if (ok) p.resolve();
    else p.reject(new ApiFailure(0, REAUTH_CANCELLED, 'Cancelled.', 'Annulé.', undefined));
  }, []);

  const dialog = open ? <ReauthForm onDone={() => finish(true)} onCancel={() => finish(false)} /> : null;
  return { withReauth, dialog };
}

type Mode = 'totp' | 'key' | 'recovery';

function ReauthForm({ onDone, onCancel }: { onDone: () => void; onCancel: () => void }) {
  const t = useT(m);
  const tc = useT(common);
  const { lang } = useLang();
  const { session } = useSession();
  const factors = session?.user.secondFactors ?? { totp: true, webauthn: 0, recoveryCodesLeft: 0 };
  const canKey = factors.webauthn > 0 && webauthnSupported();
  const [mode, setMode] = useState<Mode>(factors.totp ? 'totp' : canKey ? 'key' : 'recovery');
  const [code, setCode] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const inputRef = useRef<HTMLInputElement>(null);
  const fieldId = useId();
  const helpId = useId();

  const failed = (e: unknown) => {
    setError(e instanceof ApiFailure ? e.text(lang) : tc('error'));
    setCode('');
    setBusy(false);
    // The field is re-enabled on the next render; focus it then.
    setTimeout(() => inputRef.current?.focus(), 0);
  };

  const submitCode = async (e: FormEvent) => {
    e.preventDefault();
    if (busy) return;
    setBusy(true);
    setError(null);
    try {
      if (mode === 'recovery') await api('POST', '/auth/second-factor/recovery-code', { code: code.trim() });
      else await api('POST', '/auth/second-factor/totp', { code: code.replace(/\s+/g, '') });
      onDone();
    } catch (err) {
      failed(err);
    }
  };

  const proveWithKey = async () => {
    if (busy) return;
    setBusy(true);
    setError(null);
    try {
      const options = await api<RequestOptionsJSON>('POST', '/auth/second-factor/webauthn/options');
      const response = await getAssertion(options);
      await api('POST', '/auth/second-factor/webauthn', { response });
      onDone();
    } catch (err) {
      setBusy(false);
      if (err instanceof ApiFailure) setError(err.text(lang));
      else setError(webauthnErrorKind(err) === 'unsupported' ? t('keyUnsupported') : t('keyCancelled'));
    }
  };

  const switchTo = (next: Mode) => {
    setMode(next);
    setError(null);
    setCode('');
    setTimeout(() => inputRef.current?.focus(), 0);
  };

  const alternatives: { mode: Mode; label: string }[] = [];
  if (mode !== 'totp' && factors.totp) alternatives.push({ mode: 'totp', label: t('viaTotp') });
  if (mode !== 'key' && canKey) alternatives.push({ mode: 'key', label: t('viaKey') });
  if (mode !== 'recovery' && factors.recoveryCodesLeft > 0) alternatives.push({ mode: 'recovery', label: t('viaRecovery') });

  return (
    <Dialog title={t('title')} onClose={onCancel} describedBy={helpId}>
      <p id={helpId} className="muted cf-dialog-lead">
        {t('help')} {mode === 'totp' ? t('totpHelp') : mode === 'recovery' ? t('recoveryHelp') : t('keyHelp')}
      </p>
      {error && (
        <div className="alert error" role="alert">
          {error}
        </div>
      )}
      {mode === 'key' ? (
        <>
          <div className="actions">
            <button type="button" className="secondary" onClick={onCancel}>
              {tc('cancel')}
            </button>
            <button type="button" onClick={() => void proveWithKey()} disabled={busy} data-autofocus>
              {busy ? t('keyWaiting') : t('useKey')}
            </button>
          </div>
        </>
      ) : (
        <form onSubmit={(e) => void submitCode(e)}>
          <label htmlFor={fieldId}>{mode === 'totp' ? t('code') : t('recoveryCode')}</label>
          <CodeField
            mode={mode === 'recovery' ? 'recovery' : 'totp'}
            id={fieldId}
            inputRef={inputRef}
            value={code}
            onChange={(e) => setCode(e.target.value)}
            readOnly={busy}
            aria-invalid={error ? true : undefined}
          />
          <div className="actions">
            <button type="button" className="secondary" onClick={onCancel}>
              {tc('cancel')}
            </button>
            <button type="submit" disabled={busy}>
              {busy ? t('checking') : t('confirm')}
            </button>
          </div>
        </form>
      )}
      {alternatives.length > 0 && (
        <p className="cf-dialog-alt">
          <span className="muted">{t('otherWays')}</span>{' '}
          {alternatives.map((a, i) => (
            <span key={a.mode}>
              {i > 0 && ' · '}
              <button type="button" className="link" onClick={() => switchTo(a.mode)}>
                {a.label}
              </button>
            </span>
          ))}
        </p>
      )}
    </Dialog>
  );
}
