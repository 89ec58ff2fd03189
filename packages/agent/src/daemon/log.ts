/**
 * The daemon's log: one JSON object per line on stderr (journald, the Windows service
 * wrapper or a file collect it). Every line has `time`, `level`, `event` and a readable
 * `msg`; the other fields depend on the event (docs/AGENT-SERVICE.md). Lines carry job
 * names, paths of files that could not be backed up or failed a restore test and hook
 * output — never file contents, passphrases, keys or credentials.
 */
export type Level = 'info' | 'warn' | 'error';
export type LogFields = Record<string, string | number | boolean | null | undefined | readonly string[]>;

export interface Logger {
  log(level: Level, event: string, msg: string, fields?: LogFields): void;
}

export function jsonLogger(write: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  return {
    log(level, event, msg, fields = {}) {
      const clean: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(fields)) if (v !== undefined) clean[k] = v;
      write(JSON.stringify({ time: new Date().toISOString(), level, event, msg, ...clean }) + '\n');
    },
  };
}
