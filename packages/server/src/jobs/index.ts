import type { Job } from './job.js';
import { MailJob } from './mail.js';
import { MeteringJob } from './metering.js';
import { ReportsJob } from './reports.js';
import { ObservatoryJob } from './observatory.js';

export type { Job, JobContext, JobItem, JobResult } from './job.js';

/** Every server job, by name (the names `coffre-server job run NAME` takes). */
export function allJobs(): Job[] {
  return [new ObservatoryJob(), new ReportsJob(), new MeteringJob(), new MailJob()];
}

export function findJob(name: string): Job | undefined {
  return allJobs().find((j) => j.name === name);
}
