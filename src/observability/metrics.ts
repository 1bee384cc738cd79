import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** Metric names in one place: dashboards and CONTRACT.md refer to them. */
export const METRIC = {
  eventStoreEvents: 'event_store_events_total',
  commandeEtat: 'commande_etat_total',
  sagaSucces: 'saga_commande_succes_total',
  sagaEchec: 'saga_commande_echec_total',
  commandeLatence: 'commande_latence_ms',
  eventsRefused: 'commande_evenements_refuses_total',
  consumerHandled: 'consumer_events_handled_total',
  consumerFailures: 'consumer_events_failed_total',
  consumerRetries: 'consumer_deliveries_retried_total',
  deadLetters: 'dead_letters_total',
  busEntriesRejected: 'bus_entries_rejected_total',
  relayPublished: 'relay_events_published_total',
  relayPosition: 'relay_position',
  streamEntriesTrimmed: 'redis_stream_entries_trimmed_total',
  streamPendingTrimmed: 'redis_stream_pending_trimmed_total',
  streamLengthWarning: 'redis_stream_length_warning',
  streamNearBound: 'redis_stream_near_bound',
  sagaDuration: 'saga_duree_ms',
  httpDuration: 'http_request_duration_ms',
  commandesExpirees: 'commandes_expirees_total',
  // Computed when /metrics is scraped, from PostgreSQL and Redis (see scrape-collectors.ts).
  commandesParEtat: 'commandes_par_etat',
  commandesNonFinales: 'commandes_non_finales',
  commandesBloquees: 'commandes_bloquees',
  commandeNonFinaleAgeMax: 'commande_non_finale_age_max_secondes',
  consumerGroupPending: 'consumer_group_pending',
  consumerGroupLag: 'consumer_group_lag',
  streamLength: 'redis_stream_length',
  streamEntriesAdded: 'redis_stream_entries_added_total',
  deadLetterStreamLength: 'dead_letter_stream_length',
  eventStorePosition: 'event_store_position',
  relayLag: 'relay_lag_events',
  projectionLag: 'projection_lag_events',
  scrapeCollectorUp: 'scrape_collector_up',
} as const;

/** One registry per app instance, so that tests running several instances do not collide. */
export class Metrics {
  readonly registry = new Registry();

  readonly eventStoreEvents = new Counter({
    name: METRIC.eventStoreEvents,
    help: 'Events persisted in the event store, by type and producing service',
    labelNames: ['event_type', 'source'] as const,
    registers: [this.registry],
  });

  readonly commandeEtat = new Counter({
    name: METRIC.commandeEtat,
    help: 'Order machine states entered',
    labelNames: ['etat'] as const,
    registers: [this.registry],
  });

  readonly sagaSucces = new Counter({
    name: METRIC.sagaSucces,
    help: 'Sagas that ended with a confirmed sale',
    registers: [this.registry],
  });

  readonly sagaEchec = new Counter({
    name: METRIC.sagaEchec,
    help: 'Sagas that ended in failure, by reason',
    labelNames: ['raison'] as const,
    registers: [this.registry],
  });

  readonly commandeLatence = new Histogram({
    name: METRIC.commandeLatence,
    help: 'Latency from an event being appended to a consumer having applied it (ms)',
    labelNames: ['event_type', 'consumer'] as const,
    buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000],
    registers: [this.registry],
  });

  readonly eventsRefused = new Counter({
    name: METRIC.eventsRefused,
    help: 'Events that the order machine did not accept in the current state (changed nothing)',
    labelNames: ['event_type', 'consumer'] as const,
    registers: [this.registry],
  });

  readonly consumerHandled = new Counter({
    name: METRIC.consumerHandled,
    help: 'Stream entries applied and acknowledged, by consumer group',
    labelNames: ['consumer', 'event_type'] as const,
    registers: [this.registry],
  });

  readonly consumerFailures = new Counter({
    name: METRIC.consumerFailures,
    help: 'Stream entries whose handling failed (left pending for a retry)',
    labelNames: ['consumer'] as const,
    registers: [this.registry],
  });

  readonly consumerRetries = new Counter({
    name: METRIC.consumerRetries,
    help: 'Stream entries delivered again after a failure or a dead consumer',
    labelNames: ['consumer'] as const,
    registers: [this.registry],
  });

  readonly deadLetters = new Counter({
    name: METRIC.deadLetters,
    help: 'Stream entries moved to the dead-letter stream',
    labelNames: ['consumer'] as const,
    registers: [this.registry],
  });

  readonly busEntriesRejected = new Counter({
    name: METRIC.busEntriesRejected,
    help:
      'Entries a consumer group set aside in the dead letters at once, unapplied: not published by choreo ' +
      '(signature missing or invalid), or undecodable',
    labelNames: ['consumer', 'reason'] as const,
    registers: [this.registry],
  });

  readonly relayPublished = new Counter({
    name: METRIC.relayPublished,
    help: 'Events published to Redis by the outbox relay',
    registers: [this.registry],
  });

  readonly relayPosition = new Gauge({
    name: METRIC.relayPosition,
    help: 'Event store position up to which the relay has published',
    registers: [this.registry],
  });

  readonly streamEntriesTrimmed = new Counter({
    name: METRIC.streamEntriesTrimmed,
    help: 'Stream entries removed because every consumer group had acknowledged them (StreamTrimmer)',
    labelNames: ['stream'] as const,
    registers: [this.registry],
  });

  readonly streamPendingTrimmed = new Counter({
    name: METRIC.streamPendingTrimmed,
    help:
      'Entries found trimmed away while pending with a consumer group: events that group never applied ' +
      '(the event store still has them); should stay 0',
    labelNames: ['group', 'stream'] as const,
    registers: [this.registry],
  });

  readonly streamLengthWarning = new Gauge({
    name: METRIC.streamLengthWarning,
    help: 'STREAM_LENGTH_WARNING: entries in one Redis stream beyond which choreo warns (compare redis_stream_length)',
    registers: [this.registry],
  });

  readonly streamNearBound = new Gauge({
    name: METRIC.streamNearBound,
    help:
      '1 while the Redis stream is longer than STREAM_LENGTH_WARNING (some group is far behind), else 0; ' +
      "set by the relay's process at each trimming pass",
    labelNames: ['stream'] as const,
    registers: [this.registry],
  });

  readonly sagaDuration = new Histogram({
    name: METRIC.sagaDuration,
    help: 'Time from CommandeCreee to the final state (ms)',
    labelNames: ['statut'] as const,
    buckets: [5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 30_000, 60_000],
    registers: [this.registry],
  });

  readonly httpDuration = new Histogram({
    name: METRIC.httpDuration,
    help: 'HTTP request duration (ms) by route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 5_000],
    registers: [this.registry],
  });

  readonly commandesExpirees = new Counter({
    name: METRIC.commandesExpirees,
    help: 'Commandes that made no progress before their deadline, by the state they were stuck in',
    labelNames: ['etat'] as const,
    registers: [this.registry],
  });

  constructor(options: { processMetrics?: boolean } = {}) {
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }
}
