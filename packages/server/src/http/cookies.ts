/**
 * The session cookie. The `__Host-` prefix makes browsers refuse it unless it is Secure,
 * has Path=/ and no Domain: it cannot be set by a sibling sub-domain or over plain HTTP.
 * SameSite=Strict keeps it off cross-site requests; HttpOnly keeps it from scripts.
 */
export const SESSION_COOKIE = '__Host-coffre_session';

/** Value of one cookie from a Cookie header, or undefined. Tolerates spacing and other cookies. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export function sessionCookie(token: string, maxAgeSeconds: number): string {
  return `${SESSION_COOKIE}=${token}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}`;
}

export const clearedSessionCookie = (): string => `${SESSION_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0`;
