import { VersionConflictError } from '../domain/errors.js';
import { pgErrorCode } from './database.js';

const RETRYABLE_PG_CODES = new Set(['40001', '40P01', '55P03', '57P01', '57P02', '57P03', '53300']);
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * Failures that say nothing about the event itself: a lost race or an unreachable dependency. They are
 * retried in place, without counting towards the dead-letter limit, so that a database outage pauses
 * the consumers instead of dead-lettering everything in flight.
 */
export function isTransientError(error: unknown): boolean {
  if (error instanceof VersionConflictError) return true;
  const code = pgErrorCode(error);
  if (
    code !== undefined &&
    (RETRYABLE_PG_CODES.has(code) || code.startsWith('08') || NETWORK_CODES.has(code))
  ) {
    return true;
  }
  if (error instanceof Error) {
    return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection is closed/i.test(
      error.message,
    );
  }
  return false;
}

export function isConflict(error: unknown): boolean {
  const code = pgErrorCode(error);
  return error instanceof VersionConflictError || code === '40001' || code === '40P01';
}
