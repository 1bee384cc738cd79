import type { Logger } from 'pino';
import { z } from 'zod';
import type { StreamName } from '../../domain/events.js';
import { RepeatedFailure } from '../../observability/repeated-failure.js';
import type { Pool } from '../../persistence/database.js';
import { decodeEnvelope } from '../envelope-codec.js';
import { pairsToRecord } from '../field-pairs.js';
import type { EntrySignature } from './entry-signature.js';
import type { Redis } from './redis.js';
import type { StreamKeys } from './stream-keys.js';
import { type GroupInfo, parseGroupsReply, parseOldestPending } from './stream-reply.js';

/** Past this many dead letters (or entries pending with one group), a pass records nothing: it cannot see them all. */
const MOST_ENTRIES_LOOKED_AT = 10_000;

const groupPositionRowSchema = z.object({ consumer_group: z.string(), position: z.coerce.number().int() });
const checkpointRowSchema = z.object({ position: z.coerce.number().int() });
const rangeReplySchema = z.array(z.tuple([z.string(), z.array(z.string()).nullable()]));
const deadLetterFieldsSchema = z.object({ stream: z.string(), group: z.string(), fields: z.string() });
const fieldsRecordSchema = z.record(z.string(), z.string());
const scoredMembersSchema = z.array(z.string());

/**
 * How far each consumer group has handled the event store, as recorded in PostgreSQL (a group that never
 * recorded one: 0). The lowest is where the relay publishes again from after Redis lost its data.
 */
export async function readGroupPositions(
  pool: Pool,
  groups: readonly string[],
): Promise<Map<string, number>> {
  const result = await pool.query(
    'SELECT consumer_group, position FROM consumer_group_positions WHERE consumer_group = ANY($1::text[])',
    [groups],
  );
  const recorded = new Map<string, number>();
  for (const row of result.rows) {
    const { consumer_group, position } = groupPositionRowSchema.parse(row);
    recorded.set(consumer_group, position);
  }
  return new Map(groups.map((group) => [group, recorded.get(group) ?? 0]));
}

export interface GroupPositionRecorderOptions {
  redis: Redis;
  pool: Pool;
  keys: StreamKeys;
  /** Each stream with the consumer groups that read it. */
  consumers: ReadonlyMap<StreamName, readonly string[]>;
  /** The relay's checkpoint: every event at or below it was published (it commits after the XADDs). */
  relayCheckpoint: string;
  signature: () => Promise<EntrySignature>;
  logger: Logger;
  /** How often the positions are read from Redis and those that moved written (once a second by default). */
  intervalMs?: number;
}

/** What one group has not finished with, as one consistent reading of Redis shows it. */
interface GroupReading {
  group: string;
  streams: { key: string; info: GroupInfo; oldestPending: string | null }[];
}

/**
 * Records, for each consumer group, the highest event-store position at or below which every event of its
 * streams has been handled and acknowledged: a low-water mark. The group's consumers handle entries out of
 * order (one commande at a time, commandes in parallel, several processes), so the mark is not "the last
 * entry acknowledged" but is read from the group's own state in Redis, which every consumer shares:
 *
 * - what was delivered and not acknowledged is its pending list: the oldest pending entry (by id) has the
 *   lowest position of any event not handled yet, because the relay appends in position order (a copy
 *   published again after a relay crash comes later with a lower position, but its first copy came first);
 * - what was not delivered yet starts at the entry after the group's last-delivered id;
 * - an entry dead-lettered by the group is not handled: its dead letter holds the mark below it until it
 *   is re-driven, and a re-driven entry (published again with its old position, so out of order) holds
 *   every group of its stream below it until the trimmer finds every group done with it;
 * - nothing is above what the relay has published: the mark never passes the relay's marker in Redis (set
 *   after each batch) nor its checkpoint in PostgreSQL, read before Redis.
 *
 * The mark is the lowest of those positions, minus one. The groups' state is read in one MULTI, so that an
 * entry moving from pending to a dead letter or back to its stream is seen in exactly one place; the
 * entries it names are read after, which is safe because an entry never changes and a later entry has a
 * later position. Entries whose signature does not verify are not the relay's, and a group that cannot be
 * read whole (a group or stream missing, a pending entry trimmed away) is skipped for this pass. Written
 * only upwards: what a group handled stays handled, whatever Redis forgets.
 */
