import { type DestinationStream, type Logger, pino } from 'pino';

export type { Logger };

/**
 * Where a bearer token could end up in a log line: a request or its headers (fastify's serializers, or an
 * object logged by hand), a malformed request's raw bytes (fastify logs them at trace as `err.rawPacket`),
 * and a configuration logged whole. Those fields are replaced, whatever the level.
 */
export const LOG_REDACTION = {
  paths: [
    'authorization',
    'headers.authorization',
    'req.headers.authorization',
    'request.headers.authorization',
    'res.headers.authorization',
    'err.rawPacket',
    'error.rawPacket',
    'token',
    'adminToken',
    'metricsToken',
    'config.adminToken',
    'config.metricsToken',
  ],
  censor: '[redacted]',
};

export function createLogger(level: string, name = 'choreo', destination?: DestinationStream): Logger {
  const options = { name, level, redact: LOG_REDACTION };
  return destination === undefined ? pino(options) : pino(options, destination);
}
