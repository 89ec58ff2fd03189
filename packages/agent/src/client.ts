import { Agent, request, type RequestOptions } from 'node:https';
import { checkServerIdentity, connect, type PeerCertificate } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { API_PREFIX, CoffreError, normalizeFingerprint, type ApiErrorBody, type ErrorCode } from '@coffre/core';

/**
 * HTTPS client of the storage API. Two ways to trust the server:
 *   - `certPem` given (a self-signed certificate, pinned at enrollment): that certificate is
 *     the only trust anchor and its SHA-256 must be `fingerprint`; the host name is not
 *     checked (the pin is stronger than a name).
 *   - no `certPem`: the system's CAs (and NODE_EXTRA_CA_CERTS) must validate the chain and
 *     the certificate must name the host; with `fingerprint`, it must also match (enrollment).
 */
export interface ClientOptions {
  readonly server: string;
  readonly certPem?: string | undefined;
  readonly fingerprint?: string | undefined;
  readonly credential?: string | undefined;
  /** Attempts for idempotent requests on network errors and 5xx (default 5). */
  readonly attempts?: number;
  readonly userAgent?: string;
  /** Sent with every request (the site epoch header). */
  readonly headers?: Readonly<Record<string, string>>;
}

export class ApiError extends CoffreError {
  readonly status: number;
  readonly apiCode: string;
  constructor(status: number, apiCode: string, message: string, details?: Record<string, unknown>) {
    super(mapCode(status, apiCode), message, { ...details, apiCode, status });
    this.status = status;
    this.apiCode = apiCode;
  }
}

function mapCode(status: number, apiCode: string): ErrorCode {
  if (status === 401) return 'UNAUTHORIZED';
  // A suspended customer: the credential is refused like a revoked one (exit 10).
  if (status === 403 && apiCode === 'ORG_SUSPENDED') return 'UNAUTHORIZED';
  if (status === 403) return 'FORBIDDEN';
  if (status === 404) return 'NOT_FOUND';
  if (status === 409) return 'CONFLICT';
  if (status === 413) return 'TOO_LARGE';
  if (status === 422) return 'INTEGRITY';
  if (status === 400) return 'BAD_REQUEST';
  // The server is up but cannot reach its database or storage (or a proxy in front of it is
  // down): nothing was recorded, the same request will work later — like a server out of reach.
  if (status === 502 || status === 503 || status === 504) return 'UNREACHABLE';
  return apiCode === 'INTERNAL' || status >= 500 ? 'INTERNAL' : 'BAD_REQUEST';
}

const TRANSIENT = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_SOCKET']);

/** OpenSSL verification codes and Node's TLS error codes: the certificate is not trusted. */
const TLS_TRUST = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'HOSTNAME_MISMATCH',
  'INVALID_PURPOSE',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'CERT_REVOKED',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_CHAIN_TOO_LONG',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);
