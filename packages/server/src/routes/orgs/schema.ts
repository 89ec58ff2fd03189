/** JSON schemas of the organisation routes. */
const uuid = { type: 'string', format: 'uuid' } as const;
const email = { type: ['string', 'null'], maxLength: 254, pattern: '^[^\\s@]+@[^\\s@]+\\.[^\\s@]+$' } as const;
// No control characters (PostgreSQL refuses a NUL in text: a 500), as for names.
const text = { type: ['string', 'null'], maxLength: 200, pattern: '^[^\\x00-\\x1f\\x7f]*$' } as const;
const contact = {
  alertEmail: email,
  referentName: text,
  referentEmail: email,
  referentPhone: { type: ['string', 'null'], maxLength: 40, pattern: '^[0-9+() .-]*$' },
  locale: { type: 'string', enum: ['fr', 'en'] },
} as const;

export const orgIdParams = { type: 'object', required: ['orgId'], properties: { orgId: uuid } } as const;

export const listOrgsSchema = { summary: 'Organisations I can see (mine and below)', tags: ['orgs'] } as const;

export const createOrgSchema = {
  summary: 'Create a reseller (under the operator) or a customer (under a reseller or the operator)',
  tags: ['orgs'],
  body: {
    type: 'object',
    required: ['name', 'type'],
    additionalProperties: false,
    properties: { name: { type: 'string', minLength: 1, maxLength: 100, pattern: '^[^\\x00-\\x1f\\x7f]+$' }, type: { type: 'string', enum: ['reseller', 'customer'] }, parentId: uuid, ...contact },
  },
} as const;

export const getOrgSchema = { summary: 'One organisation', tags: ['orgs'], params: orgIdParams } as const;

export const updateOrgSchema = {
  summary: 'Update contact addresses (alert address, incident referent) and language',
  tags: ['orgs'],
  params: orgIdParams,
  body: { type: 'object', additionalProperties: false, minProperties: 1, properties: contact },
} as const;

export const suspendOrgSchema = { summary: 'Suspend an organisation (its people and machines are refused)', tags: ['orgs'], params: orgIdParams } as const;
export const resumeOrgSchema = { summary: 'End a suspension', tags: ['orgs'], params: orgIdParams } as const;
