/** Garbage collection (docs/GC.md). */
export { runGc, type GcContext, type GcCounts, type GcOptions, type GcReport, type GcStep } from './gc.js';
export { gcCutoff, type GcCutoff, type SessionTimes } from './cutoff.js';
export { forgetSnapshot, openGcTools } from './forget.js';
export { GC_DEFAULTS, GC_SCHEDULE, SESSION_IDLE_MS, TOUCH_GRANULARITY_MS, gcOptionsFromEnv, type GcSettings } from './config.js';
export { IdSet } from './idset.js';
export { LiveSet, LiveSetError } from './live.js';
