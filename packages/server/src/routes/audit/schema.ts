const filters = {
  // No control characters: none is in a label or an id, and PostgreSQL refuses a NUL in text (a 500, not a 400).
  actor: { type: 'string', maxLength: 254, pattern: '^[^\\x00-\\x1f\\x7f]*$' },
  action: { type: 'string', maxLength: 100, pattern: '^[a-z.-]+$' },
  outcome: { type: 'string', enum: ['success', 'failure', 'denied'] },
  orgId: { type: 'string', format: 'uuid' },
  since: { type: 'string', format: 'date-time' },
  until: { type: 'string', format: 'date-time' },
} as const;

export const listAuditSchema = {
  summary: 'Audit trail entries, newest first (cursor pagination with `before`)',
  tags: ['audit'],
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: { ...filters, limit: { type: 'string', pattern: '^[0-9]{1,4}$' }, before: { type: 'string', pattern: '^[0-9]{1,15}$' } },
  },
} as const;

export const exportAuditSchema = {
  summary: 'Export the audit trail (CSV or JSON), oldest first',
  tags: ['audit'],
  querystring: { type: 'object', additionalProperties: false, required: ['format'], properties: { ...filters, format: { type: 'string', enum: ['csv', 'json'] } } },
} as const;

export const verifyAuditSchema = { summary: 'Verify the hash chain of the whole audit trail; names the first bad entry', tags: ['audit'] } as const;
