import { NAME_PATTERN, TEXT_PATTERN } from '../../names.js';

/** The token is only typed here: any malformed token gets the same 401 as a wrong one. */
export const enrollSchema = {
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['token', 'machineName', 'hostname', 'os', 'agentVersion'],
    properties: {
      token: { type: 'string' },
      machineName: { type: 'string', minLength: 1, maxLength: 128, pattern: NAME_PATTERN },
      hostname: { type: 'string', maxLength: 255, pattern: TEXT_PATTERN },
      os: { type: 'string', maxLength: 255, pattern: TEXT_PATTERN },
      agentVersion: { type: 'string', maxLength: 64, pattern: TEXT_PATTERN },
    },
  },
} as const;
