import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { API_PREFIX } from '@coffre/core';
import { apiError } from '../../errors.js';
import type { App } from '../../http/context.js';

/** packages/console/dist, next to this package in the repository (the README's build puts it there). */
export const DEFAULT_CONSOLE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../../console/dist');

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * The web console, on the same origin as the API (cookies stay SameSite=Strict, no CORS).
 * Files come only from the console's build directory; any other path that is not the API
 * gets index.html (the console routes in the browser). Hashed assets are cached for a year;
 * index.html never. Responses carry the console's CSP (http/hooks.ts).
 */
export function registerConsoleRoutes(app: App, dir: string): void {
  const root = path.resolve(dir);
  async function send(reply: FastifyReply, file: string, immutable: boolean) {
    const body = await readFile(file);
    void reply.type(TYPES[path.extname(file)] ?? 'application/octet-stream');
    void reply.header('cache-control', immutable ? 'public, max-age=31536000, immutable' : 'no-store');
    return reply.send(body);
  }
  async function handler(req: FastifyRequest, reply: FastifyReply) {
    const urlPath = decodeURIComponent(req.url.split('?', 1)[0]!);
    if (urlPath === API_PREFIX || urlPath.startsWith(`${API_PREFIX}/`)) throw apiError('notFound');
    const candidate = path.resolve(root, `.${urlPath}`);
    if (candidate.startsWith(root + path.sep) && !urlPath.includes('\0')) {
      const st = await stat(candidate).catch(() => null);
      if (st?.isFile()) return send(reply, candidate, urlPath.startsWith('/assets/'));
    }
    if (urlPath.startsWith('/assets/')) throw apiError('notFound');
    const index = path.join(root, 'index.html');
    if (!(await stat(index).catch(() => null))) {
      void reply.type('text/plain; charset=utf-8').code(503);
      return reply.send('The console is not built: run `npm run build` (or scripts/install.sh).\nLa console n’est pas construite : lancez `npm run build`.\n');
    }
    return send(reply, index, false);
  }
  const options = { schema: { hide: true }, config: { auth: 'none' as const, console: true } };
  app.get('/', options, handler);
  app.get('/*', options, handler);
}
