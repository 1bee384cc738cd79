import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { redactUrl } from '../../observability/server-url.js';

export type { Redis };

/** How often a Redis that stays away is mentioned again in the logs. */
const REMIND_EVERY_MS = 60_000;

/**
 * A command connection retries while Redis is away; a blocking reader gets its own connection so that a
 * long XREADGROUP never delays anyone else's commands. With a logger, a lost connection is said once
 * (naming Redis and REDIS_URL), then reminded every minute, and its return is said too: ioredis reports
 * every failed reconnection, which would repeat the same error several times a second.
 */
export function createRedis(url: string, options: { blocking?: boolean; logger?: Logger } = {}): Redis {
  const redis = new Redis(url, {
    // RESP2 keeps XREADGROUP's reply as [[stream, entries]...]; RESP3 flattens that map.
    protocol: 2,
    maxRetriesPerRequest: options.blocking ? null : 3,
    enableOfflineQueue: true,
    lazyConnect: false,
    retryStrategy: (attempt) => Math.min(100 * attempt, 2_000),
  });
  let downSince: number | null = null;
  let remindedAt = 0;
  // An 'error' event with no listener would crash the process; reconnection is ioredis's job.
  redis.on('error', (error: Error) => {
    const { logger } = options;
    if (!logger) return;
    const now = Date.now();
    if (downSince === null) {
      downSince = now;
      remindedAt = now;
      logger.error(`Redis at ${redactUrl(url)} (REDIS_URL) is unreachable: ${error.message}; retrying`);
    } else if (now - remindedAt >= REMIND_EVERY_MS) {
      remindedAt = now;
      const seconds = Math.round((now - downSince) / 1_000);
      logger.error(
        `Redis at ${redactUrl(url)} (REDIS_URL) still unreachable after ${seconds} s: ${error.message}`,
      );
    }
  });
  redis.on('ready', () => {
    if (downSince === null) return;
    downSince = null;
    options.logger?.info(`Redis at ${redactUrl(url)} (REDIS_URL) is back`);
  });
  return redis;
}
