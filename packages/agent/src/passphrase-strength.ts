import { randomBytes } from 'node:crypto';
import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import * as common from '@zxcvbn-ts/language-common';
import * as en from '@zxcvbn-ts/language-en';
import * as fr from '@zxcvbn-ts/language-fr';
import { base32Encode, CoffreError } from '@coffre/core';

/**
 * A customer's passphrase guards every backup against offline guessing by whoever obtains the
 * key slots (a copy of the server's database): it must be strong. Strength is zxcvbn's
 * estimate (French and English dictionaries, common passwords, keyboard patterns), and the
 * bar is its top score: at least 10^10 guesses, which at Argon2id's 256 MiB costs years.
 */
export const MIN_SCORE = 4;

let factory: ZxcvbnFactory | null = null;

export function passphraseScore(p: string, context: readonly string[] = []): { score: number; warning: string | null; suggestions: string[] } {
  factory ??= new ZxcvbnFactory({
    graphs: common.adjacencyGraphs,
    dictionary: { ...common.dictionary, ...fr.dictionary, ...en.dictionary },
    translations: en.translations,
  });
  const r = factory.check(p, [...context]);
  return { score: r.score, warning: r.feedback.warning, suggestions: r.feedback.suggestions };
}

/** Throws WEAK_PASSPHRASE (exit 2) with the estimator's advice when a new passphrase is too weak. */
export function checkNewPassphrase(p: string, context: readonly string[] = []): void {
  const r = passphraseScore(p, context);
  if (r.score >= MIN_SCORE) return;
  const advice = [r.warning, ...r.suggestions].filter(Boolean).join(' ');
  throw new CoffreError(
    'BAD_REQUEST',
    `this passphrase is too weak to protect health data (strength ${r.score}/4, 4 needed)${advice ? `: ${advice}` : ''}. Use a longer phrase of several unrelated words, or let "coffre enroll --generate-passphrase" make one`,
  );
}

/** A generated passphrase: 100 random bits as five groups of four base32 letters and digits. */
export function generatePassphrase(): string {
  return base32Encode(randomBytes(13)).slice(0, 20).toLowerCase().match(/.{4}/g)!.join('-');
}
