/**
 * The one catalogue of API errors. `code` is stable and is what clients branch on; the
 * English and French messages are for people. Handlers throw `apiError(reason)`; the
 * error handler turns it into `{ error: { code, message, messageFr, requestId, details? } }`.
 */
export const ERROR_STATUS = {
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  SECOND_FACTOR_REQUIRED: 403,
  SETUP_REQUIRED: 403,
  REAUTH_REQUIRED: 403,
  CSRF_FAILED: 403,
  ORG_SUSPENDED: 403,
  WEAK_PASSWORD: 400,
  TOO_MANY_ATTEMPTS: 429,
  NOT_FOUND: 404,
  CONFLICT: 409,
  MISSING_CHUNKS: 409,
  SITE_READ_ONLY: 409,
  SITE_DEMOTED: 409,
  SITE_NOT_ALLOWED: 409,
  REQUEST_TIMEOUT: 408,
  TOO_LARGE: 413,
  RANGE_NOT_SATISFIABLE: 416,
  INTEGRITY: 422,
  INTERNAL: 500,
  UNAVAILABLE: 503,
} as const;
export type ApiErrorCode = keyof typeof ERROR_STATUS;

interface Reason {
  readonly code: ApiErrorCode;
  readonly en: string;
  readonly fr: string;
}

