import { afterAll, describe, expect, it } from 'vitest';
import { createRedis } from '../bus/redis-streams/redis.js';
import { StreamKeys } from '../bus/redis-streams/stream-keys.js';
import { createPool } from '../persistence/database.js';
import { createLogger } from './logger.js';
import { METRIC, Metrics } from './metrics.js';
import { registerScrapeCollectors } from './scrape-collectors.js';

describe('the scrape-time collectors, with PostgreSQL and Redis unreachable', () => {
  // Nothing listens on port 1: PostgreSQL refuses at once, Redis keeps reconnecting and never answers.
  const pool = createPool('postgres://postgres@127.0.0.1:1/nowhere');
  const redis = createRedis('redis://127.0.0.1:1');
  afterAll(async () => {
    redis.disconnect();
    await pool.end();
  });

  it('still answers /metrics, with the readings marked down and their metrics left out', async () => {
    const metrics = new Metrics({ processMetrics: false });
    registerScrapeCollectors({
      registry: metrics.registry,
      pool,
      redis,
      keys: new StreamKeys('nowhere:'),
      logger: createLogger('silent'),
      timeoutMs: 200,
    });
    metrics.sagaSucces.inc();

    const text = await metrics.registry.metrics();

    expect(text).toContain(`${METRIC.sagaSucces} 1`);
    for (const collector of ['sagas', 'streams', 'event_store']) {
      expect(text).toContain(`${METRIC.scrapeCollectorUp}{collector="${collector}"} 0`);
    }
    const samples = text.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
    for (const name of [
      METRIC.commandesParEtat,
      METRIC.commandesBloquees,
      METRIC.consumerGroupPending,
      METRIC.consumerGroupLag,
      METRIC.deadLetterStreamLength,
      METRIC.relayLag,
    ]) {
      expect(samples.filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))).toEqual(
        [],
      );
    }
  });
});
