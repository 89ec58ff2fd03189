import { createContext, useCallback, useContext, useEffect, useState, type MouseEvent, type ReactNode } from 'react';

/** A tiny history router: the server answers every non-API path with the console. */
interface Route {
  readonly path: string;
  readonly navigate: (to: string) => void;
}
const RouterContext = createContext<Route | null>(null);

export function RouterProvider({ children }: { children: ReactNode }) {
  const [path, setPath] = useState(() => location.pathname + location.search);
  useEffect(() => {
    const onPop = () => setPath(location.pathname + location.search);
    addEventListener('popstate', onPop);
    return () => removeEventListener('popstate', onPop);
  }, []);
  const navigate = useCallback((to: string) => {
    history.pushState(null, '', to);
    // The path without the fragment; a fragment (#alertes) is for the page to scroll to.
    setPath(location.pathname + location.search);
    scrollTo(0, 0);
  }, []);
  return <RouterContext.Provider value={{ path, navigate }}>{children}</RouterContext.Provider>;
}

export function useRoute(): Route {
  const r = useContext(RouterContext);
  if (!r) throw new Error('useRoute outside RouterProvider');
  return r;
}

/** Matches "/clients/:orgId" against the current path; returns the parameters or null. */
export function match(pattern: string, path: string): Record<string, string> | null {
  const [p] = path.split('?');
  const a = pattern.split('/');
  const b = (p ?? '').split('/');
  if (a.length !== b.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < a.length; i++) {
    if (a[i]!.startsWith(':')) params[a[i]!.slice(1)] = decodeURIComponent(b[i]!);
    else if (a[i] !== b[i]) return null;
  }
  return params;
}

/** An <a> that navigates without reloading (and still works with a middle click). */
export function Link({ to, children, className, 'aria-label': ariaLabel }: { to: string; children: ReactNode; className?: string; 'aria-label'?: string }) {
  const { navigate } = useRoute();
  const onClick = (e: MouseEvent<HTMLAnchorElement>) => {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
    e.preventDefault();
    navigate(to);
  };
  return (
    <a href={to} onClick={onClick} className={className} aria-label={ariaLabel}>
      {children}
    </a>
  );
}