function isTlsTrustError(code: string | undefined): boolean {
  return code !== undefined && (TLS_TRUST.has(code) || code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_'));
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export class ApiClient {
  private readonly base: URL;
  private readonly agent: Agent;
  private readonly opts: ClientOptions;

  constructor(opts: ClientOptions) {
    this.opts = opts;
    this.base = new URL(opts.server);
    if (this.base.protocol !== 'https:') throw new CoffreError('BAD_REQUEST', 'the server URL must start with https://');
    const pin = opts.fingerprint ? normalizeFingerprint(opts.fingerprint) : undefined;
    this.agent = new Agent({
      keepAlive: true,
      maxSockets: 6,
      ...(opts.certPem ? { ca: [opts.certPem] } : {}),
      checkServerIdentity: (host: string, cert: PeerCertificate) => {
        // Without a pinned certificate, the name must match (the chain is checked by the CAs).
        if (!opts.certPem) {
          const wrongName = checkServerIdentity(host, cert);
          if (wrongName) return wrongName;
        }
        if (pin === undefined) return undefined;
        const got = normalizeFingerprint(cert.fingerprint256);
        return got === pin ? undefined : new CoffreError('TLS_PIN_MISMATCH', `server certificate fingerprint ${got} is not the pinned ${pin}`);
      },
    });
  }

  close(): void {
    this.agent.destroy();
  }

  private headers(extra: Record<string, string>): Record<string, string> {
    const h: Record<string, string> = { 'user-agent': this.opts.userAgent ?? 'coffre-agent', ...this.opts.headers, ...extra };
    if (this.opts.credential) h.authorization = `Bearer ${this.opts.credential}`;
    return h;
  }

  /** One HTTP exchange; resolves with status, headers and the whole body. */
  private once(method: string, path: string, body: Buffer | readonly Buffer[] | null, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
    const url = new URL(API_PREFIX + path, this.base);
    const options: RequestOptions = {
      method,
      hostname: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port || 443,
      path: url.pathname + url.search,
      agent: this.agent,
      headers: this.headers({ ...headers, ...(body ? { 'content-length': String(Buffer.isBuffer(body) ? body.length : body.reduce((a, b) => a + b.length, 0)) } : {}) }),
      timeout: 120_000,
    };
    return new Promise((resolve, reject) => {
      const req = request(options, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(Object.assign(new Error('request timed out'), { code: 'ETIMEDOUT' })));
      req.on('error', reject);
      if (Buffer.isBuffer(body)) req.end(body);
      else if (body) {
        for (const part of body) req.write(part);
        req.end();
      } else req.end();
    });
  }

  /**
   * Sends a request, retrying network failures and 5xx responses with backoff when
   * `idempotent` (every storage call is: packs are content-addressed, commits carry
   * their own id). TLS pin mismatches are never retried.
   */
  async send(method: string, path: string, body: Buffer | readonly Buffer[] | null, headers: Record<string, string>, idempotent = true): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
    const attempts = idempotent ? this.opts.attempts ?? 5 : 1;
    let lastErr: unknown;
    for (let i = 0; i < attempts; i++) {
      if (i > 0) await sleep(Math.min(8000, 250 * 2 ** (i - 1)));
      let res;
      try {
        res = await this.once(method, path, body, headers);
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        if (e instanceof CoffreError) throw e;
        if (isTlsTrustError(err.code)) {
          throw new CoffreError('TLS_PIN_MISMATCH', `the server's TLS certificate is not trusted (${err.code ?? err.message}); pass --fingerprint with the SHA-256 fingerprint printed by coffre-server start`);
        }
        lastErr = new CoffreError('UNREACHABLE', `cannot reach ${this.base.origin}: ${err.code ?? err.message}`);
        if (!TRANSIENT.has(err.code ?? '')) throw lastErr;
        continue;
      }
      if (res.status >= 500 || res.status === 429) {
        lastErr = this.toError(res.status, res.body);
        continue;
      }
      if (res.status >= 400) throw this.toError(res.status, res.body);
      return res;
    }
    throw lastErr;
  }

  private toError(status: number, body: Buffer): ApiError {
    try {
      const b = JSON.parse(body.toString('utf8')) as ApiErrorBody;
      return new ApiError(status, b.error.code, b.error.message, b.error.details);
    } catch {
      return new ApiError(status, 'HTTP_' + status, `server answered HTTP ${status}`);
    }
  }

  async json<T>(method: string, path: string, payload?: unknown, idempotent = true): Promise<T> {
    const body = payload === undefined ? null : Buffer.from(JSON.stringify(payload), 'utf8');
    const res = await this.send(method, path, body, body ? { 'content-type': 'application/json' } : {}, idempotent);
    return JSON.parse(res.body.toString('utf8')) as T;
  }

  async putBinary<T>(path: string, data: Buffer | readonly Buffer[]): Promise<T> {
    const res = await this.send('PUT', path, data, { 'content-type': 'application/octet-stream' });
    return JSON.parse(res.body.toString('utf8')) as T;
  }

  async getBinary(path: string, range?: { offset: number; length: number }): Promise<Buffer> {
    const headers: Record<string, string> = range ? { range: `bytes=${range.offset}-${range.offset + range.length - 1}` } : {};
    const res = await this.send('GET', path, null, headers);
    if (range && res.body.length !== range.length) {
      throw new CoffreError('INTEGRITY', `server returned ${res.body.length} bytes for a ${range.length}-byte range of ${path}`);
    }
    return res.body;
  }
}

/**
 * Connects once without trusting anything, to read the server's certificate; the caller
 * compares its fingerprint with the one the operator gave before sending any secret.
 */
export function fetchServerCertificate(server: string): Promise<{ pem: string; fingerprint: string }> {
  const url = new URL(server);
  return new Promise((resolve, reject) => {
    const sock = connect({ host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 443), rejectUnauthorized: false, servername: /^[\d.:[\]]+$/.test(url.hostname) ? undefined : url.hostname });
    sock.setTimeout(15000, () => sock.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    sock.once('secureConnect', () => {
      const cert = sock.getPeerCertificate();
      sock.end();
      if (!cert?.raw) return reject(new CoffreError('UNREACHABLE', 'the server presented no certificate'));
      const x = new X509Certificate(cert.raw);
      resolve({ pem: x.toString(), fingerprint: normalizeFingerprint(x.fingerprint256) });
    });
    sock.once('error', (e: NodeJS.ErrnoException) => reject(new CoffreError('UNREACHABLE', `cannot reach ${url.origin}: ${e.code ?? e.message}`)));
  });
}
