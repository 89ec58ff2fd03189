/** JSON schemas of the sign-in routes (validated by Fastify, published in the OpenAPI document). */
// No control characters: none is in an address, and PostgreSQL refuses a NUL in text (a 500 before any password check).
const email = { type: 'string', minLength: 3, maxLength: 254, pattern: '^[^\\x00-\\x1f\\x7f]+$' } as const;

export const loginSchema = {
  summary: 'Sign in with email and password (first step)',
  tags: ['auth'],
  body: {
    type: 'object',
    required: ['email', 'password'],
    additionalProperties: false,
    properties: { email, password: { type: 'string', minLength: 1, maxLength: 1024 } },
  },
} as const;

export const totpSchema = {
  summary: 'Prove the second factor with a TOTP code (sign-in or re-authentication)',
  tags: ['auth'],
  body: { type: 'object', required: ['code'], additionalProperties: false, properties: { code: { type: 'string', minLength: 1, maxLength: 16 } } },
} as const;

export const recoverySchema = {
  summary: 'Prove the second factor with a one-time recovery code',
  tags: ['auth'],
  body: { type: 'object', required: ['code'], additionalProperties: false, properties: { code: { type: 'string', minLength: 1, maxLength: 32 } } },
} as const;

export const webauthnOptionsSchema = { summary: 'Challenge for a security key (sign-in or re-authentication)', tags: ['auth'] } as const;

export const webauthnSchema = {
  summary: 'Prove the second factor with a security key',
  tags: ['auth'],
  body: { type: 'object', required: ['response'], additionalProperties: false, properties: { response: { type: 'object' } } },
} as const;

export const logoutSchema = { summary: 'Sign out (ends this session)', tags: ['auth'] } as const;
export const sessionSchema = { summary: 'The current session: who, what stage, the CSRF token', tags: ['auth'] } as const;
