import type { InputHTMLAttributes, Ref } from 'react';

/**
 * The one input for a second-factor code: a 6-digit TOTP code (numeric keyboard, one-time-code
 * autofill) or a recovery code. Used by sign-in and by the re-authentication dialog.
 */
export function CodeField({
  mode,
  inputRef,
  ...rest
}: { mode: 'totp' | 'recovery'; inputRef?: Ref<HTMLInputElement> } & Omit<InputHTMLAttributes<HTMLInputElement>, 'inputMode' | 'autoComplete' | 'maxLength' | 'className'>) {
  return (
    <input
      ref={inputRef}
      inputMode={mode === 'totp' ? 'numeric' : 'text'}
      autoComplete={mode === 'totp' ? 'one-time-code' : 'off'}
      autoCapitalize="none"
      spellCheck={false}
      maxLength={mode === 'totp' ? 7 : 20}
      required
      className={`cf-code-input${mode === 'recovery' ? ' wide' : ''}`}
      {...rest}
    />
  );
}
