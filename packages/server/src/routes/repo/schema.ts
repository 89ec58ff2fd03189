import { MAX_KEY_SLOTS } from '../../db/queries/repo.js';

export const MAX_KEY_SLOT_BYTES = 16 * 1024;
/** 32 bytes in base64. */
const PUBLIC_KEY = '^[A-Za-z0-9+/]{43}=$';
const SIGNATURE = '^[A-Za-z0-9+/]{86}==$';

const repoConfig = {
  type: 'object',
  additionalProperties: false,
  required: ['v', 'chunker', 'compression'],
  properties: {
    v: { enum: [1, 2] },
    readKey: { type: 'string', pattern: PUBLIC_KEY },
    adminKey: { type: 'string', pattern: PUBLIC_KEY },
    chunker: {
      type: 'object',
      additionalProperties: false,
      required: ['min', 'avg', 'max'],
      properties: { min: { type: 'integer' }, avg: { type: 'integer' }, max: { type: 'integer' } },
    },
    compression: { const: 'zstd' },
  },
} as const;

/** Key slots are opaque to the server: only an id is required; the rest is stored as sent. */
const keySlot = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 128 } },
} as const;

export const getRepoSchema = {} as const;

export const initRepoSchema = {
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['config', 'keySlots'],
    properties: {
      config: repoConfig,
      // At least one: a repository nobody can open could never be initialised again.
      keySlots: { type: 'array', minItems: 1, maxItems: MAX_KEY_SLOTS, items: keySlot },
    },
  },
} as const;

export const addKeySlotSchema = {
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['slot'],
    properties: { slot: keySlot },
  },
} as const;

export const replaceKeySlotsSchema = {
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['slots', 'expect', 'generation', 'signature'],
    properties: {
      slots: { type: 'array', minItems: 1, maxItems: MAX_KEY_SLOTS, items: keySlot },
      expect: { type: 'string', pattern: '^[0-9a-f]{64}$' },
      generation: { type: 'integer', minimum: 0, maximum: 2147483647 },
      signature: { type: 'string', pattern: SIGNATURE },
    },
  },
} as const;

export const upgradeRepoSchema = {
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['config', 'signature'],
    properties: { config: repoConfig, signature: { type: 'string', pattern: SIGNATURE } },
  },
} as const;
