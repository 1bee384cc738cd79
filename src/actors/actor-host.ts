import type { Logger } from 'pino';
import { StreamConsumer, type StreamConsumerOptions } from '../bus/redis-streams/stream-consumer.js';
import type { StreamKeys } from '../bus/redis-streams/stream-keys.js';
import type { SagaEnvelope, StreamName } from '../domain/events.js';
import type { Metrics } from '../observability/metrics.js';

export interface ConsumerTuning {
  batchSize?: number;
  blockMs?: number;
  claimIdleMs?: number;
  maxDeliveries?: number;
}

export interface HostedConsumerOptions {
  group: string;
  streams: readonly StreamName[];
  handle: (envelope: SagaEnvelope) => Promise<void>;
  handleBatch?: (envelopes: SagaEnvelope[]) => Promise<SagaEnvelope[]>;
  redisUrl: string;
  keys: StreamKeys;
  consumerName: string;
  logger: Logger;
  metrics: Metrics;
  tuning: ConsumerTuning;
}

/** A stream consumer wired to the process's metrics: latency from append to applied, failures, dead letters. */
export function createHostedConsumer(options: HostedConsumerOptions): StreamConsumer {
  const { group, metrics } = options;
  // Known series start at 0, so that dashboards and rate() see them before the first failure.
  for (const counter of [metrics.consumerFailures, metrics.consumerRetries, metrics.deadLetters]) {
    counter.inc({ consumer: group }, 0);
  }
  const consumerOptions: StreamConsumerOptions = {
    redisUrl: options.redisUrl,
    group,
    consumerName: options.consumerName,
    streams: options.streams.map((stream) => options.keys.stream(stream)),
    deadLetterStream: options.keys.deadLetters,
    logger: options.logger.child({ consumer: group }),
    handle: options.handle,
    ...(options.handleBatch ? { handleBatch: options.handleBatch } : {}),
    ...options.tuning,
    events: {
      handled: (envelope) => {
        metrics.consumerHandled.inc({ consumer: group, event_type: envelope.event_type });
        const latency = Date.now() - Date.parse(envelope.timestamp);
        metrics.commandeLatence.observe(
          { event_type: envelope.event_type, consumer: group },
          Math.max(latency, 0),
        );
      },
      failed: () => metrics.consumerFailures.inc({ consumer: group }),
      retried: () => metrics.consumerRetries.inc({ consumer: group }),
      deadLettered: () => metrics.deadLetters.inc({ consumer: group }),
    },
  };
  return new StreamConsumer(consumerOptions);
}
