import type { BusKind, Config } from '../config.js';
import { redactUrl } from '../observability/server-url.js';
import { probeRedis } from './probe.js';
import { StartupError } from './startup-error.js';

/** Long enough for a Redis on this machine or the next one, short enough not to delay a bare start. */
const REDIS_PROBE_TIMEOUT_MS = 1_000;

/**
 * Which bus this process uses. `BUS=postgres`: PostgreSQL. `BUS=redis`, or `BUS=auto` with REDIS_URL
 * set: Redis, which must answer now (an explicit choice never silently becomes another). `BUS=auto`
 * with REDIS_URL unset: Redis if one answers at the default address, PostgreSQL otherwise.
 */
export async function resolveBus(config: Pick<Config, 'bus' | 'redisUrl' | 'redisUrlSet'>): Promise<BusKind> {
  if (config.bus === 'postgres') return 'postgres';
  const probe = await probeRedis(config.redisUrl, REDIS_PROBE_TIMEOUT_MS);
  if (probe.outcome === 'answers') return 'redis';
  if (config.bus === 'auto' && !config.redisUrlSet) return 'postgres';

  const where = `Redis at ${redactUrl(config.redisUrl)}`;
  const why = config.bus === 'redis' ? 'BUS=redis' : 'REDIS_URL is set, so BUS=auto';
  const problem =
    probe.outcome === 'refuses'
      ? `refuses this process: ${probe.reason}`
      : `does not answer: ${probe.reason}`;
  throw new StartupError(
    `${where} (REDIS_URL) ${problem}. ${why} needs it. Start Redis, fix REDIS_URL, ` +
      'or set BUS=postgres (and unset REDIS_URL) to carry the events on PostgreSQL.',
  );
}
