import { MAX_BATCH_IDS } from '@coffre/core';

export const HEX64_PATTERN = '^[0-9a-f]{64}$';

const chunkIdsBody = {
  type: 'object',
  additionalProperties: false,
  required: ['ids'],
  properties: { ids: { type: 'array', minItems: 1, maxItems: MAX_BATCH_IDS, items: { type: 'string', pattern: HEX64_PATTERN } } },
} as const;

export const existsSchema = { body: chunkIdsBody } as const;
export const locateSchema = { body: chunkIdsBody } as const;
