import type { ApiErrorBody } from '@coffre/core';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError, apiError } from '../errors.js';
import { DatabaseUnavailableError } from '../db/postgres.js';
import { errorFields, type LogSink } from '../log.js';
import { StoreUnavailableError } from '../store/object-store.js';
import { AuditHeadError } from '../audit/log.js';

export function errorBody(err: ApiError, requestId: string): ApiErrorBody {
  return {
    error: {
      code: err.code,
      message: err.message,
      messageFr: err.messageFr,
      requestId,
      ...(err.details !== undefined ? { details: err.details } : {}),
    },
  };
}

/** Maps anything thrown to the catalogue. Classification is by type and error code, never by message text. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  // The database or the store is unreachable: nothing this request did was committed, and
  // the same request may succeed in a moment (agents retry a 503). SQLITE_BUSY: another
  // process held the embedded database's write lock longer than busy_timeout.
  if (err instanceof DatabaseUnavailableError || err instanceof StoreUnavailableError || (err as { code?: unknown }).code === 'SQLITE_BUSY') return apiError('unavailable');
  // The audit head could not be written because the store is out of reach: the same (503), so
  // agents retry rather than report a failure (the entry itself is in the database).
  if (err instanceof AuditHeadError && (err.cause instanceof StoreUnavailableError || err.cause instanceof DatabaseUnavailableError)) return apiError('unavailable');
  const fe = err as Partial<FastifyError>;
  if (Array.isArray(fe.validation)) {
    return apiError('validation', {
      in: fe.validationContext,
      errors: fe.validation.slice(0, 20).map((v) => ({ path: v.instancePath, message: v.message })),
    });
  }
  if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || fe.statusCode === 413) return apiError('tooLarge');
  if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || fe.statusCode === 415) return apiError('unsupportedMediaType');
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) return apiError('badRequest');
  return apiError('internal');
}

/** The single error handler: stable JSON body, no stack trace ever leaves the server. */
export function errorHandler(log: LogSink) {
  return (err: unknown, req: FastifyRequest, reply: FastifyReply): void => {
    const api = toApiError(err);
    if (api.code === 'INTERNAL') log({ level: 'error', msg: 'request failed', reqId: req.id, ...errorFields(err) });
    if (api.code === 'UNAVAILABLE') {
      log({ level: 'warn', msg: 'backend unavailable', reqId: req.id, ...errorFields(err) });
      void reply.header('retry-after', '5');
    }
    void reply.code(api.status).type('application/json; charset=utf-8').send(errorBody(api, req.id));
  };
}
