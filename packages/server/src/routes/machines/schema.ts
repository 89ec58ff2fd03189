import { orgIdParams } from '../orgs/schema.js';

export const listMachinesSchema = {} as const;

const machineIdParams = { type: 'object', required: ['machineId'], properties: { machineId: { type: 'string', format: 'uuid' } } } as const;

export const orgMachinesSchema = { summary: "A customer's machines", tags: ['machines'], params: orgIdParams } as const;

export const createEnrollTokenSchema = {
  summary: 'Create a one-time enrollment token for a new machine of a customer (shown once, with the command to run)',
  tags: ['machines'],
  params: orgIdParams,
  body: { type: 'object', additionalProperties: false, properties: { ttlHours: { type: 'integer', minimum: 1, maximum: 168 } } },
} as const;

export const revokeMachineSchema = { summary: "Revoke a machine's credential at once (loss, theft)", tags: ['machines'], params: machineIdParams } as const;

export const reissueMachineSchema = {
  summary: "Revoke a machine's credential and issue a one-time token to enrol it again (same name and history)",
  tags: ['machines'],
  params: machineIdParams,
  body: { type: 'object', additionalProperties: false, properties: { ttlHours: { type: 'integer', minimum: 1, maximum: 168 } } },
} as const;
