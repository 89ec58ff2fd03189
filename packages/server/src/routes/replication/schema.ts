import { HEX64_PATTERN } from '../chunks/schema.js';

const HEX32_PATTERN = '^[0-9a-f]{32}$';
const UUID_PATTERN = '^[0-9a-f-]{36}$';

export const joinSchema = {
  summary: 'A replica site joins with a one-time token; answers its read-only replication credential',
  tags: ['replication'],
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['token', 'site', 'repairCredential'],
    properties: {
      token: { type: 'string', minLength: 1, maxLength: 200 },
      repairCredential: { type: 'string', pattern: '^cfr_[A-Za-z0-9_-]{43}$' },
      site: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'url', 'fingerprint'],
        properties: {
          name: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,62}$' },
          url: { anyOf: [{ type: 'null' }, { type: 'string', pattern: '^https://', maxLength: 500 }] },
          fingerprint: { type: 'string', minLength: 64, maxLength: 100 },
          country: { type: 'string', pattern: '^[A-Z]{2}$' },
          provider: { type: 'string', maxLength: 200 },
          hdsCertified: { type: 'boolean' },
        },
      },
    },
  },
} as const;

export const rowsSchema = {
  summary: 'One page of a replicated control-plane table, in key order',
  tags: ['replication'],
  params: { type: 'object', additionalProperties: false, required: ['table'], properties: { table: { type: 'string', pattern: '^[a-z_]{1,40}$' } } },
  querystring: { type: 'object', additionalProperties: false, properties: { after: { type: 'string', maxLength: 2000 } } },
} as const;

const customerParams = { customer: { type: 'string', pattern: UUID_PATTERN } } as const;

export const customerListSchema = {
  summary: "One page of a customer's packs or snapshot rows, in id order",
  tags: ['replication'],
  params: { type: 'object', additionalProperties: false, required: ['customer'], properties: customerParams },
  querystring: { type: 'object', additionalProperties: false, properties: { after: { type: 'string', pattern: '^[0-9a-f]{32,64}$' } } },
} as const;

export const packObjectSchema = {
  summary: "A pack's bytes as stored (the replica checks every hash)",
  tags: ['replication'],
  params: { type: 'object', additionalProperties: false, required: ['customer', 'id'], properties: { ...customerParams, id: { type: 'string', pattern: HEX64_PATTERN } } },
} as const;

export const refsObjectSchema = {
  summary: "A snapshot's reference list as stored",
  tags: ['replication'],
  params: { type: 'object', additionalProperties: false, required: ['customer', 'id'], properties: { ...customerParams, id: { type: 'string', pattern: HEX32_PATTERN } } },
} as const;

export const auditSchema = {
  summary: 'Audit entries from a sequence number on, with the purge anchor',
  tags: ['replication'],
  querystring: { type: 'object', additionalProperties: false, required: ['from'], properties: { from: { type: 'string', pattern: '^[0-9]{1,15}$' } } },
} as const;

export const progressSchema = {
  summary: "The replica's report after a complete pass",
  tags: ['replication'],
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['site', 'upTo', 'complete', 'customers'],
    properties: {
      complete: { type: 'boolean' },
      site: {
        type: 'object',
        additionalProperties: false,
        required: ['url', 'fingerprint'],
        properties: { url: { anyOf: [{ type: 'null' }, { type: 'string', pattern: '^https://', maxLength: 500 }] }, fingerprint: { type: 'string', minLength: 64, maxLength: 100 } },
      },
      upTo: { type: 'string', minLength: 20, maxLength: 30 },
      customers: { type: 'array', maxItems: 100000, items: { type: 'string', pattern: UUID_PATTERN } },
    },
  },
} as const;

export const stateSchema = { summary: "The primary's clock, role, epoch, schema version, audit head and customers, at the start of a pass", tags: ['replication'] } as const;

export const announceSchema = {
  summary: 'A replica says where agents reach it (its URL and certificate fingerprint)',
  tags: ['replication'],
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['url', 'fingerprint'],
    properties: { url: { anyOf: [{ type: 'null' }, { type: 'string', pattern: '^https://', maxLength: 500 }] }, fingerprint: { type: 'string', minLength: 64, maxLength: 100 } },
  },
} as const;
