import type { Subscription } from '../bus/bus.js';
import type { Metrics } from '../observability/metrics.js';

/**
 * An actor's subscription wired to the process's metrics: latency from append to applied, failures,
 * retries, dead letters. Known series start at 0, so that dashboards and rate() see them before the
 * first failure.
 */
export function measuredSubscription(
  subscription: Omit<Subscription, 'events'>,
  metrics: Metrics,
): Subscription {
  const { group } = subscription;
  for (const counter of [metrics.consumerFailures, metrics.consumerRetries, metrics.deadLetters]) {
    counter.inc({ consumer: group }, 0);
  }
  return {
    ...subscription,
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
}
