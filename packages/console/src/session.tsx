import { createContext, useCallback, useContext, useEffect, useState, type ReactNode } from 'react';
import { roleAllows, type Role, type UserAction } from '@coffre/core/roles';
import { api, ApiFailure, onUnauthenticated, setCsrf } from './api';

export type { Role };

export type Stage = 'second-factor' | 'setup' | 'full';

export interface Me {
  readonly id: string;
  readonly email: string;
  readonly name: string;
  readonly role: Role;
  readonly locale: 'fr' | 'en';
  readonly mustChangePassword: boolean;
  readonly secondFactors: { readonly totp: boolean; readonly webauthn: number; readonly recoveryCodesLeft: number };
  readonly org: { readonly id: string; readonly name: string; readonly type: 'operator' | 'reseller' | 'customer' } | null;
}

export interface SessionInfo {
  readonly stage: Stage;
  readonly csrfToken: string;
  readonly user: Me;
}

interface SessionState {
  /** undefined while loading; null when signed out. */
  readonly session: SessionInfo | null | undefined;
  /** Set when the session ended by itself (expiry), to explain why the sign-in page is back. */
  readonly expired: boolean;
  readonly refresh: () => Promise<void>;
  readonly signOut: () => Promise<void>;
}

const SessionContext = createContext<SessionState | null>(null);

export function SessionProvider({ children }: { children: ReactNode }) {
  const [session, setSession] = useState<SessionInfo | null | undefined>(undefined);
  const [expired, setExpired] = useState(false);
  const refresh = useCallback(async () => {
    try {
      const s = await api<SessionInfo>('GET', '/session');
      setSession(s);
      setExpired(false);
    } catch (e) {
      if (e instanceof ApiFailure && (e.status === 401 || e.status === 403)) {
        setCsrf(null);
        setSession(null);
      } else throw e;
    }
  }, []);
  const signOut = useCallback(async () => {
    await api('POST', '/auth/logout').catch(() => undefined);
    setCsrf(null);
    setExpired(false);
    setSession(null);
  }, []);
  useEffect(() => {
    void refresh();
    return onUnauthenticated(() => {
      setCsrf(null);
      setExpired(true);
      setSession(null);
    });
  }, [refresh]);
  return <SessionContext.Provider value={{ session, expired, refresh, signOut }}>{children}</SessionContext.Provider>;
}

export function useSession(): SessionState {
  const s = useContext(SessionContext);
  if (!s) throw new Error('useSession outside SessionProvider');
  return s;
}

/** The signed-in person (only inside the signed-in part of the app). */
export function useMe(): Me {
  const { session } = useSession();
  if (!session) throw new Error('useMe without a session');
  return session.user;
}

/** What the person's role may do, from the server's own table (the server decides; this only hides buttons). */
export function can(role: Role, action: UserAction): boolean {
  return roleAllows(role, action);
}
