import { randomUUID } from 'node:crypto';
import { apiError } from '../../errors.js';
import type { CustomerId, MachineId } from '../../types.js';
import type { Database } from '../database.js';
import { LockName, writeTransaction } from '../engine.js';
import type { MachinesTable } from '../schema.js';

export type MachineRow = MachinesTable & { id: MachineId; customer_id: CustomerId };

/**
 * Stores a new enrolment token. A re-issue token replaces the machine's earlier unused ones
 * (they expire now, in the same transaction): only the latest re-issue can give the machine
 * a credential, so a token shown earlier, perhaps to the wrong person, is worth nothing.
 * Returns how many earlier tokens were invalidated.
 */
export async function createEnrollToken(
  db: Database,
  args: { id: string; customerId: CustomerId; tokenHash: string; now: string; expiresAt: string; createdBy?: string; reissueMachineId?: MachineId },
): Promise<number> {
  const row = {
    id: args.id,
    customer_id: args.customerId,
    token_hash: args.tokenHash,
    created_at: args.now,
    expires_at: args.expiresAt,
    used_at: null,
    machine_id: null,
    reissue_machine_id: args.reissueMachineId ?? null,
    created_by: args.createdBy ?? null,
  };
  const machineId = args.reissueMachineId;
  if (machineId === undefined) {
    await db.insertInto('enroll_tokens').values(row).execute();
    return 0;
  }
  // Under the customer's lock, as the enrolment that consumes tokens (enrollMachine).
  return writeTransaction(db, [LockName.customer(args.customerId)], async (trx) => {
    const expired = await trx
      .updateTable('enroll_tokens')
      .set({ expires_at: args.now })
      .where('customer_id', '=', args.customerId)
      .where('reissue_machine_id', '=', machineId)
      .where('used_at', 'is', null)
      .where('expires_at', '>', args.now)
      .executeTakeFirst();
    await trx.insertInto('enroll_tokens').values(row).execute();
    return Number(expired.numUpdatedRows);
  });
}

export interface EnrollArgs {
  readonly tokenHash: string;
  readonly credentialHash: string;
  readonly now: string;
  readonly name: string;
  readonly hostname: string;
  readonly os: string;
  readonly agentVersion: string;
}

/**
 * Consumes a one-time enrollment token and creates the machine, in one transaction; a
 * re-issue token instead gives its machine a new credential (same name, same history),
 * which also ends any revocation.
 * The token is claimed by a conditional UPDATE first: it is a write, so concurrent uses
 * of one token serialise on it and exactly one sees a row change. Any failure after the
 * claim (name taken) rolls back, leaving the token usable for another attempt.
 */
export async function enrollMachine(db: Database, a: EnrollArgs): Promise<{ machine: MachineRow; customerName: string; reissued: boolean }> {
  // A token's customer never changes: read it first, to know which customer's lock to take.
  const holder = await db.selectFrom('enroll_tokens').select('customer_id').where('token_hash', '=', a.tokenHash).executeTakeFirst();
  if (!holder) throw apiError('badEnrollToken');
  // The customer's machines and enrollment tokens: the claim and the machine it creates (or re-keys) go together.
  return writeTransaction(db, [LockName.customer(holder.customer_id)], async (trx) => {
    const claimed = await trx
      .updateTable('enroll_tokens')
      .set({ used_at: a.now })
      .where('token_hash', '=', a.tokenHash)
      .where('used_at', 'is', null)
      .where('expires_at', '>', a.now)
      .executeTakeFirst();
    if (Number(claimed.numUpdatedRows) !== 1) throw apiError('badEnrollToken');

    const token = await trx
      .selectFrom('enroll_tokens as t')
      .innerJoin('customers as c', 'c.id', 't.customer_id')
      .innerJoin('orgs as o', 'o.id', 't.customer_id')
      .select(['t.id', 't.customer_id', 't.reissue_machine_id', 'c.name as customer_name', 'o.status'])
      .where('t.token_hash', '=', a.tokenHash)
      .executeTakeFirstOrThrow();
    if (token.status !== 'active') throw apiError('orgSuspended');

    if (token.reissue_machine_id !== null) {
      const updated = await trx
        .updateTable('machines')
        .set({ credential_hash: a.credentialHash, revoked_at: null, credential_issued_at: a.now, hostname: a.hostname, os: a.os, agent_version: a.agentVersion, last_seen_at: a.now })
        .where('id', '=', token.reissue_machine_id)
        .where('customer_id', '=', token.customer_id)
        .executeTakeFirst();
      if (Number(updated.numUpdatedRows) !== 1) throw apiError('badEnrollToken');
      await trx.updateTable('enroll_tokens').set({ machine_id: token.reissue_machine_id }).where('id', '=', token.id).execute();
      const machine = (await trx.selectFrom('machines').selectAll().where('id', '=', token.reissue_machine_id).executeTakeFirstOrThrow()) as MachineRow;
      return { machine, customerName: token.customer_name, reissued: true };
    }

    const machine: MachineRow = {
      id: randomUUID() as MachineId,
      customer_id: token.customer_id as CustomerId,
      name: a.name,
      hostname: a.hostname,
      os: a.os,
      agent_version: a.agentVersion,
      credential_hash: a.credentialHash,
      created_at: a.now,
      last_seen_at: a.now,
      revoked_at: null,
      credential_issued_at: a.now,
      schedule_reported_at: null,
      schedule_since: null,
      last_heartbeat_at: null,
      retention_json: null,
    };
    const inserted = await trx
      .insertInto('machines')
      .values(machine)
      .onConflict((oc) => oc.columns(['customer_id', 'name']).doNothing())
      .executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) !== 1) throw apiError('machineNameTaken', { machineName: a.name });

    await trx.updateTable('enroll_tokens').set({ machine_id: machine.id }).where('id', '=', token.id).execute();
    return { machine, customerName: token.customer_name, reissued: false };
  });
}

