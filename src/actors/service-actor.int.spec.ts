import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { NEW_EVENTS } from '../../test/support/new-events.js';
import { createTestDatabase, type TestDatabase } from '../../test/support/test-database.js';
import { TransitionRefusedError } from '../domain/errors.js';
import { type NewEvent, parseSagaEnvelope, type SagaEnvelope, type SagaEventType } from '../domain/events.js';
import { createPool, type Pool } from '../persistence/database.js';
import { appendToStream } from '../persistence/event-store.js';
import { pruneInbox } from '../persistence/history-retention.js';
import { migrate } from '../persistence/migrate.js';
import { CommandeCache } from './commande/commande-cache.js';
import type { LoadedCommande } from './commande/commande-stream.js';
import { handleBatchOnce, handleOnce, type ServiceActor } from './service-actor.js';

const {
  CommandeCreee: creee,
  StockReserve: reserve,
  PaiementAccepte: accepte,
  StockIndisponible: indisponible,
} = NEW_EVENTS;

const inboxRowSchema = z.object({ event_id: z.string() });

/** What an actor saw of each event it was handed: the event, and its commande's version in the session. */
interface Seen {
  eventType: string;
  commandeVersion: number;
}

/** An actor that records what it is handed, through `handle` or `handleAll`, and can be made to refuse. */
function recordingActor(
  handles: readonly SagaEventType[],
  { batched = false, fail }: { batched?: boolean; fail?: 'refuse' | 'crash' } = {},
) {
  const seen: Seen[] = [];
  const commandesSeen: LoadedCommande[] = [];
  const handleAllCalls: number[] = [];
  const actor: ServiceActor = {
    name: `recording-${randomUUID()}`,
    streams: ['commande.evenements', 'stock.evenements', 'paiement.evenements'],
    handles,
    async handle(session, event) {
      const commande = await session.load(event.aggregate_id);
      seen.push({ eventType: event.event_type, commandeVersion: commande.version });
      commandesSeen.push(commande);
      if (fail === 'refuse') {
        throw new TransitionRefusedError(event.aggregate_id, event.event_type, 'refused by the test');
      }
      if (fail === 'crash') throw new Error('the actor failed');
    },
    ...(batched && {
      async handleAll(session, events) {
        handleAllCalls.push(events.length);
        await session.preload(events.map((event) => event.aggregate_id));
        for (const event of events) await actor.handle(session, event);
      },
    }),
  };
  return { actor, seen, commandesSeen, handleAllCalls };
}

