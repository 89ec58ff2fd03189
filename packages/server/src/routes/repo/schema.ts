import { MAX_KEY_SLOTS } from '../../db/queries/repo.js';

export const MAX_KEY_SLOT_BYTES = 16 * 1024;

const repoConfig = {
  type: 'object',
  additionalProperties: false,
  required: ['v', 'chunker', 'compression'],
  properties: {
    v: { const: 1 },
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
