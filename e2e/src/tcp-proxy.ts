import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy for fault tests, in the test process: listens on a loopback port and
 * forwards each connection to `target`. On demand it cuts the link — every open
 * connection is closed on both sides and new ones are closed as soon as they are
 * accepted (the client sees its connection end or reset, the server behind sees its peer
 * gone) — and restores it. It can also slow every chunk down (`delayMs`) to stretch an operation.
 * It counts the bytes it forwarded each way, so a test can act when traffic has started.
 */
export class TcpProxy {
  /** Bytes forwarded from clients to the target, and back. */
  bytesUp = 0;
  bytesDown = 0;
  /** Connections accepted while up, and closed at once while cut. */
  accepted = 0;
  refused = 0;
  private cutNow = false;
  private armed: (() => void) | null = null;
  private readonly open = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
    readonly target: { readonly host: string; readonly port: number },
    private delayMs: number,
  ) {}

  static start(target: { host: string; port: number }, opts: { delayMs?: number } = {}): Promise<TcpProxy> {
    return new Promise((resolve, reject) => {
      let proxy: TcpProxy | null = null;
      const server = createServer({ pauseOnConnect: true }, (client) => proxy!.accept(client));
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const port = (server.address() as { port: number }).port;
        proxy = new TcpProxy(server, port, target, opts.delayMs ?? 0);
        resolve(proxy);
      });
    });
  }

  /** host:port clients use. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get isCut(): boolean {
    return this.cutNow;
  }

  /** Closes every open connection (both sides), and new ones as soon as accepted, until `restore`. */
  cut(): void {
    this.cutNow = true;
    for (const s of this.open) closeNow(s);
    this.open.clear();
  }

  restore(): void {
    this.cutNow = false;
  }

  /**
   * Cuts the link (as `cut`) the moment a client next sends something — a query or a
   * request in flight, its answer never to come — instead of forwarding it. Resolves then
   * (fails after `timeoutMs`, disarmed).
   */
  cutOnNextRequest(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.armed = null;
        reject(new Error(`no request through the proxy to ${this.target.host}:${this.target.port} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.armed = () => {
        clearTimeout(timer);
        this.armed = null;
        this.cut();
        resolve();
      };
    });
  }

  setDelay(ms: number): void {
    this.delayMs = ms;
  }

  /** Resolves once `bytesUp` reaches `n` (fails after `timeoutMs`). */
  async waitForBytesUp(n: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.bytesUp < n) {
      if (Date.now() > deadline) throw new Error(`the proxy to ${this.target.host}:${this.target.port} forwarded ${this.bytesUp} bytes up, not ${n}, within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private accept(client: Socket): void {
    client.on('error', () => undefined);
    if (this.cutNow) {
      this.refused++;
      closeNow(client);
      return;
    }
    this.accepted++;
    const upstream = connect({ host: this.target.host, port: this.target.port });
    this.open.add(client);
    this.open.add(upstream);
    const end = (): void => {
      this.open.delete(client);
      this.open.delete(upstream);
      if (!client.destroyed) client.destroy();
      if (!upstream.destroyed) upstream.destroy();
    };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
    this.pipe(client, upstream, (n) => (this.bytesUp += n), true);
    this.pipe(upstream, client, (n) => (this.bytesDown += n), false);
    client.resume();
  }

  /** Forwards `from` to `to` with backpressure, after the current delay for each chunk. */
  private pipe(from: Socket, to: Socket, count: (n: number) => void, up: boolean): void {
    let queue = Promise.resolve();
    from.on('data', (chunk: Buffer) => {
      if (up && this.armed) return this.armed();
      const delay = this.delayMs;
      if (delay > 0) from.pause();
      queue = queue.then(async () => {
        if (delay > 0) await new Promise((r) => setTimeout(r, delay));
        if (to.destroyed || this.cutNow) return;
        count(chunk.length);
        if (!to.write(chunk)) {
          from.pause();
          to.once('drain', () => from.resume());
        } else if (delay > 0) from.resume();
      });
    });
    from.on('end', () => void queue.then(() => to.destroyed || to.end()));
  }
}

/**
 * Closes a connection at once. (Not `resetAndDestroy`: an RST is closer to a dead link, but
 * Node 20 can then spin at exit on the handle, at 100 % CPU, after the tests are done.)
 */
function closeNow(s: Socket): void {
  if (!s.destroyed) s.destroy();
}
