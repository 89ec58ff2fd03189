import { orgIdParams } from '../orgs/schema.js';

const iso = { type: 'string', format: 'date-time' } as const;
const count = { type: 'integer', minimum: 0, maximum: 1e15 } as const;

export const reportRunSchema = {
  summary: 'Report a backup run of this machine (counts and result only, never a path)',
  tags: ['runs'],
  body: {
    type: 'object',
    required: ['startedAt', 'finishedAt', 'result', 'files', 'bytes', 'addedBytes', 'warnings'],
    additionalProperties: false,
    properties: {
      startedAt: iso,
      finishedAt: iso,
      result: { type: 'string', enum: ['success', 'partial', 'failed'] },
      files: count,
      bytes: count,
      addedBytes: count,
      warnings: count,
      snapshotId: { type: 'string', pattern: '^[0-9a-f]{32}$' },
      // A stable error code of the agent's catalogue (e.g. UNREACHABLE), never a message.
      errorCode: { type: 'string', pattern: '^[A-Z_]{2,40}$' },
      // The scheduled job the run belongs to (daemon), and what started it.
      job: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' },
      trigger: { type: 'string', enum: ['manual', 'schedule', 'retry'] },
    },
  },
} as const;

export const listRunsSchema = {
  summary: "A customer's backup runs, newest first",
  tags: ['runs'],
  params: orgIdParams,
  querystring: { type: 'object', additionalProperties: false, properties: { machineId: { type: 'string', format: 'uuid' } } },
} as const;
