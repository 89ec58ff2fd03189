import { dictionary } from '@zxcvbn-ts/language-common';

/**
 * Password rules for web accounts, after NIST SP 800-63B §5.1.1.2: a length floor, no
 * composition rules, and a refusal of passwords that are known or guessable from the
 * account itself. Lengths count Unicode code points after NFC normalisation, the form
 * that is hashed (passwords.ts), so "é" typed precomposed or decomposed counts once.
 */
export const PASSWORD_PROBLEMS = ['too_short', 'too_long', 'common', 'contains_name', 'contains_email'] as const;
export type PasswordProblem = (typeof PASSWORD_PROBLEMS)[number];

export const PASSWORD_MIN_CODE_POINTS = 12;
export const PASSWORD_MAX_CODE_POINTS = 256;
/** A shorter stem ("abc", "qwe") would refuse too many unrelated passwords. */
const MIN_STEM = 4;
/** Shorter name or email parts ("Li", "jo") occur by chance in good passphrases. */
const MIN_PART = 3;

export const PASSWORD_PROBLEM_MESSAGES: Record<PasswordProblem, { readonly en: string; readonly fr: string }> = {
  too_short: {
    en: `Your password must be at least ${PASSWORD_MIN_CODE_POINTS} characters long. A few unrelated words make a good one.`,
    fr: `Votre mot de passe doit comporter au moins ${PASSWORD_MIN_CODE_POINTS} caractères. Quelques mots sans rapport entre eux en font un bon.`,
  },
  too_long: {
    en: `Your password must be at most ${PASSWORD_MAX_CODE_POINTS} characters long.`,
    fr: `Votre mot de passe doit comporter au plus ${PASSWORD_MAX_CODE_POINTS} caractères.`,
  },
  common: {
    en: 'This password is among the most widely used ones and would be guessed quickly. Please choose another.',
    fr: 'Ce mot de passe fait partie des plus utilisés et serait vite deviné. Veuillez en choisir un autre.',
  },
  contains_name: {
    en: 'Your password must not contain your name.',
    fr: 'Votre mot de passe ne doit pas contenir votre nom.',
  },
  contains_email: {
    en: 'Your password must not contain your email address.',
    fr: 'Votre mot de passe ne doit pas contenir votre adresse e-mail.',
  },
};

let common: ReadonlySet<string> | null = null;
/** Built on first use: 49k strings are worth keeping out of start-up and of processes that never check a password. */
function commonPasswords(): ReadonlySet<string> {
  common ??= new Set(dictionary['passwords-common'].map((p) => p.toLowerCase()));
  return common;
}

/** Case- and accent-insensitive form: compatibility decomposition, marks dropped, lower case. */
function fold(s: string): string {
  return s.normalize('NFKD').replace(/\p{M}+/gu, '').toLowerCase();
}

function isCommon(password: string): boolean {
  const lower = password.toLowerCase();
  const set = commonPasswords();
  if (set.has(lower)) return true;
  // "password2024!!!" is "password" with the decoration users add to pass composition rules.
  const stem = lower.replace(/[\p{N}\p{P}\p{S}\s]+$/u, '');
  return [...stem].length >= MIN_STEM && set.has(stem);
}

function containsName(folded: string, name: string): boolean {
  return fold(name)
    .split(/[^\p{L}]+/u)
    .some((part) => [...part].length >= MIN_PART && folded.includes(part));
}

function containsEmail(folded: string, email: string): boolean {
  const whole = fold(email.trim());
  if (whole === '') return false;
  const at = whole.lastIndexOf('@');
  const local = at >= 0 ? whole.slice(0, at) : whole;
  // The whole address contains its local part, so checking the local part covers both.
  const needle = [...local].length >= MIN_PART ? local : whole;
  return folded.includes(needle);
}

/** Every rule the password breaks, in PASSWORD_PROBLEMS order; empty when acceptable. */
export function checkPassword(password: string, who: { readonly email: string; readonly name: string }): PasswordProblem[] {
  const nfc = password.normalize('NFC');
  const length = [...nfc].length;
  const problems: PasswordProblem[] = [];
  if (length < PASSWORD_MIN_CODE_POINTS) problems.push('too_short');
  if (length > PASSWORD_MAX_CODE_POINTS) problems.push('too_long');
  if (isCommon(nfc)) problems.push('common');
  const folded = fold(nfc);
  if (containsName(folded, who.name)) problems.push('contains_name');
  if (containsEmail(folded, who.email)) problems.push('contains_email');
  return problems;
}
