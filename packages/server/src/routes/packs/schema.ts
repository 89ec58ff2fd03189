import { HEX64_PATTERN } from '../chunks/schema.js';

const params = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: { id: { type: 'string', pattern: HEX64_PATTERN } },
} as const;

/** The body is a raw byte stream (application/octet-stream), checked by PackStreamVerifier, not by a schema. */
export const putPackSchema = { params } as const;
export const getPackSchema = { params } as const;
