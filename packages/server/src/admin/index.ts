import { randomUUID } from 'node:crypto';
import type { MachineRecord } from '@coffre/core';
import { initDataDir, type DataDir } from '../datadir.js';
import { openDatabase, type Database } from '../db/database.js';
import { createCustomer, findCustomerByName, listCustomers } from '../db/queries/customers.js';
import { createEnrollToken as insertEnrollToken, listMachines, revokeMachine } from '../db/queries/machines.js';
import { apiError } from '../errors.js';
import { presentMachine } from '../routes/machines/presenter.js';
import { hashSecret, newEnrollToken } from '../secrets.js';
import { isoNow, systemClock, type Clock, type CustomerId } from '../types.js';

/**
 * Management operations used by the CLI (and by tests as factories). They work directly
 * on the data dir's database, also while the server runs (SQLite WAL). They never print.
 */
export interface AdminContext {
  readonly db: Database;
  readonly dataDir: DataDir;
  readonly clock: Clock;
}

/** Initialises `dir` if needed (same as `start`) and opens its database; call `close` after. */
export async function openAdmin(dir: string, clock: Clock = systemClock): Promise<AdminContext & { close(): Promise<void> }> {
  const dataDir = await initDataDir(dir);
  const { db } = await openDatabase(dataDir.paths.db);
  return { db, dataDir, clock, close: () => db.destroy() };
}

export interface CustomerSummary {
  readonly id: string;
  readonly name: string;
  readonly createdAt: string;
  readonly machines: number;
}

export async function adminCreateCustomer(ctx: AdminContext, name: string): Promise<CustomerSummary> {
  const row = await createCustomer(ctx.db, name, isoNow(ctx.clock));
  return { id: row.id, name: row.name, createdAt: row.created_at, machines: 0 };
}

export async function adminListCustomers(ctx: AdminContext): Promise<CustomerSummary[]> {
  return (await listCustomers(ctx.db)).map((c) => ({ id: c.id, name: c.name, createdAt: c.created_at, machines: c.machines }));
}

async function customerIdByName(ctx: AdminContext, name: string): Promise<CustomerId> {
  const c = await findCustomerByName(ctx.db, name);
  if (!c) throw apiError('customerNotFound', { name });
  return c.id;
}

export interface IssuedEnrollToken {
  readonly token: string;
  readonly tokenId: string;
  readonly customerId: string;
  readonly expiresAt: string;
}

/** Issues a one-time enrollment token; only its hash is stored, the token is returned once. */
export async function adminCreateEnrollToken(ctx: AdminContext, customerName: string, ttlHours: number = ctx.dataDir.settings.enrollTokenTtlHours): Promise<IssuedEnrollToken> {
  const customerId = await customerIdByName(ctx, customerName);
  const now = ctx.clock();
  const expiresAt = new Date(now.getTime() + ttlHours * 3_600_000).toISOString();
  const token = newEnrollToken();
  const tokenId = randomUUID();
  await insertEnrollToken(ctx.db, { id: tokenId, customerId, tokenHash: hashSecret(token), now: now.toISOString(), expiresAt });
  return { token, tokenId, customerId, expiresAt };
}

export async function adminListMachines(ctx: AdminContext, customerName: string): Promise<MachineRecord[]> {
  return (await listMachines(ctx.db, await customerIdByName(ctx, customerName))).map(presentMachine);
}

/** Revokes a machine's credential at once (lost or stolen machine). */
export async function adminRevokeMachine(ctx: AdminContext, customerName: string, machineName: string): Promise<MachineRecord> {
  return presentMachine(await revokeMachine(ctx.db, await customerIdByName(ctx, customerName), machineName, isoNow(ctx.clock)));
}
