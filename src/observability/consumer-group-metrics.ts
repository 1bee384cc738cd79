import { Gauge, type Registry } from 'prom-client';
import type { BusLagReading } from '../bus/bus.js';
import { METRIC } from './metrics.js';
import type { ScrapeProbe } from './scrape-probe.js';

/**
 * Per consumer group and stream: what is waiting, what was never delivered; and the dead letters
 * waiting. The same series whichever bus carries the events, so the dashboards serve both.
 */
export function registerConsumerGroupMetrics(registry: Registry, probe: ScrapeProbe<BusLagReading>): void {
  new Gauge({
    name: METRIC.consumerGroupPending,
    help: 'Events delivered to a consumer group but not yet acknowledged (always 0 on the PostgreSQL bus: its groups hold nothing between reads)',
    labelNames: ['group', 'stream'] as const,
    registers: [registry],
    async collect() {
      const reading = await probe.sample();
      this.reset();
      for (const { group, stream, pending } of reading?.groups ?? []) this.set({ group, stream }, pending);
    },
  });
  new Gauge({
    name: METRIC.consumerGroupLag,
    help: 'Events of the stream not yet delivered to the consumer group',
    labelNames: ['group', 'stream'] as const,
    registers: [registry],
    async collect() {
      const reading = await probe.sample();
      this.reset();
      for (const { group, stream, lag } of reading?.groups ?? [])
        if (lag !== null) this.set({ group, stream }, lag);
    },
  });
  new Gauge({
    name: METRIC.deadLetterStreamLength,
    help: 'Dead letters waiting to be re-driven (see GET /api/dead-letters)',
    registers: [registry],
    async collect() {
      const reading = await probe.sample();
      if (reading) this.set(reading.deadLetters);
      else this.remove();
    },
  });
}
