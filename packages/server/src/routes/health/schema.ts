export const healthSchema = {} as const;
