import { z } from 'zod';
import { NotFoundError } from '../../domain/errors.js';
import { STREAM_NAMES, type StoredEvent, type StreamName } from '../../domain/events.js';
import { type Pool, type PoolClient, withTransaction } from '../../persistence/database.js';
import { EVENT_COLUMNS, toStoredEvent } from '../../persistence/event-store.js';
import type { DeadLetter, DeadLetterStore } from '../bus.js';
import type { DeliveryOutcome } from '../commande-dispatcher.js';
import { encodeEnvelope } from '../envelope-codec.js';
import { pairsToRecord } from '../field-pairs.js';

const deadLetterRowSchema = z.object({
  id: z.number().int(),
  consumer_group: z.string(),
  position: z.number().int(),
  stream: z.enum(STREAM_NAMES as [StreamName, ...StreamName[]]),
  reason: z.string(),
  deliveries: z.number().int(),
  failed_at: z.date(),
});

const redriveRowSchema = deadLetterRowSchema.pick({ id: true, stream: true });

const idSchema = z.coerce.number().int().positive();

/** The event's columns, from the events table aliased `e`. */
const EVENT_COLUMNS_OF_E = EVENT_COLUMNS.split(', ')
  .map((column) => `e.${column}`)
  .join(', ');

export interface NewDeadLetter {
  group: string;
  event: StoredEvent;
  stream: StreamName;
  reason: string;
  deliveries: number;
}

/**
 * The PostgreSQL bus's dead letters: a row per event a consumer group gave up on, pointing at the event
 * in the store (which keeps it anyway). A re-drive marks the row; the group applies the event again at
 * its next look, and removes the row once applied.
 */
export class DeadLetterTable implements DeadLetterStore {
  constructor(private readonly pool: Pool) {}

  /** In the transaction that moves the group's checkpoint past the event. */
  async add(tx: PoolClient, letter: NewDeadLetter): Promise<void> {
    await tx.query(
      `INSERT INTO bus_dead_letters (consumer_group, position, event_id, stream, reason, deliveries)
       VALUES ($1, $2, $3, $4, $5, $6)`,
      [
        letter.group,
        letter.event.position,
        letter.event.event_id,
        letter.stream,
        letter.reason,
        letter.deliveries,
      ],
    );
  }

  async list(limit = 100): Promise<DeadLetter[]> {
    const result = await this.pool.query(
      `SELECT d.id, d.consumer_group, d.stream, d.reason, d.deliveries, d.failed_at, ${EVENT_COLUMNS_OF_E}
       FROM bus_dead_letters AS d JOIN events AS e ON e.position = d.position
       ORDER BY d.id LIMIT $1`,
      [limit],
    );
    return result.rows.map((row: unknown) => {
      const letter = deadLetterRowSchema.parse(row);
      return {
        id: String(letter.id),
        stream: letter.stream,
        entry_id: String(letter.position),
        group: letter.consumer_group,
        reason: letter.reason,
        deliveries: letter.deliveries,
        failed_at: letter.failed_at.toISOString(),
        fields: pairsToRecord(encodeEnvelope(toStoredEvent(row))),
      };
    });
  }

  async redrive(id: string): Promise<{ id: string; stream: string; new_entry_id: string }> {
    const parsed = idSchema.safeParse(id);
    const result = parsed.success
      ? await this.pool.query(
          `UPDATE bus_dead_letters SET redrive_requested_at = now() WHERE id = $1
           RETURNING stream, position`,
          [parsed.data],
        )
      : { rows: [] };
    const row = z.object({ stream: z.string(), position: z.number().int() }).safeParse(result.rows[0]);
    if (!row.success) throw new NotFoundError(`dead letter ${id} not found`);
    // The event keeps its place in the store: the group applies it again from there.
    return { id, stream: row.data.stream, new_entry_id: String(row.data.position) };
  }

  /**
   * Applies, one at a time, the dead letters of `group` that someone asked to re-drive: each row stays
   * locked while its event is applied (another process of the group skips it), and is removed when it
   * was, or keeps its new reason otherwise.
   */
  async takeRedriveRequests(
    group: string,
    apply: (event: StoredEvent, stream: StreamName) => Promise<DeliveryOutcome>,
  ): Promise<number> {
    let redriven = 0;
    for (;;) {
      const done = await withTransaction(this.pool, async (tx) => {
        const result = await tx.query(
          `SELECT d.id, d.stream, ${EVENT_COLUMNS_OF_E}
           FROM bus_dead_letters AS d JOIN events AS e ON e.position = d.position
           WHERE d.consumer_group = $1 AND d.redrive_requested_at IS NOT NULL
           ORDER BY d.id LIMIT 1 FOR UPDATE OF d SKIP LOCKED`,
          [group],
        );
        const row: unknown = result.rows[0];
        if (row === undefined) return false;
        const { id: letterId, stream } = redriveRowSchema.parse(row);
        const outcome = await apply(toStoredEvent(row), stream);
        if (outcome.kind === 'done') {
          await tx.query('DELETE FROM bus_dead_letters WHERE id = $1', [letterId]);
        } else {
          await tx.query(
            `UPDATE bus_dead_letters
             SET redrive_requested_at = NULL, deliveries = deliveries + 1, failed_at = now(),
                 reason = coalesce($2, reason)
             WHERE id = $1`,
            [letterId, outcome.kind === 'failed' ? outcome.reason : null],
          );
        }
        return true;
      });
      if (!done) return redriven;
      redriven += 1;
    }
  }

  async count(): Promise<number> {
    const result = await this.pool.query('SELECT count(*)::int AS n FROM bus_dead_letters');
    return z.object({ n: z.number().int() }).parse(result.rows[0]).n;
  }
}
