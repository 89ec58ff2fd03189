import { allJobs } from './jobs/index.js';
import { JobScheduler } from './jobs/scheduler.js';
import { smtpTransport, type MailTransport } from './mail/transport.js';
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { API_PREFIX } from '@coffre/core';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance } from 'fastify';
import { AuditLog, CHECKPOINT_INTERVAL_MS } from './audit/log.js';
import { loadAuditSigner } from './audit/signing-key.js';
import { COFFRE_VERSION } from '@coffre/core';
import { initDataDir, smtpUrl } from './datadir.js';
import { holdsData, resolveBackends, type BackendOverrides } from './backends/config.js';
import { lockDataDir } from './backends/dir-lock.js';
import { openBackends } from './backends/open.js';
import { DEFAULT_LISTEN, parseListen, urlFor } from './listen.js';
import { authenticate } from './http/authenticate.js';
import type { Deps } from './http/context.js';
import { apiError, ERROR_STATUS, REASONS } from './errors.js';
import { errorHandler } from './http/errors.js';
import { requestLogger, securityHeaders } from './http/hooks.js';
import { authorize } from './http/policy.js';
import { bodyReceived, preAuthBodyLimit, preAuthTimeout } from './http/pre-auth.js';
import { errorFields, stderrLog, type LogSink } from './log.js';
import { registerRoutes } from './routes/index.js';
import { ensureSiteState, updateSiteState, upsertSite } from './db/queries/replication.js';
import { announceToPrimary, checkFencing } from './replication/admin.js';
import { DEFAULT_CONSOLE_DIR, registerConsoleRoutes } from './routes/console/handler.js';
import type { ObjectStore } from './store/object-store.js';
import { systemClock, type Clock } from './types.js';

/** JSON bodies (snapshot refs of ~1.5 M chunks fit); packs are streamed, with their own 256 MiB limit. */
export const JSON_BODY_LIMIT = 64 * 1024 * 1024;
/** A 256 MiB pack over a slow practice uplink can take this long. */
const REQUEST_TIMEOUT_MS = 30 * 60_000;

export interface StartServerOptions {
  readonly dataDir: string;
  /** "HOST:PORT" ("[::1]:8443" for IPv6); port 0 picks a free port. Default 127.0.0.1:8443. */
  readonly listen?: string;
  /** Serve this certificate and key instead of the self-signed DIR/tls pair. */
  readonly tls?: { readonly cert: string; readonly key: string };
  readonly log?: LogSink;
  /** Tests move time with this; production uses the system clock. */
  readonly clock?: Clock;
  /** The console's build directory (default: packages/console/dist of this checkout). */
  readonly consoleDir?: string;
  /** Run the server jobs (observatory…) on their schedules (default true; in-process tests turn it off). */
  readonly runJobs?: boolean;
  /** Wraps the object store (retries, metrics, or fault injection in tests). */
  readonly wrapStore?: (store: ObjectStore) => ObjectStore;
  /** Database and store instead of what the environment and server.json say (see backends/config.ts). */
  readonly backends?: BackendOverrides;
  /** The audit signing key's file (ADR 0011) instead of COFFRE_AUDIT_KEY_FILE or the default place. */
  readonly auditKey?: string;
}

export interface RunningServer {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** SHA-256 fingerprint of the served certificate, colon-separated uppercase hex. */
  readonly fingerprint: string;
  readonly certPem: string;
  readonly dataDir: string;
  /** The audit signing key (ADR 0011): its id and the file it was read from. */
  readonly auditKey: { readonly keyId: string; readonly file: string };
  /** Stops accepting connections, lets in-flight requests finish, closes the database. */
  close(): Promise<void>;
}

/** Builds the Fastify app: hooks in the order authenticate → validate → authorize → handler. */
export type HttpsApp = FastifyInstance<Server>;

