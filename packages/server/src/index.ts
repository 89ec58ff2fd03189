/** Public entry of @coffre/server. */
export { startServer, JSON_BODY_LIMIT } from './server.js';
export { parseListen, urlFor, DEFAULT_LISTEN, ListenAddressError } from './listen.js';
export type { StartServerOptions, RunningServer } from './server.js';

export type { ObjectStore, ObjectUpload, UploadOptions, ByteRange } from './store/object-store.js';
export {
  ObjectStoreError,
  ObjectNotFoundError,
  InvalidKeyError,
  InvalidRangeError,
  UploadStateError,
  StoreUnavailableError,
  isNotFound,
  isValidKey,
} from './store/object-store.js';
export { createFsStore, type FsStoreOptions } from './store/fs-store.js';
export { createS3Store, parseStoreUrl, type S3Store, type S3StoreOptions, type S3Upload } from './store/s3-store.js';

export { openDatabase, migrate, type Database, type MigrationReport } from './db/database.js';
export type * from './db/schema.js';
export { MIGRATIONS } from './db/migrations/index.js';

export { initDataDir, dataDirPaths, type DataDir, type DataDirPaths, type ServerSettings } from './datadir.js';
export { ApiError, ERROR_STATUS, REASONS, isApiError, type ApiErrorCode, type ReasonId } from './errors.js';
export {
  openAdmin,
  adminCreateCustomer,
  adminListCustomers,
  adminCreateEnrollToken,
  adminListMachines,
  adminRevokeMachine,
  type AdminContext,
  type CustomerSummary,
  type IssuedEnrollToken,
} from './admin/index.js';
export type { CustomerId, MachineId, Principal, Clock } from './types.js';
export type { LogEntry, LogSink } from './log.js';
export { allJobs, findJob, type Job, type JobContext, type JobItem, type JobResult } from './jobs/index.js';
export * from './gc/index.js';