describe('a service actor applying events once', () => {
  let database: TestDatabase;
  let pool: Pool;

  beforeAll(async () => {
    database = await createTestDatabase('service_actor');
    pool = createPool(database.url);
    await migrate(pool);
  });
  afterAll(async () => {
    await pool?.end();
    await database?.drop();
  });

  /** A new commande with these events, as the services receive them. */
  async function commandeWith(...events: NewEvent[]): Promise<SagaEnvelope[]> {
    return (await appendToStream(pool, `cmd-${randomUUID()}`, 0, events)).map(parseSagaEnvelope);
  }

  async function inboxOf(actor: ServiceActor): Promise<string[]> {
    const result = await pool.query('SELECT event_id FROM inbox WHERE consumer = $1', [actor.name]);
    return result.rows.map((row) => inboxRowSchema.parse(row).event_id);
  }

  it('applies an event, then takes its second delivery as a duplicate', async () => {
    const [created] = await commandeWith(creee);
    if (!created) throw new Error('nothing appended');
    const { actor, seen } = recordingActor(['CommandeCreee']);

    expect(await handleOnce(pool, actor, created)).toBe('applied');
    expect(await handleOnce(pool, actor, created)).toBe('duplicate');

    expect(seen).toEqual([{ eventType: 'CommandeCreee', commandeVersion: 1 }]);
    expect(await inboxOf(actor)).toEqual([created.event_id]);
  });

  it('records a refused event as handled, so that it is not handed in for ever', async () => {
    const [created] = await commandeWith(creee);
    if (!created) throw new Error('nothing appended');
    const { actor, seen } = recordingActor(['CommandeCreee'], { fail: 'refuse' });

    expect(await handleOnce(pool, actor, created, new CommandeCache())).toBe('refused');
    expect(await handleOnce(pool, actor, created)).toBe('duplicate');

    // once from the cache, once more from the store, and not after
    expect(seen).toHaveLength(2);
    expect(await inboxOf(actor)).toEqual([created.event_id]);
  });

  it('hands a batch to handleAll, the events of the types it handles only, in order', async () => {
    const events = await commandeWith(creee, reserve, accepte);
    const { actor, seen, handleAllCalls } = recordingActor(['CommandeCreee', 'PaiementAccepte'], {
      batched: true,
    });

    await handleBatchOnce(pool, actor, events);

    expect(handleAllCalls).toEqual([2]);
    expect(seen.map((event) => event.eventType)).toEqual(['CommandeCreee', 'PaiementAccepte']);
    expect(await inboxOf(actor)).toHaveLength(2);
  });

  it('hands a batch to handle one event at a time when the actor has no handleAll', async () => {
    const events = await commandeWith(creee, reserve);
    const { actor, seen } = recordingActor(['CommandeCreee', 'StockReserve']);

    await handleBatchOnce(pool, actor, events);

    expect(seen.map((event) => event.eventType)).toEqual(['CommandeCreee', 'StockReserve']);
  });

  it('does not call handleAll for a batch it had handled already, nor for one of types it does not handle', async () => {
    const events = await commandeWith(creee, reserve);
    const { actor, handleAllCalls } = recordingActor(['CommandeCreee'], { batched: true });
    await handleBatchOnce(pool, actor, events);

    await handleBatchOnce(pool, actor, events);
    await handleBatchOnce(pool, actor, events.slice(1));

    expect(handleAllCalls).toEqual([1]);
  });

  it('reads a commande from the store when the cache knows it only to an earlier version than the latest of the batch', async () => {
    const [created, reserved, paid] = await commandeWith(creee, reserve, accepte);
    if (!created || !reserved || !paid) throw new Error('nothing appended');
    const cache = new CommandeCache();
    cache.observe(created);
    const { actor, seen } = recordingActor(['StockReserve', 'PaiementAccepte']);

    // entries of two streams, the later version first: the cache can follow the commande to version 2 only
    await handleBatchOnce(pool, actor, [paid, reserved], cache);

    expect(seen.map((event) => event.commandeVersion)).toEqual([3, 3]);
  });

  it('remembers in the cache a commande it read from the store, and every event of the batch, handled or not', async () => {
    const [created, reserved] = await commandeWith(creee, reserve);
    if (!created || !reserved) throw new Error('nothing appended');
    const readFromStore = new CommandeCache();
    const followedFromTheBatch = new CommandeCache();

    await handleOnce(pool, recordingActor(['StockReserve']).actor, reserved, readFromStore);
    await handleBatchOnce(
      pool,
      recordingActor(['CommandeCreee']).actor,
      [created, reserved],
      followedFromTheBatch,
    );

    expect(readFromStore.atLeast(created.aggregate_id, 2)?.version).toBe(2);
    expect(followedFromTheBatch.atLeast(created.aggregate_id, 2)?.version).toBe(2);
  });

  it('forgets what the cache knew of the commandes of a batch that failed, so that the retry reads the store', async () => {
    const [created] = await commandeWith(creee);
    if (!created) throw new Error('nothing appended');
    const { actor } = recordingActor(['CommandeCreee'], { fail: 'refuse' });
    const cache = new CommandeCache();

    await expect(handleBatchOnce(pool, actor, [created], cache)).rejects.toBeInstanceOf(
      TransitionRefusedError,
    );

    expect(cache.atLeast(created.aggregate_id, 1)).toBeUndefined();
    await expect(handleBatchOnce(pool, actor, [created])).rejects.toBeInstanceOf(TransitionRefusedError);
    expect(await inboxOf(actor)).toEqual([]);
  });

  it('lets an error other than a refusal through, records nothing, and forgets what the cache knew of the commande', async () => {
    const [created] = await commandeWith(creee);
    if (!created) throw new Error('nothing appended');
    const { actor } = recordingActor(['CommandeCreee'], { fail: 'crash' });
    const cache = new CommandeCache();

    await expect(handleOnce(pool, actor, created, cache)).rejects.toThrow('the actor failed');

    expect(cache.atLeast(created.aggregate_id, 1)).toBeUndefined();
    expect(await inboxOf(actor)).toEqual([]);
  });

  it('ignores an event of a type the actor does not handle, and records nothing', async () => {
    const [created] = await commandeWith(creee);
    if (!created) throw new Error('nothing appended');
    const { actor, seen } = recordingActor(['StockReserve']);

    expect(await handleOnce(pool, actor, created)).toBe('ignored');

    expect(seen).toEqual([]);
    expect(await inboxOf(actor)).toEqual([]);
  });

  it('hands the actor the commande the cache knows far enough, instead of reading it again', async () => {
    const [created, reserved] = await commandeWith(creee, reserve);
    if (!created || !reserved) throw new Error('nothing appended');
    const cache = new CommandeCache();
    cache.observe(created);
    cache.observe(reserved);
    const known = cache.atLeast(created.aggregate_id, 2);
    const { actor, commandesSeen } = recordingActor(['StockReserve']);

    await handleOnce(pool, actor, reserved, cache);

    expect(known).toBeDefined();
    expect(commandesSeen[0]).toBe(known);
  });

  it('lets go of a commande once the event that ended it is handled, one event or a batch', async () => {
    const one = await commandeWith(creee, indisponible);
    const batch = await commandeWith(creee, indisponible);
    const { actor } = recordingActor(['StockIndisponible']);
    const cache = new CommandeCache();

    await handleOnce(pool, actor, one[1] as SagaEnvelope, cache);
    await handleBatchOnce(pool, actor, batch, cache);

    expect(cache.size).toBe(0);
  });

  it('skips an event handed in after its inbox row was pruned: every group had handled it', async () => {
    const [created] = await commandeWith(creee);
    if (!created) throw new Error('nothing appended');
    const { actor, seen } = recordingActor(['CommandeCreee']);
    expect(await handleOnce(pool, actor, created)).toBe('applied');
    // every group handled it, and the inbox was pruned past it
    expect(await pruneInbox(pool, created.position, [actor.name])).toEqual({
      position: created.position,
      rows: 1,
    });

    // a consumer that held it all along (say, through a network partition) hands it in
    expect(await handleOnce(pool, actor, created)).toBe('duplicate');
    await handleBatchOnce(pool, actor, [created]);

    expect(seen).toHaveLength(1);
  });
});
