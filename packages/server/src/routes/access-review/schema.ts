import { orgIdParams } from '../orgs/schema.js';

export const accessReportSchema = { summary: 'Access review report: people, roles, last sign-in, second factor', tags: ['access-review'], params: orgIdParams } as const;

export const markReviewedSchema = {
  summary: 'Mark the access review of an organisation as done',
  tags: ['access-review'],
  params: orgIdParams,
  body: { type: 'object', additionalProperties: false, properties: { note: { type: 'string', maxLength: 1000 } } },
} as const;
