import { z } from 'zod';
import { NotFoundError, UnavailableError } from '../../domain/errors.js';
import { redactUrl } from '../../observability/server-url.js';
import type { DeadLetter, DeadLetterStore } from '../bus.js';
import { pairsToRecord } from '../field-pairs.js';
import type { Redis } from './redis.js';
import type { StreamKeys } from './stream-keys.js';

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
export class DeadLetterStream implements DeadLetterStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: StreamKeys,
    private readonly redisUrl: string,
  ) {}

  async list(limit = 100): Promise<DeadLetter[]> {
    this.assertConnected();
    const reply = rangeReplySchema.parse(
      await this.redis.call('XRANGE', this.keys.deadLetters, '-', '+', 'COUNT', String(limit)),
    );
    return reply.map(([id, fields]) => ({ id, ...deadLetterSchema.parse(pairsToRecord(fields)) }));
  }

  async get(id: string): Promise<DeadLetter> {
    this.assertConnected();
    const reply = rangeReplySchema.parse(await this.redis.call('XRANGE', this.keys.deadLetters, id, id));
    const entry = reply[0];
    if (!entry) throw new NotFoundError(`dead letter ${id} not found`);
    return { id: entry[0], ...deadLetterSchema.parse(pairsToRecord(entry[1])) };
  }

  /**
   * Puts the original entry back on its stream (every group sees it again; those that applied it before
   * skip it: the services by its event_id in their inbox, the saga by the commande's version) and removes
   * the dead letter, atomically.
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

  /** A request must not wait for ioredis's retries to find out that Redis is away. */
  private assertConnected(): void {
    if (this.redis.status !== 'ready') {
      throw new UnavailableError(
        `Redis at ${redactUrl(this.redisUrl)} (REDIS_URL) is unreachable: the dead letters cannot be read`,
      );
    }
  }
}
