import type { Logger } from 'pino';
import { Gauge, type Registry } from 'prom-client';
import type { Bus } from '../bus/bus.js';
import type { Pool } from '../persistence/database.js';
import { readEventStoreLag, registerEventStoreLagMetrics } from './event-store-lag-collector.js';
import { METRIC } from './metrics.js';
import { readSagaStates, registerSagaStateMetrics } from './saga-state-collector.js';
import { ScrapeProbe } from './scrape-probe.js';

export interface ScrapeCollectorsOptions {
  registry: Registry;
  pool: Pool;
  /** Reports its consumer groups' lag and its dead letters. */
  bus: Bus;
  logger: Logger;
  /** Each reading gives up after this long, well under Prometheus's scrape_timeout. Default 2 s. */
  timeoutMs?: number;
  /**
   * A commande not final and without a step for this long counts as stuck. Pass twice the saga deadline:
   * by then the deadline should have expired it, and compensation states have no deadline. Default 2 min.
   */
  stuckAfterMs?: number;
}

/**
 * Metrics computed when /metrics is scraped, from what PostgreSQL and the bus hold rather than from what
 * this process saw: commandes by state, consumer groups' pending entries and lag, streams' volume,
 * dead letters waiting, relay and projection lag. They describe the whole system, so every process
 * reports the same values (dashboards take `max`), whatever actors it hosts. Each reading is bounded
 * and never fails the scrape; `scrape_collector_up` says which readings answered.
 */
export function registerScrapeCollectors(options: ScrapeCollectorsOptions): void {
  const { registry, pool, bus } = options;
  const timeoutMs = options.timeoutMs ?? 2_000;
  const stuckAfterSeconds = (options.stuckAfterMs ?? 120_000) / 1_000;
  const logger = options.logger.child({ component: 'metrics' });

  const sagas = new ScrapeProbe({
    name: 'sagas',
    read: () => readSagaStates(pool, stuckAfterSeconds),
    timeoutMs,
    logger,
  });
  const eventStore = new ScrapeProbe({
    name: 'event_store',
    read: () => readEventStoreLag(pool, bus.publisherCheckpoint),
    timeoutMs,
    logger,
  });

  registerSagaStateMetrics(registry, sagas, stuckAfterSeconds);
  const busProbes = bus.registerMetrics(registry, { timeoutMs, logger });
  registerEventStoreLagMetrics(registry, eventStore);

  const probes: ScrapeProbe<unknown>[] = [sagas, ...busProbes, eventStore];
  new Gauge({
    name: METRIC.scrapeCollectorUp,
    help: 'Whether the reading behind the scrape-time metrics answered in time (1) or not (0)',
    labelNames: ['collector'] as const,
    registers: [registry],
    async collect() {
      const answers = await Promise.all(probes.map((probe) => probe.sample()));
      probes.forEach((probe, index) => {
        this.set({ collector: probe.name }, answers[index] === null ? 0 : 1);
      });
    },
  });
}
