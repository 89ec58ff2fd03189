import type { Locale } from '../db/schema.js';
import { dateTime, render, type RenderedEmail } from './templates.js';

export interface CredentialsResetInput {
  readonly personName: string;
  /** What was reset. */
  readonly what: 'password' | 'second-factor';
  /** Who did it: name and email, so the person can check with them. */
  readonly byName: string;
  readonly byEmail: string;
  readonly at: string;
  /** The console's address, when the public URL is configured. */
  readonly consoleUrl: string | null;
}

/**
 * To the person whose password or second factor an administrator reset: never the temporary
 * password (the administrator hands it over by another channel), but who did it and when, so
 * that a reset the person did not ask for is noticed.
 */
export function credentialsResetEmail(c: CredentialsResetInput, locale: Locale): RenderedEmail {
  const fr = locale === 'fr';
  const thing = c.what === 'password' ? (fr ? 'votre mot de passe' : 'your password') : fr ? 'votre second facteur' : 'your second factor';
  const subject = fr ? `[coffre] ${c.what === 'password' ? 'Votre mot de passe' : 'Votre second facteur'} a été réinitialisé` : `[coffre] ${c.what === 'password' ? 'Your password' : 'Your second factor'} was reset`;
  const next =
    c.what === 'password'
      ? fr
        ? "À votre prochaine connexion, utilisez le mot de passe temporaire que cette personne vous communiquera, puis choisissez-en un nouveau. Vos sessions ouvertes ont été fermées."
        : 'At your next sign-in, use the temporary password this person will give you, then choose a new one. Your open sessions were ended.'
      : fr
        ? 'À votre prochaine connexion, vous configurerez un nouveau second facteur. Vos sessions ouvertes ont été fermées.'
        : 'At your next sign-in you will set up a new second factor. Your open sessions were ended.';
  return render(locale, subject, {
    title: fr ? `Réinitialisation de ${thing}` : `${c.what === 'password' ? 'Password' : 'Second factor'} reset`,
    paragraphs: [
      fr
        ? `Bonjour ${c.personName}, ${thing} a été réinitialisé le ${dateTime(c.at, locale)} par ${c.byName} (${c.byEmail}).`
        : `Hello ${c.personName}, ${thing} was reset on ${dateTime(c.at, locale)} by ${c.byName} (${c.byEmail}).`,
      next,
      fr
        ? "Si vous n'avez pas demandé cette réinitialisation, contactez sans attendre cette personne ou votre prestataire informatique."
        : 'If you did not ask for this reset, contact this person or your IT provider at once.',
    ],
    link: c.consoleUrl ? { label: fr ? 'Ouvrir la console' : 'Open the console', url: c.consoleUrl } : null,
  });
}
