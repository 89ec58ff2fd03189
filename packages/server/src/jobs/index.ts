import type { Job } from './job.js';
import { GcJob } from './gc.js';
import { MailJob } from './mail.js';
import { MeteringJob } from './metering.js';
import { ReportsJob } from './reports.js';
import { ObservatoryJob } from './observatory.js';
import { PurgeTempJob } from './purge-temp.js';
import { RetentionJob } from './retention.js';
import { VerifyJob } from './verify.js';
import { ReplicateJob } from './replicate.js';

export type { Job, JobContext, JobItem, JobResult } from './job.js';

/** Every server job, by name (the names `coffre-server job run NAME` takes). */
export function allJobs(): Job[] {
  return [new ObservatoryJob(), new ReportsJob(), new MeteringJob(), new RetentionJob(), new VerifyJob(), new PurgeTempJob(), new MailJob(), new GcJob(), new ReplicateJob()];
}

export function findJob(name: string): Job | undefined {
  return allJobs().find((j) => j.name === name);
}
