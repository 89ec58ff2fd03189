/** Branded ids: a CustomerId can never be passed where a MachineId is expected. */
export type CustomerId = string & { readonly __brand: 'CustomerId' };
export type MachineId = string & { readonly __brand: 'MachineId' };

/** Who is calling. Today only enrolled machines; users and roles come with the console. */
export interface MachinePrincipal {
  readonly kind: 'machine';
  readonly machineId: MachineId;
  readonly machineName: string;
  /** The tenant: every query of a machine request is scoped to it. */
  readonly customerId: CustomerId;
}
export type Principal = MachinePrincipal;

/** The server's clock, injectable so tests can move time (token expiry, last-seen). */
export type Clock = () => Date;
export const systemClock: Clock = () => new Date();
export const isoNow = (clock: Clock): string => clock().toISOString();
