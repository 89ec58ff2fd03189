import type { MachineListResponse } from '@coffre/core';
import { listMachines } from '../../db/queries/machines.js';
import { principalOf, type App, type Deps } from '../../http/context.js';
import { presentMachine } from './presenter.js';
import { listMachinesSchema } from './schema.js';

export function registerMachineRoutes(app: App, deps: Deps): void {
  app.get('/machines', { schema: listMachinesSchema, config: { action: 'machines:list' } }, async (req): Promise<MachineListResponse> => {
    const rows = await listMachines(deps.db, principalOf(req).customerId);
    return { machines: rows.map(presentMachine) };
  });
}