/**
 * The machine holding a credential, with whether its customer (or the reseller above it)
 * is suspended: one query on every machine request.
 */
export async function findMachineByCredentialHash(db: Database, credentialHash: string): Promise<(MachineRow & { suspended: boolean }) | undefined> {
  const row = await db
    .selectFrom('machines as m')
    .innerJoin('orgs as o', 'o.id', 'm.customer_id')
    .leftJoin('orgs as p', 'p.id', 'o.parent_id')
    .selectAll('m')
    .select(['o.status as org_status', 'p.status as parent_status'])
    .where('m.credential_hash', '=', credentialHash)
    .executeTakeFirst();
  if (!row) return undefined;
  const { org_status, parent_status, ...machine } = row;
  return { ...(machine as MachineRow), suspended: org_status === 'suspended' || parent_status === 'suspended' };
}

/** Records activity, writing at most once per `minIntervalMs` per machine (the condition is in SQL, so racing requests write once). */
export async function touchMachine(db: Database, machineId: MachineId, now: Date, minIntervalMs: number): Promise<void> {
  const cutoff = new Date(now.getTime() - minIntervalMs).toISOString();
  await db
    .updateTable('machines')
    .set({ last_seen_at: now.toISOString() })
    .where('id', '=', machineId)
    .where((eb) => eb.or([eb('last_seen_at', 'is', null), eb('last_seen_at', '<=', cutoff)]))
    .execute();
}

export async function listMachines(db: Database, customerId: CustomerId): Promise<MachineRow[]> {
  return (await db
    .selectFrom('machines')
    .selectAll()
    .where('customer_id', '=', customerId)
    .orderBy('created_at')
    .orderBy('name')
    .execute()) as MachineRow[];
}

/** Revokes a machine's credential (loss, theft). Idempotent; NOT_FOUND if no such machine. */
export async function revokeMachine(db: Database, customerId: CustomerId, name: string, now: string): Promise<MachineRow> {
  await db.updateTable('machines').set({ revoked_at: now }).where('customer_id', '=', customerId).where('name', '=', name).where('revoked_at', 'is', null).execute();
  const row = await db.selectFrom('machines').selectAll().where('customer_id', '=', customerId).where('name', '=', name).executeTakeFirst();
  if (!row) throw apiError('machineNotFound', { name });
  return row as MachineRow;
}

export async function findMachine(db: Database, id: string): Promise<MachineRow | undefined> {
  return (await db.selectFrom('machines').selectAll().where('id', '=', id).executeTakeFirst()) as MachineRow | undefined;
}

/** Revokes by id (idempotent); returns the row, or undefined if there is no such machine. */
export async function revokeMachineById(db: Database, id: MachineId, now: string): Promise<MachineRow | undefined> {
  await db.updateTable('machines').set({ revoked_at: now }).where('id', '=', id).where('revoked_at', 'is', null).execute();
  return findMachine(db, id);
}

/** Every machine of the given customers (revoked ones too), by name. */
export async function machinesOfCustomers(db: Database, customerIds: readonly string[]): Promise<MachineRow[]> {
  if (customerIds.length === 0) return [];
  return (await db.selectFrom('machines').selectAll().where('customer_id', 'in', customerIds).orderBy('name').execute()) as MachineRow[];
}

/** A machine's daemon checked in: it is alive, and runs this agent version. */
export async function recordHeartbeat(db: Database, machineId: MachineId, now: string, agentVersion: string): Promise<void> {
  await db.updateTable('machines').set({ last_heartbeat_at: now, last_seen_at: now, agent_version: agentVersion }).where('id', '=', machineId).execute();
}