export async function buildApp(tls: { certPem: string; keyPem: string }, deps: Deps, consoleDir?: string): Promise<HttpsApp> {
  const app = Fastify({
    https: { cert: tls.certPem, key: tls.keyPem, minVersion: 'TLSv1.2' },
    logger: false,
    genReqId: () => randomUUID(),
    bodyLimit: JSON_BODY_LIMIT,
    requestTimeout: REQUEST_TIMEOUT_MS,
    return503OnClosing: true,
    // Strict validation: no type coercion, unknown fields are refused rather than dropped.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false } },
    // Errors of the router itself (a path parameter that is not valid percent-encoding, or
    // longer than maxParamLength) go through the one error handler too: a catalogue error
    // (BAD_REQUEST) and the security headers, not Fastify's own body.
    frameworkErrors: (err, req, reply) => {
      void securityHeaders(req, reply);
      errorHandler(deps.log)(err, req, reply);
    },
  });
  app.decorateRequest('principal', null);
  app.decorateRequest('targetOrg', null);
  app.decorateRequest('sessionToken', null);
  // Before any route is added: the pre-auth routes get their small body limit and short wait.
  app.addHook('onRoute', preAuthBodyLimit);
  app.addHook('onRequest', preAuthTimeout(deps.log));
  app.addHook('preValidation', bodyReceived);
  app.addHook('onResponse', bodyReceived);
  app.addHook('onRequest', authenticate(deps));
  app.addHook('preHandler', authorize(deps));
  app.addHook('onSend', securityHeaders);
  app.addHook('onResponse', requestLogger(deps.log));
  app.setErrorHandler(errorHandler(deps.log));
  app.setNotFoundHandler(async () => {
    throw apiError('notFound');
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'coffre API', version: COFFRE_VERSION, description: apiDescription() },
      components: {
        schemas: {
          Error: {
            type: 'object',
            required: ['error'],
            properties: {
              error: {
                type: 'object',
                required: ['code', 'message', 'messageFr', 'requestId'],
                properties: {
                  code: { type: 'string', enum: [...new Set(Object.keys(ERROR_STATUS))] },
                  message: { type: 'string' },
                  messageFr: { type: 'string' },
                  requestId: { type: 'string' },
                  details: { type: 'object' },
                },
              },
            },
          },
        },
        securitySchemes: {
          session: { type: 'apiKey', in: 'cookie', name: '__Host-coffre_session' },
          machine: { type: 'http', scheme: 'bearer' },
        },
      },
    },
  });
  await app.register(async (api) => registerRoutes(api, deps), { prefix: API_PREFIX });
  registerConsoleRoutes(app, consoleDir ?? DEFAULT_CONSOLE_DIR);
  return app;
}

/** The error catalogue, published with the API: stable codes, statuses, English and French messages. */
function apiDescription(): string {
  const rows = Object.values(REASONS).map((r) => `| ${r.code} | ${ERROR_STATUS[r.code]} | ${r.en} | ${r.fr} |`);
  return [
    'People authenticate with a session cookie and send `X-CSRF-Token` on every non-GET request; machines with a bearer credential. Roles and the route × role matrix: docs/SECURITY.md.',
    '',
    'Every error is `{ "error": { "code", "message", "messageFr", "requestId", "details"? } }`:',
    '',
    '| code | status | message | messageFr |',
    '|---|---|---|---|',
    ...[...new Set(rows)],
  ].join('\n');
}

/**
 * Initialises the data dir if needed, opens the database and the object store it is
 * configured for (backends/config.ts) and serves HTTPS until close(). A data directory
 * that holds the data itself (embedded SQLite or filesystem store) is locked against a
 * second server and against migrate-storage; with PostgreSQL and S3 any number of
 * instances share the data, each from its own copy of the directory.
 */
export async function startServer(opts: StartServerOptions): Promise<RunningServer> {
  const { host, port } = parseListen(opts.listen ?? DEFAULT_LISTEN);
  const dir = await initDataDir(opts.dataDir, opts.tls ? { tls: opts.tls } : {});
  const lock = holdsData(resolveBackends(dir.paths, dir.settings, opts.backends)) ? await lockDataDir(dir.paths.root, 'server') : null;
  let backends;
  try {
    backends = await openBackends(dir, opts.backends, opts.wrapStore ? { wrapStore: opts.wrapStore } : {});
  } catch (err) {
    await lock?.release();
    throw err;
  }
  const { db } = backends;
  const log = opts.log ?? stderrLog;
  log({ level: 'info', msg: 'backends', database: backends.where.database, store: backends.where.store, installation: backends.installationId, migrations: backends.migrations.applied.length });
  let app: HttpsApp;
  let deps: Deps;
  let mailer: MailTransport | null = null;
  let signerFile = '';
  try {
    const clock = opts.clock ?? systemClock;
    // Outside the data directory, created on the first start (ADR 0011); a start without the installation's key is refused.
    const signer = await loadAuditSigner(db, { installationId: backends.installationId, dataDir: dir.paths.root, file: opts.auditKey, required: true, now: clock().toISOString(), chain: backends.where.database });
    log({ level: 'info', msg: 'audit signing key', keyId: signer!.keyId, file: signer!.file });
    signerFile = signer!.file;
    deps = {
      db,
      store: backends.store,
      clock,
      log,
      locks: backends.locks,
      keys: backends.keys,
      audit: new AuditLog(db, backends.audit, clock, log, { signer, installationId: backends.installationId, retentionDays: dir.settings.auditRetentionDays }),
      settings: dir.settings,
      fingerprint: dir.tls.fingerprint,
      secretsDir: dir.paths.secrets,
    };
    // The mail transport first: a bad SMTP URL stops the start before anything listens.
    const smtp = smtpUrl(dir.settings);
    mailer = smtp ? smtpTransport(smtp, dir.settings.smtp.from, { requireTLS: dir.settings.smtp.requireTLS }) : null;
    app = await buildApp(dir.tls, deps, opts.consoleDir);
    await deps.audit.checkpoint(); // what was appended while no server ran (commands without the key) is signed now
    await auditRetention(deps);
    await fenceBeforeServing(deps);
    await app.listen({ host, port });
  } catch (err) {
    mailer?.close();
    await backends.close();
    await lock?.release();
    throw err;
  }
  const actualPort = (app.server.address() as AddressInfo).port;
  const retention = setInterval(() => void auditRetention(deps), DAY_MS).unref();
  const checkpoints = setInterval(() => void auditCheckpoint(deps), CHECKPOINT_INTERVAL_MS).unref();
  const url = urlFor(host, actualPort);
  await announceSite(deps, dir.settings.publicUrl ?? url);
  const scheduler = new JobScheduler(
    { db, store: deps.store, audit: deps.audit, clock: deps.clock, log: deps.log, settings: dir.settings, mailer, keys: deps.keys, fingerprint: deps.fingerprint },
    allJobs(),
    dir.settings.jobSchedules,
  );
  if (opts.runJobs !== false) scheduler.start();
  return {
    url,
    host,
    port: actualPort,
    fingerprint: dir.tls.fingerprint,
    certPem: dir.tls.certPem,
    dataDir: dir.paths.root,
    auditKey: { keyId: deps.audit.signer!.keyId, file: signerFile },
    close: closeOnce(app, backends, [retention, checkpoints], scheduler, mailer, lock, () => auditCheckpoint(deps)),
  };
}