export class GroupPositionRecorder {
  private timer: NodeJS.Timeout | null = null;
  private pass: Promise<unknown> | null = null;
  private readonly failure: RepeatedFailure;
  /** What this process last wrote for each group: a position that did not move is not written again. */
  private readonly written = new Map<string, number>();

  constructor(private readonly options: GroupPositionRecorderOptions) {
    this.failure = new RepeatedFailure(options.logger, 'recording the consumer groups’ positions');
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (this.pass) return;
      this.pass = this.record()
        .then(() => this.failure.succeeded())
        .catch((error: unknown) => this.failure.failed(error))
        .finally(() => {
          this.pass = null;
        });
    }, this.options.intervalMs ?? 1_000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.pass;
  }

  /** One pass: reads each group's mark and records those that moved up. Returns the marks read. */
  async record(): Promise<Map<string, number>> {
    const marks = await this.read();
    const moved = [...marks].filter(([group, position]) => position > (this.written.get(group) ?? -1));
    if (moved.length > 0) {
      await this.options.pool.query(
        `INSERT INTO consumer_group_positions (consumer_group, position)
         SELECT * FROM unnest($1::text[], $2::bigint[])
         ON CONFLICT (consumer_group) DO UPDATE SET position = EXCLUDED.position, recorded_at = now()
         WHERE consumer_group_positions.position < EXCLUDED.position`,
        [moved.map(([group]) => group), moved.map(([, position]) => position)],
      );
      for (const [group, position] of moved) this.written.set(group, position);
    }
    return marks;
  }

  /** Each group's low-water mark now, for the groups that could be read whole. */
  async read(): Promise<Map<string, number>> {
    const { redis, keys, pool, consumers, relayCheckpoint } = this.options;
    const checkpoint = await pool.query('SELECT position FROM checkpoints WHERE name = $1', [
      relayCheckpoint,
    ]);
    if (!checkpoint.rows[0]) return new Map();
    const published = checkpointRowSchema.parse(checkpoint.rows[0]).position;
    const groupsOf = groupsByName(consumers);
    const streams = [...consumers.keys()].map((stream) => keys.stream(stream));

    // One consistent reading: an entry moving from pending to a dead letter, or back onto its stream, is
    // seen in exactly one of these places.
    const multi = redis.multi();
    multi.get(keys.relayMarker);
    multi.call('XRANGE', keys.deadLetters, '-', '+', 'COUNT', String(MOST_ENTRIES_LOOKED_AT + 1));
    multi.call('ZRANGE', keys.redriven, '0', '-1', 'WITHSCORES');
    for (const stream of streams) multi.call('XINFO', 'GROUPS', stream);
    const pendingAsked: { group: string; stream: string }[] = [];
    for (const [group, groupStreams] of groupsOf) {
      for (const stream of groupStreams.map((name) => keys.stream(name))) {
        multi.call('XPENDING', stream, group);
        pendingAsked.push({ group, stream });
      }
    }
    const replies = (await multi.exec()) ?? [];
    const [marker, deadLetters, redriven] = replies;
    const groupReplies = replies.slice(3, 3 + streams.length);
    const pendingReplies = replies.slice(3 + streams.length);
    if (!marker || marker[0] || marker[1] === null) return new Map(); // Redis lost its data: nothing to read
    if (!deadLetters || deadLetters[0] || !redriven || redriven[0]) {
      throw deadLetters?.[0] ?? redriven?.[0] ?? new Error('MULTI got no reply');
    }
    const ceiling = Math.max(0, Math.min(published, z.coerce.number().int().parse(marker[1])));

    const groupsOnStream = new Map<string, GroupInfo[]>();
    streams.forEach((stream, index) => {
      const reply = groupReplies[index];
      if (reply && !reply[0]) groupsOnStream.set(stream, parseGroupsReply(reply[1]));
    });
    const oldestPending = new Map<string, string | null>();
    pendingAsked.forEach(({ group, stream }, index) => {
      const reply = pendingReplies[index];
      if (reply && !reply[0]) oldestPending.set(`${group} ${stream}`, parseOldestPending(reply[1]));
    });
    const readings: GroupReading[] = [];
    for (const [group, groupStreams] of groupsOf) {
      const reading: GroupReading = { group, streams: [] };
      for (const stream of groupStreams.map((name) => keys.stream(name))) {
        const info = groupsOnStream.get(stream)?.find(({ name }) => name === group);
        const pending = oldestPending.get(`${group} ${stream}`);
        if (!info || pending === undefined) break;
        reading.streams.push({ key: stream, info, oldestPending: pending });
      }
      if (reading.streams.length === groupStreams.length) readings.push(reading);
    }
    if (readings.length === 0) return new Map();

    const signature = await this.options.signature();
    const entryPosition = (stream: string, fields: readonly string[] | null): number | null => {
      if (fields === null || !signature.verify(stream, fields).ok) return null;
      const decoded = decodeEnvelope(fields);
      return decoded.ok ? decoded.envelope.position : null;
    };

    const heldBelow = new Map<string, number>(); // group → lowest position it has not finished with
    const hold = (group: string, position: number) =>
      heldBelow.set(group, Math.min(position, heldBelow.get(group) ?? Number.POSITIVE_INFINITY));

    const deadLetterEntries = rangeReplySchema.parse(deadLetters[1]);
    if (deadLetterEntries.length > MOST_ENTRIES_LOOKED_AT) {
      this.options.logger.warn(
        { deadLetters: deadLetterEntries.length },
        'too many dead letters to read: the consumer groups’ positions are not recorded until they are re-driven',
      );
      return new Map();
    }
    for (const [, pairs] of deadLetterEntries) {
      const letter = deadLetterFieldsSchema.safeParse(pairsToRecord(pairs ?? []));
      if (!letter.success) continue;
      const fields = fieldsRecordSchema.safeParse(safeJson(letter.data.fields));
      if (!fields.success) continue;
      const position = entryPosition(letter.data.stream, Object.entries(fields.data).flat());
      if (position !== null) hold(letter.data.group, position);
    }
    const redrivenScores = scoredMembersSchema.parse(redriven[1]);
    for (let index = 0; index + 1 < redrivenScores.length; index += 2) {
      const member = redrivenScores[index] ?? '';
      const stream = member.slice(member.indexOf(' ') + 1);
      const position = Number(redrivenScores[index + 1]);
      for (const reading of readings) {
        if (reading.streams.some(({ key }) => key === stream)) hold(reading.group, position);
      }
    }

    // The entries named: each group's oldest pending one, and the first one it was not given yet.
    const entryQueries = redis.pipeline();
    const asked: { group: string; stream: string; kind: 'pending' | 'next' }[] = [];
    for (const reading of readings) {
      for (const stream of reading.streams) {
        if (stream.oldestPending !== null) {
          entryQueries.call('XRANGE', stream.key, stream.oldestPending, stream.oldestPending);
          asked.push({ group: reading.group, stream: stream.key, kind: 'pending' });
        }
        entryQueries.call('XRANGE', stream.key, `(${stream.info.lastDeliveredId}`, '+', 'COUNT', '1');
        asked.push({ group: reading.group, stream: stream.key, kind: 'next' });
      }
    }
    const unreadable = new Set<string>();
    const entryResults = (await entryQueries.exec()) ?? [];
    asked.forEach(({ group, stream, kind }, index) => {
      const [error, reply] = entryResults[index] ?? [new Error('XRANGE got no reply'), null];
      if (error) throw error;
      const [entry] = rangeReplySchema.parse(reply);
      if (!entry) {
        // Pending and gone: trimmed away by hand (reported by the consumer); nothing after: nothing to hold.
        if (kind === 'pending') unreadable.add(group);
        return;
      }
      const position = entryPosition(stream, entry[1]);
      // Not the relay's (set aside at its first delivery): the group is read again next pass.
      if (position === null) unreadable.add(group);
      else hold(group, position);
    });

    // A relay batch published and not yet checkpointed is above `published`: the ceiling keeps it out.
    const marks = new Map<string, number>();
    for (const { group } of readings) {
      if (unreadable.has(group)) continue;
      const held = heldBelow.get(group);
      marks.set(group, Math.max(0, Math.min(ceiling, held === undefined ? ceiling : held - 1)));
    }
    return marks;
  }
}

function groupsByName(consumers: ReadonlyMap<StreamName, readonly string[]>): Map<string, StreamName[]> {
  const groups = new Map<string, StreamName[]>();
  for (const [stream, readers] of consumers) {
    for (const group of readers) groups.set(group, [...(groups.get(group) ?? []), stream]);
  }
  return groups;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
