import { useEffect, useId, useLayoutEffect, useRef, type KeyboardEvent, type ReactNode } from 'react';
import './console-ui.css';

const FOCUSABLE = 'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

/**
 * A modal dialog on the native <dialog> element (showModal): the rest of the page is inert,
 * Tab and Shift+Tab cycle inside it, Escape calls `onClose`, and the focus goes back where it
 * was when it closes. Render it only while open: `{open && <Dialog …/>}`.
 *
 * The dialog opens in a layout effect, so it is visible as soon as the click that opened it
 * has been handled (tests and screen readers find it at once).
 */
export function Dialog({
  title,
  onClose,
  children,
  tone,
  describedBy,
}: {
  title: string;
  onClose: () => void;
  children: ReactNode;
  tone?: 'danger';
  describedBy?: string;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const closeRef = useRef(onClose);
  useEffect(() => {
    closeRef.current = onClose;
  }, [onClose]);

  useLayoutEffect(() => {
    const d = ref.current;
    if (!d) return;
    const before = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    if (!d.open) d.showModal();
    const first = d.querySelector<HTMLElement>('[data-autofocus]') ?? d.querySelector<HTMLElement>('input, select, textarea') ?? d.querySelector<HTMLElement>(FOCUSABLE);
    first?.focus();
    return () => {
      if (d.open) d.close();
      // Give the focus back, unless something else (e.g. a message) already took it.
      if (before?.isConnected && (document.activeElement === document.body || document.activeElement === null)) before.focus();
    };
  }, []);

  const onKeyDown = (e: KeyboardEvent<HTMLDialogElement>) => {
    if (e.key !== 'Tab' || !ref.current) return;
    const items = [...ref.current.querySelectorAll<HTMLElement>(FOCUSABLE)].filter((el) => el.offsetParent !== null || el === document.activeElement);
    if (items.length === 0) return;
    const first = items[0]!;
    const last = items[items.length - 1]!;
    if (e.shiftKey && (document.activeElement === first || document.activeElement === ref.current)) {
      e.preventDefault();
      last.focus();
    } else if (!e.shiftKey && document.activeElement === last) {
      e.preventDefault();
      first.focus();
    }
  };

  return (
    <dialog
      ref={ref}
      className={`cf-dialog${tone === 'danger' ? ' danger' : ''}`}
      aria-modal="true"
      aria-labelledby={titleId}
      aria-describedby={describedBy}
      onKeyDown={onKeyDown}
      onCancel={(e) => {
        // Escape: let React decide (the parent unmounts the dialog).
        e.preventDefault();
        closeRef.current();
      }}
    >
      <h2 id={titleId}>{title}</h2>
      {children}
    </dialog>
  );
}