const DAY_MS = 86_400_000;

/**
 * Records where this site is reached (agents learn it from the site list), and on a primary
 * asks the other sites, in the background, whether one of them was promoted meanwhile
 * (fencing: a primary coming back after a failover must not take backups).
 */
async function announceSite(deps: Deps, url: string): Promise<void> {
  const now = deps.clock().toISOString();
  const state = await ensureSiteState(deps.db, { selfName: 'primary', now });
  if (state.self_url !== url) await updateSiteState(deps.db, { self_url: url, updated_at: now });
  if (state.role === 'replica') {
    // Tell the primary where agents reach this site, before the first complete pass.
    void announceToPrimary(deps, state, url).catch((err: unknown) => deps.log({ level: 'warn', msg: 'could not tell the primary where this replica is', ...errorFields(err) }));
    return;
  }
  if (state.role !== 'primary') return;
  await upsertSite(deps.db, { name: state.self_name, url, fingerprint: deps.fingerprint, now });
}

/**
 * A primary asks the other sites, before it serves anything, whether one of them was
 * promoted meanwhile (it comes back after a failover): then it starts demoted and refuses
 * backups from the first request. Unreachable sites are skipped (it checks again every minute).
 */
async function fenceBeforeServing(deps: Deps): Promise<void> {
  const state = await ensureSiteState(deps.db, { selfName: 'primary', now: deps.clock().toISOString() });
  if (state.role !== 'primary') return;
  const f = await checkFencing(deps).catch((err: unknown) => {
    deps.log({ level: 'warn', msg: 'fencing check failed', ...errorFields(err) });
    return null;
  });
  if (f?.demotedBy) deps.log({ level: 'error', msg: 'another site was promoted: this site is demoted and refuses backups', promoted: f.demotedBy });
}

/**
 * Audit retention (default 365 days, `auditRetentionDays`): at start, then daily. A failure
 * is logged and retried the next day; it never stops the server.
 */
async function auditRetention(deps: Deps): Promise<void> {
  try {
    const before = new Date(deps.clock().getTime() - deps.settings.auditRetentionDays * DAY_MS).toISOString();
    const purged = await deps.audit.purgeBefore(before);
    if (purged > 0) {
      deps.log({ level: 'info', msg: 'audit retention', purged, before });
      await deps.audit.append({
        actorType: 'system',
        actorId: null,
        actorLabel: 'audit retention',
        orgId: null,
        action: 'audit.purge',
        target: null,
        ip: null,
        userAgent: null,
        requestId: null,
        outcome: 'success',
        details: { purged, before },
      });
    }
  } catch (err) {
    deps.log({ level: 'error', msg: 'audit retention failed', ...errorFields(err) });
  }
}

/** Signs the chain's unsigned tail (every minute and at shutdown); a failure is logged and retried the next minute. */
async function auditCheckpoint(deps: Deps): Promise<void> {
  try {
    await deps.audit.checkpoint();
  } catch (err) {
    deps.log({ level: 'error', msg: 'audit checkpoint not signed', ...errorFields(err) });
  }
}

function closeOnce(
  app: HttpsApp,
  backends: { close(): Promise<void> },
  timers: readonly NodeJS.Timeout[],
  scheduler: JobScheduler,
  mailer: MailTransport | null,
  lock: { release(): Promise<void> } | null,
  lastCheckpoint: () => Promise<void>,
): () => Promise<void> {
  let closing: Promise<void> | undefined;
  return () => {
    closing ??= (async () => {
      for (const t of timers) clearInterval(t);
      await scheduler.stop(); // let a job in progress finish its writes before the database closes
      mailer?.close();
      try {
        await app.close();
        await lastCheckpoint(); // the tail written since the last minute is signed before the database closes
      } finally {
        await backends.close();
        await lock?.release();
      }
    })();
    return closing;
  };
}
