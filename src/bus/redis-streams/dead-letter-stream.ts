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

/**
 * KEYS: the stream, the dead letters, the re-driven set; ARGV: the dead letter's id, the event's position
 * (empty: not noted), then the entry's fields. One script, so that the entry is never both re-driven and
 * still a dead letter, nor back on its stream without its note.
 */
const REDRIVE_SCRIPT = `
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 3))
redis.call('XDEL', KEYS[2], ARGV[1])
if ARGV[2] ~= '' then redis.call('ZADD', KEYS[3], ARGV[2], id .. ' ' .. KEYS[1]) end
return id
`;

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
   * the dead letter, atomically. The entry is also noted in the re-driven set with its event's position:
   * it comes back out of position order, and every group of its stream must record its position as below
   * it until each is done with it (GroupPositionRecorder), or the inbox could be pruned of the rows that
   * let the groups that applied it before skip it.
   */
  async redrive(id: string): Promise<{ id: string; stream: string; new_entry_id: string }> {
    const letter = await this.get(id);
    const position = Number(letter.fields.position);
    const added = await this.redis.eval(
      REDRIVE_SCRIPT,
      3,
      letter.stream,
      this.keys.deadLetters,
      this.keys.redriven,
      id,
      Number.isSafeInteger(position) && position > 0 ? String(position) : '',
      ...Object.entries(letter.fields).flat(),
    );
    return { id, stream: letter.stream, new_entry_id: z.string().parse(added) };
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
