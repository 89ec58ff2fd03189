const iso = { type: 'string', format: 'date-time' } as const;
const count = { type: 'integer', minimum: 0, maximum: 1e15 } as const;

export const heartbeatSchema = {
  summary: "The agent daemon's heartbeat: the machine is up and its daemon running",
  tags: ['daemon'],
  body: {
    type: 'object',
    required: ['agentVersion'],
    additionalProperties: false,
    properties: {
      agentVersion: { type: 'string', pattern: '^[0-9A-Za-z.+-]{1,40}$' },
      // When the daemon started (agent clock).
      startedAt: iso,
    },
  },
} as const;

export const reportRestoreTestSchema = {
  summary: 'Report a restore test of this machine: a sample of a snapshot restored to a temporary place and compared with the source',
  tags: ['daemon'],
  body: {
    type: 'object',
    required: ['snapshotId', 'startedAt', 'finishedAt', 'result', 'sampledFiles', 'comparedFiles', 'bytes', 'mismatches'],
    additionalProperties: false,
    properties: {
      snapshotId: { type: 'string', pattern: '^[0-9a-f]{32}$' },
      startedAt: iso,
      finishedAt: iso,
      result: { type: 'string', enum: ['success', 'failed'] },
      sampledFiles: count,
      // Files still unchanged at the source, so compared byte for byte.
      comparedFiles: count,
      bytes: count,
      mismatches: count,
      errorCode: { type: 'string', pattern: '^[A-Z_]{2,40}$' },
    },
  },
} as const;
