import { createContext, useCallback, useContext, useMemo, useState, type ReactNode } from 'react';

/**
 * French first, English available. Each page keeps its own messages next to its code
 * (`defineMessages({ fr: {...}, en: {...} })`, the English object must have the same keys,
 * checked by the type), and reads them with `useT(messages)`. Dates are shown in the
 * person's time zone setting (Europe/Paris by default), sizes and numbers in the locale.
 */
export type Lang = 'fr' | 'en';
export const LANGS: readonly Lang[] = ['fr', 'en'];
const STORAGE_KEY = 'coffre.lang';
const TZ_KEY = 'coffre.timeZone';
export const DEFAULT_TIME_ZONE = 'Europe/Paris';

export type Messages<K extends string> = { readonly fr: Readonly<Record<K, string>>; readonly en: Readonly<Record<K, string>> };
export function defineMessages<K extends string>(m: Messages<K>): Messages<K> {
  return m;
}

interface LangState {
  readonly lang: Lang;
  readonly setLang: (l: Lang) => void;
  readonly timeZone: string;
  readonly setTimeZone: (tz: string) => void;
}

const LangContext = createContext<LangState | null>(null);

function initialLang(): Lang {
  const saved = localStorage.getItem(STORAGE_KEY);
  return saved === 'en' || saved === 'fr' ? saved : 'fr';
}

export function LangProvider({ children }: { children: ReactNode }) {
  const [lang, setLangState] = useState<Lang>(initialLang);
  const [timeZone, setTzState] = useState<string>(() => localStorage.getItem(TZ_KEY) ?? DEFAULT_TIME_ZONE);
  const setLang = useCallback((l: Lang) => {
    localStorage.setItem(STORAGE_KEY, l);
    document.documentElement.lang = l;
    setLangState(l);
  }, []);
  const setTimeZone = useCallback((tz: string) => {
    localStorage.setItem(TZ_KEY, tz);
    setTzState(tz);
  }, []);
  document.documentElement.lang = lang;
  const value = useMemo(() => ({ lang, setLang, timeZone, setTimeZone }), [lang, setLang, timeZone, setTimeZone]);
  return <LangContext.Provider value={value}>{children}</LangContext.Provider>;
}

export function useLang(): LangState {
  const s = useContext(LangContext);
  if (!s) throw new Error('useLang outside LangProvider');
  return s;
}

/** `t('key', { n: 3 })` replaces `{n}` in the message of the current language. */
export function useT<K extends string>(m: Messages<K>): (key: K, vars?: Readonly<Record<string, string | number>>) => string {
  const { lang } = useLang();
  return useCallback(
    (key: K, vars?: Readonly<Record<string, string | number>>) => {
      let s: string = m[lang][key];
      if (vars) for (const [k, v] of Object.entries(vars)) s = s.split(`{${k}}`).join(String(v));
      return s;
    },
    [lang, m],
  );
}

const LOCALE: Readonly<Record<Lang, string>> = { fr: 'fr-FR', en: 'en-GB' };

/** Formatting in the current language and time zone. */
export function useFormat() {
  const { lang, timeZone } = useLang();
  return useMemo(() => {
    const locale = LOCALE[lang];
    const dateTime = new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'short', timeZone });
    const date = new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeZone });
    const number = new Intl.NumberFormat(locale);
    const units = lang === 'fr' ? ['o', 'Ko', 'Mo', 'Go', 'To'] : ['B', 'KB', 'MB', 'GB', 'TB'];
    return {
      locale,
      dateTime: (iso: string | null | undefined) => (iso ? dateTime.format(new Date(iso)) : '—'),
      date: (iso: string | null | undefined) => (iso ? date.format(new Date(iso)) : '—'),
      number: (n: number) => number.format(n),
      /** Decimal units (1 Mo = 10^6 octets), as storage is sold. */
      bytes: (n: number | null | undefined) => {
        if (n === null || n === undefined) return '—';
        let v = n;
        let i = 0;
        while (v >= 1000 && i < units.length - 1) {
          v /= 1000;
          i++;
        }
        return `${new Intl.NumberFormat(locale, { maximumFractionDigits: v < 10 && i > 0 ? 1 : 0 }).format(v)} ${units[i]}`;
      },
    };
  }, [lang, timeZone]);
}
