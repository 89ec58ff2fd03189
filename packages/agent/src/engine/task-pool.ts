import { Worker } from 'node:worker_threads';

/**
 * A fixed set of worker threads running one kind of task; each task is a message with
 * an id, answered by one message with the same id. Tasks go to the least-loaded worker.
 */
export class TaskPool<In extends { id: number }, Out extends { id: number }> {
  private readonly workers: Worker[] = [];
  private readonly load: number[] = [];
  private readonly pending = new Map<number, { resolve: (o: Out) => void; reject: (e: Error) => void; worker: number }>();
  private nextId = 1;
  private failed: Error | null = null;

  /**
   * `onOther` receives messages that answer no task (progress or streamed data a worker
   * posts before its answer).
   */
  constructor(script: URL, n: number, workerData: unknown, onOther?: (m: unknown) => void) {
    for (let i = 0; i < n; i++) {
      const w = new Worker(script, { workerData });
      w.on('message', (m: Out) => {
        const p = this.pending.get(m.id);
        if (!p) {
          onOther?.(m);
          return;
        }
        this.pending.delete(m.id);
        this.load[p.worker]!--;
        p.resolve(m);
      });
      w.on('error', (e) => this.fail(e));
      w.on('exit', (code) => code !== 0 && this.fail(new Error(`worker exited with code ${code}`)));
      this.workers.push(w);
      this.load.push(0);
    }
  }

  private fail(e: Error): void {
    this.failed ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  get size(): number {
    return this.workers.length;
  }

  /** Tasks sent and not yet answered. */
  get inflight(): number {
    return this.pending.size;
  }

  get error(): Error | null {
    return this.failed;
  }

  /** Sends a message that is not a task to every worker. */
  broadcast(message: unknown): void {
    this.workers.forEach((w) => w.postMessage(message));
  }

  run(task: Omit<In, 'id'>, transfer: ArrayBuffer[] = []): Promise<Out> {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.nextId++;
    let w = 0;
    for (let i = 1; i < this.workers.length; i++) if (this.load[i]! < this.load[w]!) w = i;
    this.load[w]!++;
    return new Promise<Out>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, worker: w });
      this.workers[w]!.postMessage({ ...task, id }, transfer);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
