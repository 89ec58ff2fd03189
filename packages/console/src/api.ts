/**
 * The console's only way to the server: same-origin fetch under /api/v1, the session cookie
 * sent by the browser, the CSRF token on every non-GET request. Errors come back as
 * ApiFailure with the catalogue's stable code and both messages.
 */
export interface ApiErrorBody {
  error: { code: string; message: string; messageFr: string; requestId: string; details?: Record<string, unknown> };
}

export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly messageEn: string,
    readonly messageFr: string,
    readonly details: Record<string, unknown> | undefined,
  ) {
    super(messageEn);
  }
  /** The message in the console's language. */
  text(lang: 'fr' | 'en'): string {
    return lang === 'fr' ? this.messageFr : this.messageEn;
  }
}

let csrf: string | null = null;
/** Called with every csrfToken the server returns (sign-in, second factor, GET /session). */
export function setCsrf(token: string | null): void {
  csrf = token;
}

type Listener = (f: ApiFailure) => void;
const unauthenticatedListeners = new Set<Listener>();
/** The app listens for 401s to send the person back to the sign-in page (session expired). */
export function onUnauthenticated(l: Listener): () => void {
  unauthenticatedListeners.add(l);
  return () => unauthenticatedListeners.delete(l);
}

/**
 * Routes whose 401 means "wrong password or code", not "session over": sign-in steps, the
 * set-up steps, and the session probe itself (a fresh visit is not an expired session).
 */
const CHECKS_CREDENTIALS: ReadonlySet<string> = new Set(['/session', '/me/password', '/me/totp/confirm', '/me/webauthn/register']);

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['x-csrf-token'] = csrf;
  const res = await fetch(`/api/v1${path}`, { method, headers, credentials: 'same-origin', body: body === undefined ? null : JSON.stringify(body) });
  const text = await res.text();
  const json: unknown = text ? JSON.parse(text) : null;
  if (!res.ok) {
    const e = (json as ApiErrorBody | null)?.error;
    const failure = new ApiFailure(res.status, e?.code ?? 'INTERNAL', e?.message ?? res.statusText, e?.messageFr ?? res.statusText, e?.details);
    if (res.status === 401 && !CHECKS_CREDENTIALS.has(path) && !path.startsWith('/auth/')) unauthenticatedListeners.forEach((l) => l(failure));
    throw failure;
  }
  const maybe = json as { csrfToken?: unknown } | null;
  if (maybe && typeof maybe.csrfToken === 'string') setCsrf(maybe.csrfToken);
  return json as T;
}

/** A download (audit export) through the same session: the browser saves the file. */
export function downloadUrl(path: string): string {
  return `/api/v1${path}`;
}
