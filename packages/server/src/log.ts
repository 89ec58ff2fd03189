/**
 * Structured logging. One JSON object per line. Callers pass only fields that are safe
 * to keep: never headers, tokens, credentials or bodies (see http/logging.ts).
 */
export type LogEntry = { readonly level: 'info' | 'warn' | 'error'; readonly msg: string } & Readonly<Record<string, unknown>>;
export type LogSink = (entry: LogEntry) => void;

/** Logs go to stderr: stdout is reserved for the CLI's own output (URL, fingerprint, tokens). */
export const stderrLog: LogSink = (entry) => {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...entry })}\n`);
};

export function errorFields(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { error: String(err) };
  return { errorName: err.name, error: err.message, stack: err.stack };
}
