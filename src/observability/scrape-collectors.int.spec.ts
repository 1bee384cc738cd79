import { afterAll, describe, expect, it } from 'vitest';
import type { BusKind } from '../bus/bus.js';
import { createBus } from '../bus/create-bus.js';
import { createPool } from '../persistence/database.js';
import { EventStoreNotifier } from '../persistence/event-store-notifier.js';
import { createLogger } from './logger.js';
import { METRIC, Metrics } from './metrics.js';
import { registerScrapeCollectors } from './scrape-collectors.js';

/** The readings that answer for the bus in `scrape_collector_up`. */
const BUS_COLLECTORS: Record<BusKind, string> = { redis: 'streams', postgres: 'consumer_groups' };

describe.each(['redis', 'postgres'] as const)(
  'the scrape-time collectors, on the %s bus, with PostgreSQL and Redis unreachable',
  (busKind) => {
    // Nothing listens on port 1: PostgreSQL refuses at once, Redis keeps reconnecting and never answers.
    const url = 'postgres://postgres@127.0.0.1:1/nowhere';
    const pool = createPool(url);
    const logger = createLogger('silent');
    const bus = createBus(
      busKind,
      {
        pool,
        notifier: new EventStoreNotifier(url, logger, pool),
        logger,
        tuning: {},
        groupsByStream: new Map([['stock.evenements', ['commande-saga']]]),
        consumerName: () => 'nobody',
      },
      { redisUrl: 'redis://127.0.0.1:1', streamPrefix: 'nowhere:', streamRetentionMs: 60_000 },
    );
    afterAll(async () => {
      await bus.close();
      await pool.end();
    });

    it('still answers /metrics, with the readings marked down and their metrics left out', async () => {
      const metrics = new Metrics({ processMetrics: false });
      registerScrapeCollectors({
        registry: metrics.registry,
        pool,
        bus,
        logger,
        timeoutMs: 200,
      });
      metrics.sagaSucces.inc();

      const text = await metrics.registry.metrics();

      expect(text).toContain(`${METRIC.sagaSucces} 1`);
      for (const collector of ['sagas', BUS_COLLECTORS[busKind], 'event_store']) {
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
  },
);
