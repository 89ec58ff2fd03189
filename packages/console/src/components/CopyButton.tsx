import { useEffect, useRef, useState } from 'react';
import { defineMessages, useT } from '../i18n/i18n';
import './console-ui.css';

const m = defineMessages({
  fr: { copied: 'Copié dans le presse-papiers.', failed: 'Copie impossible : sélectionnez le texte et copiez-le.' },
  en: { copied: 'Copied to the clipboard.', failed: 'Could not copy: select the text and copy it.' },
});

/** A button that copies `text`, with the outcome announced politely next to it. */
export function CopyButton({ text, label, className = 'secondary' }: { text: string; label: string; className?: string }) {
  const t = useT(m);
  const [state, setState] = useState<'idle' | 'copied' | 'failed'>('idle');
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  useEffect(
    () => () => {
      if (timer.current) clearTimeout(timer.current);
    },
    [],
  );
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setState('copied');
    } catch {
      setState('failed');
    }
    if (timer.current) clearTimeout(timer.current);
    timer.current = setTimeout(() => setState('idle'), 4000);
  };
  return (
    <>
      <button type="button" className={className} onClick={() => void copy()}>
        {label}
      </button>
      <span role="status" className={state === 'failed' ? 'cf-small' : 'cf-copied'}>
        {state === 'copied' ? t('copied') : state === 'failed' ? t('failed') : ''}
      </span>
    </>
  );
}
