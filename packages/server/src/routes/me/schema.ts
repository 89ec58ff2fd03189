/** JSON schemas of a person's own account routes. */
export const changePasswordSchema = {
  summary: 'Change my password (required at first sign-in)',
  tags: ['me'],
  body: {
    type: 'object',
    required: ['currentPassword', 'newPassword'],
    additionalProperties: false,
    properties: { currentPassword: { type: 'string', minLength: 1, maxLength: 1024 }, newPassword: { type: 'string', minLength: 1, maxLength: 1024 } },
  },
} as const;

export const totpSetupSchema = { summary: 'Start enrolling an authenticator app (returns the secret and an otpauth URI)', tags: ['me'] } as const;

export const totpConfirmSchema = {
  summary: 'Confirm the authenticator app with a first code; returns one-time recovery codes',
  tags: ['me'],
  body: { type: 'object', required: ['code'], additionalProperties: false, properties: { code: { type: 'string', minLength: 1, maxLength: 16 } } },
} as const;

export const recoveryCodesSchema = { summary: 'Replace my recovery codes (the old ones stop working)', tags: ['me'] } as const;
export const webauthnRegisterOptionsSchema = { summary: 'Start registering a security key', tags: ['me'] } as const;

export const webauthnRegisterSchema = {
  summary: 'Finish registering a security key',
  tags: ['me'],
  body: {
    type: 'object',
    required: ['response'],
    additionalProperties: false,
    properties: { response: { type: 'object' }, name: { type: 'string', minLength: 1, maxLength: 100 } },
  },
} as const;

export const webauthnDeleteSchema = {
  summary: 'Remove one of my security keys',
  tags: ['me'],
  // base64url, as credential ids are stored: anything else (a NUL byte, which PostgreSQL refuses in text) is a 400, never a query.
  params: { type: 'object', required: ['credentialId'], properties: { credentialId: { type: 'string', minLength: 1, maxLength: 1400, pattern: '^[A-Za-z0-9_-]+$' } } },
} as const;

export const listSessionsSchema = { summary: 'My open sessions', tags: ['me'] } as const;

export const revokeSessionSchema = {
  summary: 'End one of my sessions',
  tags: ['me'],
  params: { type: 'object', required: ['sessionId'], properties: { sessionId: { type: 'string', format: 'uuid' } } },
} as const;
