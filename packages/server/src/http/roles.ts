/** The role table lives in @coffre/core (shared with the console); the server enforces it (http/policy.ts). */
export { mayGrant, mayResetCredentials, ROLE_ACTIONS, roleAllows, ROLES, ROLES_BY_ORG_TYPE, isRole, SECOND_FACTOR_REQUIRED, USER_ACTIONS, type Role, type UserAction } from '@coffre/core';
