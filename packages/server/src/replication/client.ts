import { X509Certificate } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Agent, request } from 'node:https';
import { connect, type PeerCertificate } from 'node:tls';
import { API_PREFIX, normalizeFingerprint } from '@coffre/core';

/**
 * The HTTPS client one site uses to reach another (a replica its primary, a primary the
 * site it believes is its replica). Trust is pinned: the peer's certificate is read once,
 * its SHA-256 compared with the fingerprint the operator gave, and from then on that
 * certificate is the only trust anchor and the fingerprint is checked on every connection.
 */
export class PeerError extends Error {
  override readonly name = 'PeerError';
  constructor(
    message: string,
    /** HTTP status, or 0 when the peer could not be reached. */
    readonly status: number,
    /** The peer's error code (its error catalogue), when it answered one. */
    readonly code: string | null = null,
  ) {
    super(message);
  }
}

const REQUEST_TIMEOUT_MS = 120_000;

export class PeerClient {
  private agent: Agent | null = null;
  private readonly base: URL;
  private readonly pin: string;

  constructor(
    url: string,
    fingerprint: string,
    private readonly credential: string | null = null,
    private readonly headers: Readonly<Record<string, string>> = {},
  ) {
    this.base = new URL(url);
    if (this.base.protocol !== 'https:') throw new PeerError(`${url}: a site's URL must start with https://`, 0);
    this.pin = normalizeFingerprint(fingerprint);
  }

  get origin(): string {
    return this.base.origin;
  }

  close(): void {
    this.agent?.destroy();
    this.agent = null;
  }

  private async pinnedAgent(): Promise<Agent> {
    if (this.agent) return this.agent;
    const seen = await readCertificate(this.base);
    if (seen.fingerprint !== this.pin) {
      throw new PeerError(`${this.base.origin} presents a certificate of fingerprint ${seen.fingerprint}, not the pinned ${this.pin} (wrong site, or someone in between)`, 0, 'TLS_PIN_MISMATCH');
    }
    const pin = this.pin;
    this.agent = new Agent({
      keepAlive: true,
      maxSockets: 4,
      ca: [seen.pem],
      checkServerIdentity: (_host: string, cert: PeerCertificate) => {
        const got = normalizeFingerprint(cert.fingerprint256);
        return got === pin ? undefined : new PeerError(`certificate fingerprint ${got} is not the pinned ${pin}`, 0, 'TLS_PIN_MISMATCH');
      },
    });
    return this.agent;
  }

  /** Sends a request; resolves with the response (status 2xx) still to be read, or rejects with PeerError. */
  async stream(method: string, path: string, body?: unknown): Promise<IncomingMessage> {
    const agent = await this.pinnedAgent();
    const url = new URL(API_PREFIX + path, this.base);
    const payload = body === undefined ? null : Buffer.from(JSON.stringify(body), 'utf8');
    const headers: Record<string, string> = { 'user-agent': 'coffre-site', ...this.headers };
    if (this.credential) headers.authorization = `Bearer ${this.credential}`;
    if (payload) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(payload.length);
    }
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = request(
        { method, hostname: url.hostname.replace(/^\[|\]$/g, ''), port: url.port || 443, path: url.pathname + url.search, agent, headers, timeout: REQUEST_TIMEOUT_MS },
        resolve,
      );
      req.on('timeout', () => req.destroy(Object.assign(new Error('request timed out'), { code: 'ETIMEDOUT' })));
      req.on('error', (e: NodeJS.ErrnoException) => reject(e instanceof PeerError ? e : new PeerError(`cannot reach ${this.base.origin}: ${e.code ?? e.message}`, 0)));
      req.end(payload ?? undefined);
    });
    const status = res.statusCode ?? 0;
    // An error before the caller reads the body (a cut connection) must not go unhandled; reading it then fails.
    res.on('error', () => undefined);
    if (status >= 200 && status < 300) return res;
    const text = await readAll(res).then((b) => b.toString('utf8'), () => '');
    let code: string | null = null;
    let message = `HTTP ${status}`;
    try {
      const e = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error;
      code = e?.code ?? null;
      message = e?.message ?? message;
    } catch {
      /* not the error catalogue's JSON */
    }
    throw new PeerError(`${this.base.origin} ${method} ${path}: ${message}`, status, code);
  }

  async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.stream(method, path, body);
    return JSON.parse((await readAll(res)).toString('utf8')) as T;
  }

  async bytes(path: string): Promise<Buffer> {
    return readAll(await this.stream('GET', path));
  }
}

function readAll(res: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    res.on('data', (d: Buffer) => parts.push(d));
    res.on('end', () => resolve(Buffer.concat(parts)));
    res.on('error', reject);
    res.on('aborted', () => reject(new PeerError('the response was cut off', 0)));
  });
}

/** Reads the peer's certificate without trusting it (compared with the pin before anything is sent). */
function readCertificate(url: URL): Promise<{ pem: string; fingerprint: string }> {
  return new Promise((resolve, reject) => {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const sock = connect({ host, port: Number(url.port || 443), rejectUnauthorized: false, servername: /^[\d.:[\]]+$/.test(url.hostname) ? undefined : url.hostname });
    sock.setTimeout(15_000, () => sock.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    sock.once('secureConnect', () => {
      const cert = sock.getPeerCertificate();
      sock.end();
      if (!cert?.raw) return reject(new PeerError(`${url.origin} presented no certificate`, 0));
      const x = new X509Certificate(cert.raw);
      resolve({ pem: x.toString(), fingerprint: normalizeFingerprint(x.fingerprint256) });
    });
    sock.once('error', (e: NodeJS.ErrnoException) => reject(new PeerError(`cannot reach ${url.origin}: ${e.code ?? e.message}`, 0)));
  });
}
