import { deliverOutbox } from '../mail/outbox.js';
import type { Job, JobContext, JobResult } from './job.js';

/**
 * Delivers the outbox: emails other jobs enqueued and that are due (new, or waiting for a
 * retry after the SMTP server failed). Every job that enqueues also delivers at its end;
 * this one catches up the retries.
 */
export class MailJob implements Job {
  readonly name = 'mail';
  readonly description = 'send the emails waiting in the outbox (retries with backoff)';
  readonly defaultSchedule = '*/5 * * * *';

  async run(ctx: JobContext): Promise<JobResult> {
    const startedAt = ctx.clock().toISOString();
    const c = await deliverOutbox(ctx.db, ctx.mailer, ctx.clock(), ctx.log);
    return { job: this.name, startedAt, finishedAt: ctx.clock().toISOString(), counts: { ...c }, items: [] };
  }
}
