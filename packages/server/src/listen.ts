export const DEFAULT_LISTEN = '127.0.0.1:8443';

export class ListenAddressError extends Error {
  override readonly name = 'ListenAddressError';
}

/** "HOST:PORT" or "[IPv6]:PORT"; port 0 asks the OS for a free port. */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(listen);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (host === undefined || !Number.isInteger(port) || port > 65535) {
    throw new ListenAddressError(`invalid listen address ${JSON.stringify(listen)}: expected HOST:PORT, e.g. 127.0.0.1:8443 or [::1]:8443`);
  }
  return { host, port };
}

export function urlFor(host: string, port: number): string {
  return `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
}
