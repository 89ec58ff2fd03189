import { useCallback, useEffect, useState, type ReactNode } from 'react';
import { ApiFailure } from '../api';
import { common } from '../i18n/common';
import { useLang, useT } from '../i18n/i18n';

/** Loads data and renders loading, error (with retry) and content states the same way everywhere. */
export function useLoad<T>(load: () => Promise<T>, deps: readonly unknown[]): { data: T | undefined; error: unknown; reload: () => void } {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const [n, setN] = useState(0);
  const run = useCallback(load, deps);
  useEffect(() => {
    let live = true;
    setError(null);
    run().then(
      (d) => live && setData(d),
      (e: unknown) => live && setError(e),
    );
    return () => {
      live = false;
    };
  }, [run, n]);
  return { data, error, reload: () => setN((x) => x + 1) };
}

export function ErrorBox({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  const { lang } = useLang();
  const t = useT(common);
  const text = error instanceof ApiFailure ? error.text(lang) : t('error');
  return (
    <div className="alert error" role="alert">
      {text}
      {onRetry && (
        <>
          {' '}
          <button type="button" className="link" onClick={onRetry}>
            {t('retry')}
          </button>
        </>
      )}
    </div>
  );
}

export function Loading() {
  const t = useT(common);
  return <p className="muted" role="status">{t('loading')}</p>;
}

/** Renders children(data) once loaded. */
export function Loaded<T>({ state, children }: { state: { data: T | undefined; error: unknown; reload: () => void }; children: (d: T) => ReactNode }) {
  if (state.error) return <ErrorBox error={state.error} onRetry={state.reload} />;
  if (state.data === undefined) return <Loading />;
  return <>{children(state.data)}</>;
}
