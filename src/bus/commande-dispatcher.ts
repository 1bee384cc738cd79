import type { Logger } from 'pino';
import type { SagaEnvelope } from '../domain/events.js';
import { crashPoint } from '../fault-injection.js';
import { isConflict, isTransientError } from '../persistence/transient-errors.js';
import type { DeliveryEvents, EventHandlers } from './bus.js';

/** One event as a bus adapter read it: decoded, or with the reason it could not be. */
export interface Delivery {
  envelope: SagaEnvelope | null;
  /** Why `envelope` is null. */
  undecodable?: string;
}

export type DeliveryOutcome =
  | { kind: 'done' }
  | { kind: 'failed'; reason: string }
  /** Not attempted: an earlier event of the same commande failed, or the consumer is stopping. */
  | { kind: 'waiting' };

export interface CommandeDispatcherOptions extends EventHandlers {
  group: string;
  logger: Logger;
  events?: DeliveryEvents;
  /** False once the consumer is stopping: a failure that may pass is then not waited out. */
  isRunning: () => boolean;
}

/**
 * Applies what a consumer read, whichever bus it came from: the whole read through `handleBatch` when
 * there is one, then what is left one commande at a time (each commande's events in order, commandes in
 * parallel). A failure that says nothing about the event (a lost race, a dependency away) is retried in
 * place; any other stops that commande's events there, to keep its order, and is reported for the
 * adapter to deliver again or dead-letter.
 */
export class CommandeDispatcher {
  constructor(private readonly options: CommandeDispatcherOptions) {}

  async dispatch<D extends Delivery>(deliveries: readonly D[]): Promise<Map<D, DeliveryOutcome>> {
    const outcomes = new Map<D, DeliveryOutcome>();
    const batched = await this.applyAsBatch(deliveries);
    for (const delivery of deliveries) {
      if (delivery.envelope && batched.has(delivery.envelope)) {
        outcomes.set(delivery, { kind: 'done' });
        this.options.events?.handled?.(delivery.envelope);
      }
    }
    const mailboxes = new Map<unknown, D[]>();
    for (const delivery of deliveries) {
      if (outcomes.has(delivery)) continue;
      const key = delivery.envelope?.correlation_id ?? delivery;
      const mailbox = mailboxes.get(key) ?? [];
      mailbox.push(delivery);
      mailboxes.set(key, mailbox);
    }
    await Promise.all(
      [...mailboxes.values()].map(async (mailbox) => {
        let blocked = false;
        for (const delivery of mailbox) {
          const outcome: DeliveryOutcome = blocked ? { kind: 'waiting' } : await this.applyOne(delivery);
          outcomes.set(delivery, outcome);
          if (outcome.kind !== 'done') blocked = true;
        }
      }),
    );
    return outcomes;
  }

  /** The envelopes applied by the batch handler, if there is one and the read holds more than one event. */
  private async applyAsBatch(deliveries: readonly Delivery[]): Promise<Set<SagaEnvelope>> {
    const { handleBatch } = this.options;
    const envelopes = deliveries.flatMap(({ envelope }) => (envelope ? [envelope] : []));
    if (!handleBatch || envelopes.length < 2) return new Set();
    let leftOver: SagaEnvelope[];
    try {
      leftOver = await handleBatch(envelopes);
    } catch (error) {
      // Nothing of the batch was kept: its events are applied one by one, with their own retries.
      this.options.logger.debug({ err: error, group: this.options.group }, 'batch failed, one by one');
      return new Set();
    }
    crashPoint('consumer.after-commit');
    const applied = new Set(envelopes);
    for (const envelope of leftOver) applied.delete(envelope);
    return applied;
  }

  private async applyOne(delivery: Delivery): Promise<DeliveryOutcome> {
    const { envelope } = delivery;
    if (!envelope) return this.failed(delivery.undecodable ?? 'undecodable entry');
    let attempt = 0;
    for (;;) {
      try {
        await this.options.handle(envelope);
        crashPoint('consumer.after-commit');
        this.options.events?.handled?.(envelope);
        return { kind: 'done' };
      } catch (error) {
        this.options.logger.debug(
          { err: error, group: this.options.group, attempt },
          'handler attempt failed',
        );
        if (!isTransientError(error))
          return this.failed(error instanceof Error ? error.message : String(error));
        if (!this.options.isRunning()) return { kind: 'waiting' };
        attempt += 1;
        // Lost races retry at once (with jitter); an unreachable dependency is waited for.
        const wait = isConflict(error) ? Math.random() * 10 * attempt : Math.min(100 * 2 ** attempt, 2_000);
        if (!isConflict(error) && attempt % 5 === 1) {
          this.options.logger.warn(
            { err: error, group: this.options.group },
            'dependency unavailable, pausing',
          );
        }
        await delay(wait);
      }
    }
  }

  private failed(reason: string): DeliveryOutcome {
    this.options.events?.failed?.(reason);
    this.options.logger.warn({ group: this.options.group, reason }, 'event failed');
    return { kind: 'failed', reason };
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
