import type { Locale, OrgType } from './db/schema.js';
import type { Role } from './http/roles.js';

/** Branded ids: a CustomerId can never be passed where a MachineId is expected. */
export type CustomerId = string & { readonly __brand: 'CustomerId' };
export type MachineId = string & { readonly __brand: 'MachineId' };

export type OrgId = string & { readonly __brand: 'OrgId' };
export type UserId = string & { readonly __brand: 'UserId' };

/** An enrolled machine, authenticated by its bearer credential. */
export interface MachinePrincipal {
  readonly kind: 'machine';
  readonly machineId: MachineId;
  readonly machineName: string;
  /** The tenant: every query of a machine request is scoped to it. */
  readonly customerId: CustomerId;
}
/**
 * What a signed-in session may do yet: 'second-factor' until the second factor is proven;
 * 'setup' while the password must be changed or no second factor is enrolled; 'full' after.
 */
export type SessionStage = 'second-factor' | 'setup' | 'full';

/** A person, authenticated by a session cookie. */
export interface UserPrincipal {
  readonly kind: 'user';
  readonly userId: UserId;
  readonly email: string;
  readonly name: string;
  readonly role: Role;
  readonly orgId: OrgId;
  readonly orgType: OrgType;
  readonly sessionId: string;
  readonly stage: SessionStage;
  /** Time of the session's last second-factor proof (re-authentication window). */
  readonly secondFactorAt: string | null;
  readonly locale: Locale;
}

/** A replica site pulling from this one (read-only replication routes only). */
export interface ReplicaPrincipal {
  readonly kind: 'replica';
  readonly credentialId: string;
  readonly siteName: string;
}
export type Principal = MachinePrincipal | UserPrincipal | ReplicaPrincipal;

/** The server's clock, injectable so tests can move time (token expiry, last-seen). */
export type Clock = () => Date;
export const systemClock: Clock = () => new Date();
export const isoNow = (clock: Clock): string => clock().toISOString();
