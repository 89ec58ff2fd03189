import { useMemo } from 'react';
import { useFormat, useLang } from '../i18n/i18n';

/**
 * Time helpers shared by the dashboard and customer pages: relative times ("il y a 3 heures")
 * and calendar days in the person's time zone (Europe/Paris by default).
 */
export function useTime() {
  const { timeZone } = useLang();
  const f = useFormat();
  return useMemo(() => {
    const rtf = new Intl.RelativeTimeFormat(f.locale, { numeric: 'auto' });
    const dayKeyFmt = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
    const shortDay = new Intl.DateTimeFormat(f.locale, { timeZone, day: 'numeric', month: 'short' });
    const longDay = new Intl.DateTimeFormat(f.locale, { timeZone, weekday: 'long', day: 'numeric', month: 'long' });
    const shortDayUtc = new Intl.DateTimeFormat(f.locale, { timeZone: 'UTC', day: 'numeric', month: 'short' });
    const time = new Intl.DateTimeFormat(f.locale, { timeZone, hour: '2-digit', minute: '2-digit' });
    const plurals = new Intl.PluralRules(f.locale);
    /** "il y a 3 heures", "hier", "dans 2 jours". */
    const relative = (iso: string | null | undefined, now = Date.now()): string => {
      if (!iso) return '—';
      const diff = (Date.parse(iso) - now) / 1000;
      const abs = Math.abs(diff);
      if (abs < 45) return rtf.format(0, 'second');
      if (abs < 3600) return rtf.format(Math.round(diff / 60), 'minute');
      if (abs < 86_400) return rtf.format(Math.round(diff / 3600), 'hour');
      if (abs < 30 * 86_400) return rtf.format(Math.round(diff / 86_400), 'day');
      if (abs < 365 * 86_400) return rtf.format(Math.round(diff / (30 * 86_400)), 'month');
      return rtf.format(Math.round(diff / (365 * 86_400)), 'year');
    };
    /** "2026-03-14": the calendar day of an instant in the person's time zone. */
    const dayKey = (t: string | number | Date): string => dayKeyFmt.format(new Date(t));
    return {
      ...f,
      timeZone,
      relative,
      dayKey,
      /** "14 mars" in the person's time zone. */
      shortDay: (t: string | number | Date) => shortDay.format(new Date(t)),
      /** "samedi 14 mars". */
      longDay: (t: string | number | Date) => longDay.format(new Date(t)),
      /** "14 mars" of a calendar day key "2026-03-14" (no time zone shift). */
      shortDayOfKey: (key: string) => shortDayUtc.format(new Date(`${key}T12:00:00Z`)),
      /** Picks the singular or plural message by the language's rules (French: 0 and 1 are singular). */
      plural: <K>(n: number, one: K, other: K): K => (plurals.select(n) === 'one' ? one : other),
      /** "14:05". */
      time: (t: string | number | Date) => time.format(new Date(t)),
    };
  }, [f, timeZone]);
}

/** The last `n` calendar days up to today (oldest first) as "YYYY-MM-DD" keys, today in the given zone. */
export function lastDays(n: number, dayKey: (t: number) => string, now = Date.now()): string[] {
  const today = Date.parse(`${dayKey(now)}T00:00:00Z`);
  const out: string[] = [];
  for (let i = n - 1; i >= 0; i--) out.push(new Date(today - i * 86_400_000).toISOString().slice(0, 10));
  return out;
}

/** Every calendar day from `from` to `to` inclusive ("YYYY-MM-DD" keys, plain calendar arithmetic). */
export function daysBetween(from: string, to: string): string[] {
  const out: string[] = [];
  const end = Date.parse(`${to}T00:00:00Z`);
  for (let t = Date.parse(`${from}T00:00:00Z`); t <= end && out.length < 4000; t += 86_400_000) out.push(new Date(t).toISOString().slice(0, 10));
  return out;
}
