export const listMachinesSchema = {} as const;
