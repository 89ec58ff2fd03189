import { ROLES } from '../../http/roles.js';
import { orgIdParams } from '../orgs/schema.js';

const userIdParams = { type: 'object', required: ['userId'], properties: { userId: { type: 'string', format: 'uuid' } } } as const;
const name = { type: 'string', minLength: 2, maxLength: 100, pattern: '^[^\\x00-\\x1f\\x7f]+$' } as const;

export const listUsersSchema = { summary: 'People of an organisation', tags: ['users'], params: orgIdParams } as const;

export const createUserSchema = {
  summary: 'Create a person (returns a temporary password, shown once)',
  tags: ['users'],
  params: orgIdParams,
  body: {
    type: 'object',
    required: ['email', 'name', 'role'],
    additionalProperties: false,
    properties: {
      email: { type: 'string', maxLength: 254, pattern: '^[^\\s@]+@[^\\s@]+\\.[^\\s@]+$' },
      name,
      role: { type: 'string', enum: ROLES },
      locale: { type: 'string', enum: ['fr', 'en'] },
    },
  },
} as const;

export const getUserSchema = { summary: 'One person', tags: ['users'], params: userIdParams } as const;

export const updateUserSchema = {
  summary: 'Rename, change the role of, disable or enable a person',
  tags: ['users'],
  params: userIdParams,
  body: {
    type: 'object',
    additionalProperties: false,
    minProperties: 1,
    properties: { name, role: { type: 'string', enum: ROLES }, status: { type: 'string', enum: ['active', 'disabled'] }, locale: { type: 'string', enum: ['fr', 'en'] } },
  },
} as const;

export const resetSecondFactorSchema = { summary: "Remove a person's second factors (they enrol again at next sign-in)", tags: ['users'], params: userIdParams } as const;
export const resetPasswordSchema = { summary: 'Give a person a new temporary password (shown once)', tags: ['users'], params: userIdParams } as const;