/** Every message the API can return, keyed by a reason id (stable, grep-able). */
export const REASONS = {
  badRequest: { code: 'BAD_REQUEST', en: 'The request is malformed.', fr: 'La requête est mal formée.' },
  validation: { code: 'BAD_REQUEST', en: 'The request does not match the expected format.', fr: 'La requête ne respecte pas le format attendu.' },
  badPackFormat: { code: 'BAD_REQUEST', en: 'The pack is not in the coffre pack format.', fr: "Le paquet n'est pas au format de paquet coffre." },
  badSchedule: {
    code: 'BAD_REQUEST',
    en: 'A job schedule is not a valid five-field cron expression in a known time zone.',
    fr: "Une planification n'est pas une expression cron valide à cinq champs dans un fuseau horaire connu.",
  },
  badRefs: { code: 'BAD_REQUEST', en: 'The reference list is malformed.', fr: 'La liste de références est mal formée.' },
  badChunkerParams: { code: 'BAD_REQUEST', en: 'The repository chunker parameters are invalid.', fr: 'Les paramètres de découpage du dépôt sont invalides.' },
  keySlotTooLarge: { code: 'BAD_REQUEST', en: 'A key slot is larger than 16 KiB.', fr: 'Un emplacement de clé dépasse 16 Kio.' },
  duplicateKeySlot: { code: 'BAD_REQUEST', en: 'Two key slots have the same id.', fr: 'Deux emplacements de clé ont le même identifiant.' },
  unknownParent: { code: 'BAD_REQUEST', en: 'The parent snapshot does not exist.', fr: "L'instantané parent n'existe pas." },
  unsupportedMediaType: { code: 'BAD_REQUEST', en: 'Unsupported content type.', fr: 'Type de contenu non pris en charge.' },

  unauthenticated: {
    code: 'UNAUTHORIZED',
    en: 'Missing, unknown or revoked machine credential.',
    fr: "Identifiant de machine absent, inconnu ou révoqué.",
  },
  badEnrollToken: {
    code: 'UNAUTHORIZED',
    en: 'The enrollment token is invalid, expired or already used.',
    fr: "Le jeton d'enrôlement est invalide, expiré ou déjà utilisé.",
  },
  forbidden: { code: 'FORBIDDEN', en: 'This credential may not perform this action.', fr: "Cet identifiant n'est pas autorisé à effectuer cette action." },
  roleForbidden: { code: 'FORBIDDEN', en: 'Your role does not allow this action.', fr: "Votre rôle ne permet pas cette action." },
  roleNotGrantable: {
    code: 'FORBIDDEN',
    en: 'You may not give this role in this organisation.',
    fr: "Vous ne pouvez pas attribuer ce rôle dans cette organisation.",
  },
  notOnSelf: { code: 'FORBIDDEN', en: 'You may not do this to your own account.', fr: 'Vous ne pouvez pas faire cela sur votre propre compte.' },
  orgNotCreatable: {
    code: 'FORBIDDEN',
    en: 'You may not create this kind of organisation here.',
    fr: "Vous ne pouvez pas créer ce type d'organisation ici.",
  },
  notSignedIn: { code: 'UNAUTHORIZED', en: 'You are not signed in, or your session has expired.', fr: "Vous n'êtes pas connecté, ou votre session a expiré." },
  badCredentials: { code: 'UNAUTHORIZED', en: 'Incorrect email or password.', fr: 'Adresse e-mail ou mot de passe incorrect.' },
  badSecondFactor: { code: 'UNAUTHORIZED', en: 'The verification code is incorrect.', fr: 'Le code de vérification est incorrect.' },
  secondFactorReplayed: {
    code: 'UNAUTHORIZED',
    en: 'This code has already been used; wait for the next one.',
    fr: 'Ce code a déjà été utilisé ; attendez le suivant.',
  },
  badCurrentPassword: { code: 'UNAUTHORIZED', en: 'The current password is incorrect.', fr: 'Le mot de passe actuel est incorrect.' },
  secondFactorRequired: {
    code: 'SECOND_FACTOR_REQUIRED',
    en: 'Confirm your identity with your second factor first.',
    fr: "Confirmez d'abord votre identité avec votre second facteur.",
  },
  setupRequired: {
    code: 'SETUP_REQUIRED',
    en: 'Change your password and set up a second factor before anything else.',
    fr: 'Changez votre mot de passe et configurez un second facteur avant toute autre action.',
  },
  peerCredentialReset: {
    code: 'FORBIDDEN',
    en: "Only a person with a higher role may reset this person's password or second factor.",
    fr: "Seule une personne d'un rôle supérieur peut réinitialiser le mot de passe ou le second facteur de cette personne.",
  },
  reauthRequired: {
    code: 'REAUTH_REQUIRED',
    en: 'This action needs a fresh confirmation with your second factor.',
    fr: 'Cette action nécessite une nouvelle confirmation avec votre second facteur.',
  },
  csrf: {
    code: 'CSRF_FAILED',
    en: 'The request lacks a valid anti-forgery token; reload the page.',
    fr: "La requête n'a pas de jeton anti-falsification valide ; rechargez la page.",
  },
  orgSuspended: { code: 'ORG_SUSPENDED', en: 'This organisation is suspended.', fr: 'Cette organisation est suspendue.' },
  weakPassword: {
    code: 'WEAK_PASSWORD',
    en: 'The password does not meet the password policy.',
    fr: 'Le mot de passe ne respecte pas la politique de mots de passe.',
  },
  tooManyAttempts: {
    code: 'TOO_MANY_ATTEMPTS',
    en: 'Too many failed attempts; try again later.',
    fr: 'Trop de tentatives échouées ; réessayez plus tard.',
  },
  noPendingSecondFactor: { code: 'CONFLICT', en: 'Start the set-up again: no enrolment is in progress.', fr: "Recommencez la configuration : aucun enrôlement n'est en cours." },
  webauthnFailed: { code: 'UNAUTHORIZED', en: 'The security key could not be verified.', fr: "La clé de sécurité n'a pas pu être vérifiée." },

  notFound: { code: 'NOT_FOUND', en: 'Not found.', fr: 'Introuvable.' },
  runSnapshotNotFound: {
    code: 'NOT_FOUND',
    en: 'The run names a snapshot this machine has not committed.',
    fr: "Le rapport d'exécution désigne un instantané que cette machine n'a pas enregistré.",
  },
  runSnapshotMissing: {
    code: 'BAD_REQUEST',
    en: 'A successful run must name the snapshot it committed (snapshotId).',
    fr: "Une exécution réussie doit désigner l'instantané qu'elle a enregistré (snapshotId).",
  },
  packNotFound: { code: 'NOT_FOUND', en: 'Pack not found.', fr: 'Paquet introuvable.' },
  snapshotNotFound: { code: 'NOT_FOUND', en: 'Snapshot not found.', fr: 'Instantané introuvable.' },
  snapshotNotInBin: { code: 'NOT_FOUND', en: 'This snapshot is not in the recycle bin.', fr: "Cette sauvegarde n'est pas dans la corbeille." },
  snapshotProtected: {
    code: 'CONFLICT',
    en: 'This snapshot is inside the protection window: nobody may remove it yet.',
    fr: 'Cette sauvegarde est dans la période de protection : personne ne peut encore la supprimer.',
  },
  customerNotFound: { code: 'NOT_FOUND', en: 'Customer not found.', fr: 'Client introuvable.' },
  machineNotFound: { code: 'NOT_FOUND', en: 'Machine not found.', fr: 'Machine introuvable.' },
  orgNotFound: { code: 'NOT_FOUND', en: 'Organisation not found.', fr: 'Organisation introuvable.' },
  userNotFound: { code: 'NOT_FOUND', en: 'User not found.', fr: 'Utilisateur introuvable.' },
  sessionNotFound: { code: 'NOT_FOUND', en: 'Session not found.', fr: 'Session introuvable.' },
  credentialNotFound: { code: 'NOT_FOUND', en: 'Security key not found.', fr: 'Clé de sécurité introuvable.' },

  machineNameTaken: {
    code: 'CONFLICT',
    en: 'A machine with this name is already enrolled for this customer.',
    fr: 'Une machine de ce nom est déjà enrôlée pour ce client.',
  },
  orgNameTaken: { code: 'CONFLICT', en: 'An organisation with this name already exists.', fr: 'Une organisation de ce nom existe déjà.' },
  tierNameTaken: { code: 'CONFLICT', en: 'A tier with this name already exists.', fr: 'Une offre de ce nom existe déjà.' },
  tierNotFound: { code: 'NOT_FOUND', en: 'Tier not found.', fr: 'Offre introuvable.' },
  emailTaken: { code: 'CONFLICT', en: 'A user with this email already exists.', fr: 'Un utilisateur avec cette adresse e-mail existe déjà.' },
  badOrgParent: {
    code: 'BAD_REQUEST',
    en: 'A reseller belongs to the operator and a customer to a reseller or the operator.',
    fr: "Un revendeur dépend de l'opérateur, et un client d'un revendeur ou de l'opérateur.",
  },
  customerNameTaken: { code: 'CONFLICT', en: 'A customer with this name already exists.', fr: 'Un client de ce nom existe déjà.' },
  packCollected: {
    code: 'CONFLICT',
    en: 'This pack was garbage-collected: upload its chunks in a new pack.',
    fr: 'Ce paquet a été collecté : envoyez ses blocs dans un nouveau paquet.',
  },
  repoExists: { code: 'CONFLICT', en: 'The repository is already initialised.', fr: 'Le dépôt est déjà initialisé.' },
  repoMissing: { code: 'CONFLICT', en: 'The repository is not initialised yet.', fr: "Le dépôt n'est pas encore initialisé." },
  keySlotExists: { code: 'CONFLICT', en: 'A key slot with this id already exists.', fr: 'Un emplacement de clé avec cet identifiant existe déjà.' },
  keySlotsNotSigned: {
    code: 'FORBIDDEN',
    en: "Key slots of this repository change only with a signature by its key-admin key (the passphrase or the recovery key), which this request does not carry.",
    fr: "Les emplacements de clé de ce dépôt ne changent qu'avec une signature de sa clé d'administration (la phrase secrète ou la clé de secours), absente de cette requête.",
  },
  keySlotsMoved: { code: 'CONFLICT', en: 'The key slots changed since they were read; read them again.', fr: 'Les emplacements de clé ont changé depuis leur lecture ; relisez-les.' },
  keySlotsEmpty: { code: 'BAD_REQUEST', en: 'A repository needs at least one passphrase slot.', fr: "Un dépôt doit garder au moins un emplacement de phrase secrète." },
  manifestFormatOld: {
    code: 'CONFLICT',
    en: 'This repository uses storage format 2 (machines only write): update this agent, it still writes format 1.',
    fr: "Ce dépôt utilise le format de stockage 2 (les machines ne font qu'écrire) : mettez à jour cet agent, il écrit encore au format 1.",
  },
  repoUpgradeNotAllowed: {
    code: 'FORBIDDEN',
    en: 'Upgrading this repository to storage format 2 needs the operator\'s approval first (coffre-server customer allow-key-upgrade).',
    fr: "La mise à niveau de ce dépôt au format 2 demande d'abord l'accord de l'opérateur (coffre-server customer allow-key-upgrade).",
  },
  repoNotUpgradable: { code: 'CONFLICT', en: 'Only a format-1 repository can be upgraded, keeping its chunker and compression.', fr: "Seul un dépôt au format 1 peut être mis à niveau, en gardant son découpage et sa compression." },
  repoFormat2Keys: { code: 'BAD_REQUEST', en: 'A format-2 repository needs its public read key and key-admin key (32 bytes each, base64).', fr: "Un dépôt au format 2 doit avoir sa clé publique de lecture et sa clé d'administration (32 octets chacune, en base64)." },
  tooManyKeySlots: { code: 'CONFLICT', en: 'The repository already has the maximum number of key slots.', fr: "Le dépôt a déjà le nombre maximal d'emplacements de clé." },
  snapshotExists: { code: 'CONFLICT', en: 'A snapshot with this id already exists.', fr: 'Un instantané avec cet identifiant existe déjà.' },
  missingChunks: {
    code: 'MISSING_CHUNKS',
    en: 'The snapshot references chunks that are not stored; upload them, then commit again.',
    fr: "L'instantané référence des blocs non stockés ; envoyez-les puis validez à nouveau.",
  },

  tooLarge: { code: 'TOO_LARGE', en: 'The request body is too large.', fr: 'Le corps de la requête est trop volumineux.' },
  requestTimeout: {
    code: 'REQUEST_TIMEOUT',
    en: 'The request body did not arrive in time; the connection is closed.',
    fr: "Le corps de la requête n'est pas arrivé à temps ; la connexion est fermée.",
  },
  badRange: { code: 'RANGE_NOT_SATISFIABLE', en: 'The requested byte range is not satisfiable.', fr: "La plage d'octets demandée est invalide." },
  packIntegrity: { code: 'INTEGRITY', en: 'The pack content does not match its checksums.', fr: 'Le contenu du paquet ne correspond pas à ses sommes de contrôle.' },
  refsIntegrity: {
    code: 'INTEGRITY',
    en: 'The reference list does not match the manifest.',
    fr: 'La liste de références ne correspond pas au manifeste.',
  },
  siteReadOnly: {
    code: 'SITE_READ_ONLY',
    en: 'This site is a replica: it serves restores only; backups go to the primary site.',
    fr: 'Ce site est une réplique : il ne sert que les restaurations ; les sauvegardes vont au site principal.',
  },
  siteDemoted: {
    code: 'SITE_DEMOTED',
    en: 'This site is no longer the primary (another site was promoted): it accepts no backups.',
    fr: "Ce site n'est plus le site principal (un autre site a été promu) : il n'accepte plus de sauvegardes.",
  },
  siteOutsideEu: {
    code: 'SITE_NOT_ALLOWED',
    en: "This site is outside the EU/EEA: record the customer's express authorisation first.",
    fr: "Ce site est hors de l'UE/EEE : enregistrez d'abord l'autorisation expresse du client.",
  },
  siteNotFound: { code: 'NOT_FOUND', en: 'Site not found.', fr: 'Site introuvable.' },
  badReplicationToken: {
    code: 'UNAUTHORIZED',
    en: 'The replication token is invalid, expired or already used.',
    fr: 'Le jeton de réplication est invalide, expiré ou déjà utilisé.',
  },
  internal: { code: 'INTERNAL', en: 'Internal server error.', fr: 'Erreur interne du serveur.' },
  unavailable: {
    code: 'UNAVAILABLE',
    en: 'The service is briefly unavailable (its database or storage cannot be reached); nothing was recorded. Try again in a moment.',
    fr: "Le service est momentanément indisponible (sa base de données ou son stockage est injoignable) ; rien n'a été enregistré. Réessayez dans un instant.",
  },
} as const satisfies Record<string, Reason>;
export type ReasonId = keyof typeof REASONS;

export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly code: ApiErrorCode;
  readonly status: number;
  readonly messageFr: string;
  readonly details: Readonly<Record<string, unknown>> | undefined;
  constructor(readonly reason: ReasonId, details?: Record<string, unknown>) {
    const r: Reason = REASONS[reason];
    super(r.en);
    this.code = r.code;
    this.status = ERROR_STATUS[r.code];
    this.messageFr = r.fr;
    this.details = details;
  }
}

export function apiError(reason: ReasonId, details?: Record<string, unknown>): ApiError {
  return new ApiError(reason, details);
}

export function isApiError(err: unknown, code?: ApiErrorCode): err is ApiError {
  return err instanceof ApiError && (code === undefined || err.code === code);
}
