import { z } from 'zod';
import { NotFoundError } from '../../domain/errors.js';
import { pairsToRecord } from './field-pairs.js';
import type { Redis } from './redis.js';
import type { StreamKeys } from './stream-keys.js';

export interface DeadLetter {
  id: string;
  stream: string;
  entry_id: string;
  group: string;
  reason: string;
  deliveries: number;
  failed_at: string;
  fields: Record<string, string>;
}

const deadLetterSchema = z.object({
  stream: z.string(),
  entry_id: z.string(),
  group: z.string(),
  reason: z.string(),
  deliveries: z.coerce.number().int(),
  failed_at: z.string(),
  fields: z.string().transform((text) => z.record(z.string(), z.string()).parse(JSON.parse(text))),
});

const rangeReplySchema = z.array(z.tuple([z.string(), z.array(z.string())]));

/** The dead-letter stream: entries that kept failing, kept with why and how often, until re-driven. */
export class DeadLetters {
  constructor(
    private readonly redis: Redis,
    private readonly keys: StreamKeys,
  ) {}

  async list(limit = 100): Promise<DeadLetter[]> {
    const reply = rangeReplySchema.parse(
      await this.redis.call('XRANGE', this.keys.deadLetters, '-', '+', 'COUNT', String(limit)),
    );
    return reply.map(([id, fields]) => ({ id, ...deadLetterSchema.parse(pairsToRecord(fields)) }));
  }

  async get(id: string): Promise<DeadLetter> {
    const reply = rangeReplySchema.parse(await this.redis.call('XRANGE', this.keys.deadLetters, id, id));
    const entry = reply[0];
    if (!entry) throw new NotFoundError(`dead letter ${id} not found`);
    return { id: entry[0], ...deadLetterSchema.parse(pairsToRecord(entry[1])) };
  }

  /**
   * Puts the original entry back on its stream (every group sees it again; those that applied it before
   * skip it by its event_id) and removes the dead letter, atomically.
   */
  async redrive(id: string): Promise<{ id: string; stream: string; new_entry_id: string }> {
    const letter = await this.get(id);
    const results = await this.redis
      .multi()
      .call('XADD', letter.stream, '*', ...Object.entries(letter.fields).flat())
      .call('XDEL', this.keys.deadLetters, id)
      .exec();
    const added = results?.[0];
    if (!added || added[0]) throw added?.[0] ?? new Error('re-drive failed');
    return { id, stream: letter.stream, new_entry_id: String(added[1]) };
  }
}
