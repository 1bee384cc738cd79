import { Redis } from 'ioredis';

export type { Redis };

/**
 * A command connection retries while Redis is away; a blocking reader gets its own connection so that a
 * long XREADGROUP never delays anyone else's commands.
 */
export function createRedis(url: string, options: { blocking?: boolean } = {}): Redis {
  const redis = new Redis(url, {
    // RESP2 keeps XREADGROUP's reply as [[stream, entries]...]; RESP3 flattens that map.
    protocol: 2,
    maxRetriesPerRequest: options.blocking ? null : 3,
    enableOfflineQueue: true,
    lazyConnect: false,
    retryStrategy: (attempt) => Math.min(100 * attempt, 2_000),
  });
  // Reconnection is ioredis's job; an 'error' event with no listener would crash the process.
  redis.on('error', () => {});
  return redis;
}
