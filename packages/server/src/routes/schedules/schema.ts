import { orgIdParams } from '../orgs/schema.js';

export const MAX_JOBS_PER_MACHINE = 50;

export const reportJobsSchema = {
  summary: "Report this machine's scheduled jobs (name, cron schedule, time zone; never the paths): the observatory's expectations",
  tags: ['schedules'],
  body: {
    type: 'object',
    required: ['jobs'],
    additionalProperties: false,
    properties: {
      jobs: {
        type: 'array',
        maxItems: MAX_JOBS_PER_MACHINE,
        items: {
          type: 'object',
          required: ['name', 'schedule', 'timezone'],
          additionalProperties: false,
          properties: {
            name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' },
            schedule: { type: 'string', minLength: 1, maxLength: 100 },
            timezone: { type: 'string', minLength: 1, maxLength: 64 },
          },
        },
      },
    },
  },
} as const;

export const listAlertsSchema = {
  summary: 'Alerts of an organisation and the customers below it (open ones first)',
  tags: ['schedules'],
  params: orgIdParams,
  querystring: { type: 'object', additionalProperties: false, properties: { state: { type: 'string', enum: ['open', 'all'], default: 'open' } } },
} as const;
