import type { ServerSettings } from '../datadir.js';

export function graceMs(deps: { readonly settings: Pick<ServerSettings, 'observatoryGraceMinutes'> }): number {
  return deps.settings.observatoryGraceMinutes * 60_000;
}
