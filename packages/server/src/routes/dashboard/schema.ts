import { orgIdParams } from '../orgs/schema.js';

export const dashboardSchema = { summary: 'Every customer I may see, with its backup status and volumes', tags: ['dashboard'] } as const;

export const orgSnapshotsSchema = {
  summary: "A customer's snapshots, newest first (clear metadata only: time, machine, logical size)",
  tags: ['dashboard'],
  params: orgIdParams,
  querystring: { type: 'object', additionalProperties: false, properties: { machineId: { type: 'string', format: 'uuid' } } },
} as const;

export const orgUsageSchema = { summary: "A customer's protected and stored volume per day", tags: ['dashboard'], params: orgIdParams } as const;

export const tiersSchema = { summary: "The operator's volume tiers (limit of protected volume, monthly price)", tags: ['dashboard'] } as const;
