import { useLang, useT, type Lang } from '../i18n/i18n';
import { common } from '../i18n/common';

/** The language switch: a labelled select, keyboard-usable, remembered in the browser. */
export function LangSwitch() {
  const { lang, setLang } = useLang();
  const t = useT(common);
  return (
    <label className="langswitch" style={{ display: 'flex', gap: '0.4rem', alignItems: 'center', margin: 0, fontWeight: 400 }}>
      <span>{t('language')}</span>
      <select value={lang} onChange={(e) => setLang(e.target.value as Lang)} style={{ width: 'auto' }} aria-label={t('language')}>
        <option value="fr">Français</option>
        <option value="en">English</option>
      </select>
    </label>
  );
}
