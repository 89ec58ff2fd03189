/**
 * One catalogue of error codes shared by the agent, the server and (later) the console.
 * Code is stable; messages are for people. Callers branch on `code`, never on message text.
 */
export const ERROR_CODES = [
  'WRONG_PASSPHRASE',
  'WRONG_RECOVERY_KEY',
  'INTEGRITY',
  'FORMAT',
  'TOO_LARGE',
  'NOT_FOUND',
  'CONFLICT',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'BAD_REQUEST',
  'TLS_PIN_MISMATCH',
  'UNREACHABLE',
  'NOT_ENROLLED',
  'NO_KEY',
  'INTERNAL',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export class CoffreError extends Error {
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>> | undefined;
  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'CoffreError';
    this.code = code;
    this.details = details;
  }
}

export function isCoffreError(e: unknown, code?: ErrorCode): e is CoffreError {
  return e instanceof CoffreError && (code === undefined || e.code === code);
}
