import type { FastifyError, FastifyInstance } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import {
  ConflictError,
  DomainError,
  NotFoundError,
  UnavailableError,
  ValidationError,
} from '../domain/errors.js';
import { isTransientError } from '../persistence/transient-errors.js';

function describeValidation(error: {
  validation: { instancePath: string; message?: string }[];
  validationContext?: string;
}) {
  return error.validation
    .map((issue) => {
      const field = issue.instancePath.replace(/^\//, '').replaceAll('/', '.');
      const where = [error.validationContext, field].filter(Boolean).join('.');
      return `${where || 'request'}: ${issue.message ?? 'is invalid'}`;
    })
    .join('; ');
}

/** What fastify's own refusals of a body say, naming the body as the schema refusals name their fields. */
const BODY_ERRORS: Record<string, string> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'body: is not valid JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'body: is empty (send a JSON document)',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'body: is not JSON (send it with content-type: application/json)',
};

function statusOfDomainError(error: DomainError): number {
  if (error instanceof NotFoundError) return 404;
  if (error instanceof ConflictError) return 409;
  if (error instanceof ValidationError) return 400;
  if (error instanceof UnavailableError) return 503;
  return 409;
}

/** Every error the API answers goes through here, as `{ message }` with the status that says what went wrong. */
export function registerErrorHandler(app: FastifyInstance, limits: { bodyLimitBytes: number }): void {
  const bodyErrors: Record<string, string> = {
    ...BODY_ERRORS,
    FST_ERR_CTP_BODY_TOO_LARGE: `body: is too large (at most ${limits.bodyLimitBytes} bytes)`,
  };
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (hasZodFastifySchemaValidationErrors(error)) {
      return reply.status(400).send({ message: describeValidation(error) });
    }
    if (error instanceof DomainError) {
      return reply.status(statusOfDomainError(error)).send({ message: error.message });
    }
    if (isTransientError(error)) {
      request.log.warn({ err: error }, 'dependency unavailable');
      return reply
        .status(503)
        .send({ message: 'service temporarily unavailable (database or Redis unreachable), retry later' });
    }
    if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
      return reply.status(error.statusCode).send({ message: bodyErrors[error.code] ?? error.message });
    }
    request.log.error({ err: error }, 'unexpected error');
    return reply.status(500).send({ message: 'internal error' });
  });
  app.setNotFoundHandler((request, reply) => {
    reply.status(404).send({ message: `no route ${request.method} ${request.url}` });
  });
}
