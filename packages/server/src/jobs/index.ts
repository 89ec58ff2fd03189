import type { Job } from './job.js';
import { ObservatoryJob } from './observatory.js';

export type { Job, JobContext, JobItem, JobResult } from './job.js';

/** Every server job, by name (the names `coffre-server job run NAME` takes). */
export function allJobs(): Job[] {
  return [new ObservatoryJob()];
}

export function findJob(name: string): Job | undefined {
  return allJobs().find((j) => j.name === name);
}
