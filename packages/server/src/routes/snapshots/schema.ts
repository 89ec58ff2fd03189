import { NAME_PATTERN } from '../../names.js';
import { HEX64_PATTERN } from '../chunks/schema.js';

const HEX32_PATTERN = '^[0-9a-f]{32}$';

/** ManifestUpload (core/manifest.ts). The secret is opaque ciphertext; the MAC is checked by agents, not here. */
const manifest = {
  type: 'object',
  additionalProperties: false,
  required: ['v', 'id', 'parent', 'refsSha256', 'refCount', 'logicalSize', 'secret', 'mac'],
  properties: {
    v: { enum: [1, 2] },
    id: { type: 'string', pattern: HEX32_PATTERN },
    parent: { anyOf: [{ type: 'null' }, { type: 'string', pattern: HEX32_PATTERN }] },
    refsSha256: { type: 'string', pattern: HEX64_PATTERN },
    refCount: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
    logicalSize: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
    secret: { type: 'string', minLength: 1, maxLength: 4 * 1024 * 1024 },
    mac: { type: 'string', pattern: HEX64_PATTERN },
  },
} as const;

export const commitSnapshotSchema = {
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['manifest', 'refs'],
    // refs: base64, checked (canonical encoding) by the handler to keep one clear error.
    properties: { manifest, refs: { type: 'string' } },
  },
} as const;

export const listSnapshotsSchema = {
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: { machine: { type: 'string', minLength: 1, maxLength: 128, pattern: NAME_PATTERN } },
  },
} as const;

const idParams = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: { id: { type: 'string', pattern: HEX32_PATTERN } },
} as const;

export const getSnapshotSchema = { params: idParams } as const;
export const getSnapshotRefsSchema = { params: idParams } as const;
