import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { NEW_EVENTS } from '../../../test/support/new-events.js';
import { createTestDatabase, type TestDatabase } from '../../../test/support/test-database.js';
import { VersionConflictError } from '../../domain/errors.js';
import { parseSagaEnvelope, type SagaEnvelope, type SagaEventType } from '../../domain/events.js';
import { createPool, type Pool } from '../../persistence/database.js';
import { appendToStream, streamVersion } from '../../persistence/event-store.js';
import { migrate } from '../../persistence/migrate.js';
import { advanceSaga, advanceSagas, SagaRowCache } from './saga-actor.js';

const DEADLINE_MS = 90_000;

/** A fixed origin, so that notifications stamped by the test carry times a few minutes apart. */
const T0 = Date.parse('2030-05-01T08:00:00.000Z');

function minutesAfterT0(minutes: number): Date {
  return new Date(T0 + minutes * 60_000);
}

/** The notification as the bus would carry it, stamped `minutes` after T0. */
function stamped<E extends SagaEnvelope>(event: E, minutes: number): E {
  return { ...event, timestamp: minutesAfterT0(minutes).toISOString() };
}

const sagaRowSchema = z.object({
  statut: z.string(),
  raison: z.string().nullable(),
  version: z.number().int(),
  final: z.boolean(),
  started_at: z.date(),
  updated_at: z.date(),
  deadline_at: z.date().nullable(),
});
type StoredSagaRow = z.infer<typeof sagaRowSchema>;

const countRowSchema = z.object({ statut: z.string(), commandes: z.number().int() });

describe('the saga actor, following commande events into the sagas table', () => {
  let database: TestDatabase;
  let pool: Pool;

  beforeAll(async () => {
    database = await createTestDatabase('saga_actor');
    pool = createPool(database.url);
    await migrate(pool);
  });
  afterAll(async () => {
    await pool?.end();
    await database?.drop();
  });

  function newCommandeId(): string {
    return `cmd-${randomUUID()}`;
  }

  /** Appends these events to the commande's stream, after what it holds; returns them as notified. */
  async function storeEvents<const T extends readonly SagaEventType[]>(
    commandeId: string,
    types: T,
  ): Promise<{ [I in keyof T]: SagaEnvelope }> {
    const stored = await appendToStream(
      pool,
      commandeId,
      await streamVersion(pool, commandeId),
      types.map((type) => NEW_EVENTS[type]),
    );
    if (stored.length !== types.length) throw new Error(`stored ${stored.length} of ${types.length} events`);
    // One envelope per type given, in the same order: the tuple the caller destructures.
    return stored.map(parseSagaEnvelope) as { [I in keyof T]: SagaEnvelope };
  }

  async function sagaRowOf(commandeId: string): Promise<StoredSagaRow | undefined> {
    const result = await pool.query(
      `SELECT statut, raison, version, final, started_at, updated_at, deadline_at
       FROM sagas WHERE commande_id = $1`,
      [commandeId],
    );
    return result.rows.map((row) => sagaRowSchema.parse(row))[0];
  }

  async function counts(): Promise<Record<string, number>> {
    const result = await pool.query('SELECT statut, commandes::int AS commandes FROM saga_counts');
    return Object.fromEntries(
      result.rows.map((row) => countRowSchema.parse(row)).map(({ statut, commandes }) => [statut, commandes]),
    );
  }

  /** How the counts moved between two readings, the states left as they were omitted. */
  function countsMoved(
    before: Record<string, number>,
    after: Record<string, number>,
  ): Record<string, number> {
    const moved: Record<string, number> = {};
    for (const statut of new Set([...Object.keys(before), ...Object.keys(after)])) {
      const delta = (after[statut] ?? 0) - (before[statut] ?? 0);
      if (delta !== 0) moved[statut] = delta;
    }
    return moved;
  }

  /** A saga started by the actor from its creation (stamped at T0), with that creation. */
  async function startedSaga(cache: SagaRowCache): Promise<{ commandeId: string; creation: SagaEnvelope }> {
    const commandeId = newCommandeId();
    const [stored] = await storeEvents(commandeId, ['CommandeCreee']);
    const creation = stamped(stored, 0);
    const step = await advanceSagas(pool, [creation], DEADLINE_MS, cache);
    if (step.transitions.length !== 1) throw new Error(`the saga of ${commandeId} did not start`);
    return { commandeId, creation };
  }

  /** What `work` returns, and how many statements it sent to PostgreSQL (the pool still runs them). */
  async function counted<T>(work: () => Promise<T>): Promise<{ result: T; statements: number }> {
    const spy = vi.spyOn(pool, 'query');
    try {
      const result = await work();
      return { result, statements: spy.mock.calls.length };
    } finally {
      spy.mockRestore();
    }
  }

  describe('starting and moving a saga', () => {
    it('starts a saga from its creation: the row, its count, its deadline, the transition, the cached row', async () => {
      // given a commande just created
      const commandeId = newCommandeId();
      const creation = stamped((await storeEvents(commandeId, ['CommandeCreee']))[0], 0);
      const cache = new SagaRowCache();
      const before = await counts();

      // when its creation is notified
      const step = await advanceSagas(pool, [creation], DEADLINE_MS, cache);

      // then the saga waits on stock, until a deadline counted from the creation
      expect(step).toEqual({
        transitions: [
          {
            commandeId,
            eventType: 'CommandeCreee',
            statut: 'en_attente_stock',
            raison: null,
            final: false,
            startedAt: minutesAfterT0(0),
            at: minutesAfterT0(0),
          },
        ],
        refused: [],
        leftOver: [],
      });
      expect(await sagaRowOf(commandeId)).toEqual({
        statut: 'en_attente_stock',
        raison: null,
        version: 1,
        final: false,
        started_at: minutesAfterT0(0),
        updated_at: minutesAfterT0(0),
        deadline_at: new Date(T0 + DEADLINE_MS),
      });
      expect(countsMoved(before, await counts())).toEqual({ en_attente_stock: 1 });
      expect(cache.get(commandeId)).toEqual({
        statut: 'en_attente_stock',
        raison: null,
        version: 1,
        started_at: minutesAfterT0(0),
      });
    });

    it('moves the row and its count with the next events, the deadline counted from the last one', async () => {
      // given a saga waiting on stock since T0
      const cache = new SagaRowCache();
      const { commandeId } = await startedSaga(cache);
      const [reserve, accepte] = await storeEvents(commandeId, ['StockReserve', 'PaiementAccepte']);
      const before = await counts();

      // when its stock is reserved (a minute later) and its payment accepted (two minutes later), in one batch
      const step = await advanceSagas(pool, [stamped(reserve, 1), stamped(accepte, 2)], DEADLINE_MS, cache);

      // then both steps are taken, each dated by its event, all counted from the saga's start
      expect(step.transitions).toEqual([
        {
          commandeId,
          eventType: 'StockReserve',
          statut: 'stock_reserve',
          raison: null,
          final: false,
          startedAt: minutesAfterT0(0),
          at: minutesAfterT0(1),
        },
        {
          commandeId,
          eventType: 'PaiementAccepte',
          statut: 'paiement_accepte',
          raison: null,
          final: false,
          startedAt: minutesAfterT0(0),
          at: minutesAfterT0(2),
        },
      ]);
      expect(step.refused).toEqual([]);
      expect(step.leftOver).toEqual([]);
      expect(await sagaRowOf(commandeId)).toEqual({
        statut: 'paiement_accepte',
        raison: null,
        version: 3,
        final: false,
        started_at: minutesAfterT0(0),
        updated_at: minutesAfterT0(2),
        deadline_at: new Date(minutesAfterT0(2).getTime() + DEADLINE_MS),
      });
      expect(countsMoved(before, await counts())).toEqual({ en_attente_stock: -1, paiement_accepte: 1 });
      expect(cache.get(commandeId)).toEqual({
        statut: 'paiement_accepte',
        raison: null,
        version: 3,
        started_at: minutesAfterT0(0),
      });
    });

    it('ends a saga with its sale: a final row without deadline, which the cache no longer holds', async () => {
      // given a saga whose payment was accepted
      const cache = new SagaRowCache();
      const { commandeId } = await startedSaga(cache);
      const [reserve, accepte, vente] = await storeEvents(commandeId, [
        'StockReserve',
        'PaiementAccepte',
        'VenteConfirmee',
      ]);
      await advanceSagas(pool, [stamped(reserve, 1), stamped(accepte, 2)], DEADLINE_MS, cache);
      const before = await counts();

      // when the sale is confirmed
      const step = await advanceSagas(pool, [stamped(vente, 5)], DEADLINE_MS, cache);

      // then the saga is over, succeeded, and nothing of it stays in memory
      expect(step.transitions).toEqual([
        {
          commandeId,
          eventType: 'VenteConfirmee',
          statut: 'vente_confirmee',
          raison: null,
          final: true,
          startedAt: minutesAfterT0(0),
          at: minutesAfterT0(5),
        },
      ]);
      expect(await sagaRowOf(commandeId)).toEqual({
        statut: 'vente_confirmee',
        raison: null,
        version: 4,
        final: true,
        started_at: minutesAfterT0(0),
        updated_at: minutesAfterT0(5),
        deadline_at: null,
      });
      expect(countsMoved(before, await counts())).toEqual({ paiement_accepte: -1, vente_confirmee: 1 });
      expect(cache.get(commandeId)).toBeUndefined();
    });

    it('keeps the reason of a refused payment through the compensation that follows, read from the row', async () => {
      // given a saga whose payment is refused
      const { commandeId } = await startedSaga(new SagaRowCache());
      const [reserve, refuse, libere] = await storeEvents(commandeId, [
        'StockReserve',
        'PaiementRefuse',
        'StockLibere',
      ]);
      const compensating = await advanceSagas(
        pool,
        [stamped(reserve, 1), stamped(refuse, 2)],
        DEADLINE_MS,
        new SagaRowCache(),
      );
      expect(compensating.transitions.map((t) => [t.statut, t.raison, t.final])).toEqual([
        ['stock_reserve', null, false],
        ['paiement_refuse', 'solde_insuffisant', false],
      ]);
      // waiting on its stock to be given back is not a state that expires
      expect(await sagaRowOf(commandeId)).toMatchObject({
        statut: 'paiement_refuse',
        raison: 'solde_insuffisant',
        final: false,
        deadline_at: null,
      });
      const before = await counts();

      // when its stock is given back, seen by an actor that has no row of it in memory
      const cache = new SagaRowCache();
      const step = await advanceSagas(pool, [stamped(libere, 3)], DEADLINE_MS, cache);

      // then the commande is cancelled for the reason its payment was refused
      expect(step.transitions).toEqual([
        {
          commandeId,
          eventType: 'StockLibere',
          statut: 'annulee',
          raison: 'solde_insuffisant',
          final: true,
          startedAt: minutesAfterT0(0),
          at: minutesAfterT0(3),
        },
      ]);
      expect(await sagaRowOf(commandeId)).toEqual({
        statut: 'annulee',
        raison: 'solde_insuffisant',
        version: 4,
        final: true,
        started_at: minutesAfterT0(0),
        updated_at: minutesAfterT0(3),
        deadline_at: null,
      });
      expect(countsMoved(before, await counts())).toEqual({ paiement_refuse: -1, annulee: 1 });
      expect(cache.get(commandeId)).toBeUndefined();
    });

    it('advances several commandes in one batch, each from the version it reached', async () => {
      // given a commande just created and another waiting on its stock
      const cache = new SagaRowCache();
      const fresh = newCommandeId();
      const [freshCreation] = await storeEvents(fresh, ['CommandeCreee']);
      const { commandeId: waiting } = await startedSaga(cache);
      const [reserve] = await storeEvents(waiting, ['StockReserve']);
      const before = await counts();

      // when the creation of the one and the stock of the other come in one batch
      const step = await advanceSagas(
        pool,
        [stamped(reserve, 1), stamped(freshCreation, 2)],
        DEADLINE_MS,
        cache,
      );

      // then each saga takes its step
      expect(step.transitions.map((t) => [t.commandeId, t.statut])).toEqual([
        [waiting, 'stock_reserve'],
        [fresh, 'en_attente_stock'],
      ]);
      expect(step.leftOver).toEqual([]);
      expect(await sagaRowOf(waiting)).toMatchObject({ statut: 'stock_reserve', version: 2 });
      expect(await sagaRowOf(fresh)).toMatchObject({ statut: 'en_attente_stock', version: 1 });
      // one commande left the wait for stock and another entered it
      expect(countsMoved(before, await counts())).toEqual({ stock_reserve: 1 });
      expect(cache.get(waiting)?.version).toBe(2);
      expect(cache.get(fresh)?.version).toBe(1);
    });
  });

  describe('events the order machine refuses', () => {
    it('reports an event the saga state does not accept, and moves only the version of the row', async () => {
      // given a saga waiting on its stock
      const cache = new SagaRowCache();
      const { commandeId } = await startedSaga(cache);
      const [vente] = await storeEvents(commandeId, ['VenteConfirmee']);
      const before = await counts();

      // when a sale is notified before any stock or payment
      const step = await advanceSagas(pool, [stamped(vente, 1)], DEADLINE_MS, cache);

      // then it is refused: the saga still waits on its stock, past that event
      expect(step).toEqual({ transitions: [], refused: ['VenteConfirmee'], leftOver: [] });
      expect(await sagaRowOf(commandeId)).toMatchObject({
        statut: 'en_attente_stock',
        raison: null,
        version: 2,
        final: false,
      });
      expect(countsMoved(before, await counts())).toEqual({});
      expect(cache.get(commandeId)).toMatchObject({ statut: 'en_attente_stock', version: 2 });
    });

    it('refuses the events of a stream that does not start with a creation, writing no row for it', async () => {
      // given a stream whose first event is a reservation, and a commande just created
      const headless = newCommandeId();
      const [reserve] = await storeEvents(headless, ['StockReserve']);
      const created = newCommandeId();
      const [creation] = await storeEvents(created, ['CommandeCreee']);
      const cache = new SagaRowCache();
      const before = await counts();

      // when both come in one batch
      const step = await advanceSagas(pool, [reserve, creation], DEADLINE_MS, cache);

      // then the reservation is refused and leaves no saga, while the other commande starts
      expect(step.refused).toEqual(['StockReserve']);
      expect(step.transitions.map((t) => [t.commandeId, t.statut])).toEqual([[created, 'en_attente_stock']]);
      expect(step.leftOver).toEqual([]);
      expect(await sagaRowOf(headless)).toBeUndefined();
      expect(cache.get(headless)).toBeUndefined();
      expect(countsMoved(before, await counts())).toEqual({ en_attente_stock: 1 });
    });
  });

  describe('notifications out of order, with holes, or repeated', () => {
    it('applies the notifications that follow the reached version without a hole, whatever their order, and no more', async () => {
      // given a saga waiting on its stock, whose stream already holds its sale
      const cache = new SagaRowCache();
      const { commandeId, creation } = await startedSaga(cache);
      const [reserve, accepte] = await storeEvents(commandeId, [
        'StockReserve',
        'PaiementAccepte',
        'VenteConfirmee',
      ]);

      // when the payment, the creation again and the stock come in one batch, in that order
      const step = await advanceSagas(
        pool,
        [stamped(accepte, 2), creation, stamped(reserve, 1)],
        DEADLINE_MS,
        cache,
      );

      // then the stock and the payment are applied in version order, and the sale waits for its notification
      expect(step.transitions.map((t) => [t.eventType, t.statut, t.at])).toEqual([
        ['StockReserve', 'stock_reserve', minutesAfterT0(1)],
        ['PaiementAccepte', 'paiement_accepte', minutesAfterT0(2)],
      ]);
      expect(step.leftOver).toEqual([]);
      expect(await sagaRowOf(commandeId)).toMatchObject({ statut: 'paiement_accepte', version: 3 });
    });

    it('applies two following notifications without reading the events after them', async () => {
      // given a saga waiting on its stock, whose stream already holds its payment and its sale
      const cache = new SagaRowCache();
      const { commandeId } = await startedSaga(cache);
      const [reserve, accepte] = await storeEvents(commandeId, [
        'StockReserve',
        'PaiementAccepte',
        'VenteConfirmee',
      ]);

      // when the stock and the payment are notified, in order
      const step = await advanceSagas(pool, [reserve, accepte], DEADLINE_MS, cache);

      // then exactly those two are applied
      expect(step.transitions.map((t) => t.eventType)).toEqual(['StockReserve', 'PaiementAccepte']);
      expect(await sagaRowOf(commandeId)).toMatchObject({ statut: 'paiement_accepte', version: 3 });
    });

    it('reads from the event store the events a notification skipped, and dates the row by the last', async () => {
      // given a saga waiting on its stock, its stock reserved and its payment accepted in the store
      const cache = new SagaRowCache();
      const { commandeId } = await startedSaga(cache);
      const [reserve, accepte] = await storeEvents(commandeId, ['StockReserve', 'PaiementAccepte']);

      // when the payment is notified before the stock
      const step = await advanceSagas(pool, [accepte], DEADLINE_MS, cache);

      // then the stock is read from the store and both are applied, in version order
      expect(step.transitions.map((t) => [t.eventType, t.at])).toEqual([
        ['StockReserve', new Date(reserve.timestamp)],
        ['PaiementAccepte', new Date(accepte.timestamp)],
      ]);
      expect(step.refused).toEqual([]);
      expect(step.leftOver).toEqual([]);
      expect(await sagaRowOf(commandeId)).toMatchObject({
        statut: 'paiement_accepte',
        version: 3,
        started_at: minutesAfterT0(0),
        updated_at: new Date(accepte.timestamp),
        deadline_at: new Date(Date.parse(accepte.timestamp) + DEADLINE_MS),
      });
    });

    it('starts a saga from the store when its creation was not notified, dated by the creation', async () => {
      // given a commande created and its stock reserved, of which the actor knows nothing
      const commandeId = newCommandeId();
      const [creation, reserve] = await storeEvents(commandeId, ['CommandeCreee', 'StockReserve']);
      const before = await counts();

      // when only the reservation is notified
      const step = await advanceSagas(pool, [reserve], DEADLINE_MS, new SagaRowCache());

      // then the saga is started from the stored creation, and moved on by the reservation
      expect(step.transitions.map((t) => [t.eventType, t.statut, t.startedAt])).toEqual([
        ['CommandeCreee', 'en_attente_stock', new Date(creation.timestamp)],
        ['StockReserve', 'stock_reserve', new Date(creation.timestamp)],
      ]);
      expect(await sagaRowOf(commandeId)).toMatchObject({
        statut: 'stock_reserve',
        version: 2,
        started_at: new Date(creation.timestamp),
        updated_at: new Date(reserve.timestamp),
      });
      expect(countsMoved(before, await counts())).toEqual({ stock_reserve: 1 });
    });

    it('applies nothing for notifications of versions the saga already reached', async () => {
      // given a saga whose stock is reserved
      const cache = new SagaRowCache();
      const { commandeId, creation } = await startedSaga(cache);
      const [reserve] = await storeEvents(commandeId, ['StockReserve']);
      await advanceSagas(pool, [stamped(reserve, 1)], DEADLINE_MS, cache);
      const rowBefore = await sagaRowOf(commandeId);
      const before = await counts();

      // when its creation and its reservation are delivered again, to an actor with and one without its row
      const again = await advanceSagas(pool, [reserve, creation], DEADLINE_MS, cache);
      const elsewhere = await advanceSagas(pool, [reserve], DEADLINE_MS, new SagaRowCache(), {
        presumeNew: false,
      });

      // then nothing moves
      expect(again).toEqual({ transitions: [], refused: [], leftOver: [] });
      expect(elsewhere).toEqual({ transitions: [], refused: [], leftOver: [] });
      expect(await sagaRowOf(commandeId)).toEqual(rowBefore);
      expect(countsMoved(before, await counts())).toEqual({});
    });
  });

  describe('reading the saga rows, or not', () => {
    it('applies the next event of a saga it wrote last in one statement, and a repeated one in none', async () => {
      // given a saga this actor started, and its stock reserved
      const cache = new SagaRowCache();
      const { commandeId, creation } = await startedSaga(cache);
      const [reserve] = await storeEvents(commandeId, ['StockReserve']);

      // when the reservation is notified, then the creation and the reservation again
      const forNext = await counted(() => advanceSagas(pool, [reserve], DEADLINE_MS, cache));
      const forRepeated = await counted(() => advanceSagas(pool, [creation, reserve], DEADLINE_MS, cache));

      // then the row is written without being read first, and nothing is read or written for the repeat
      expect(forNext.statements).toBe(1);
      expect(forRepeated.statements).toBe(0);
      expect(forRepeated.result).toEqual({ transitions: [], refused: [], leftOver: [] });
      expect(await sagaRowOf(commandeId)).toMatchObject({ statut: 'stock_reserve', version: 2 });
    });

    it('starts a saga from its creation and its next event in one batch, without reading its row', async () => {
      // given a commande created and its stock reserved, of which the actor knows nothing
      const commandeId = newCommandeId();
      const [creation, reserve] = await storeEvents(commandeId, ['CommandeCreee', 'StockReserve']);

      // when both are notified together
      const { result: step, statements } = await counted(() =>
        advanceSagas(pool, [creation, reserve], DEADLINE_MS, new SagaRowCache()),
      );

      // then the saga is inserted at once, as a new one
      expect(statements).toBe(1);
      expect(step.transitions.map((t) => t.statut)).toEqual(['en_attente_stock', 'stock_reserve']);
      expect(await sagaRowOf(commandeId)).toMatchObject({ statut: 'stock_reserve', version: 2 });
    });

    it('reads the row of a saga another process wrote before applying its next event', async () => {
      // given a saga started by another actor
      const { commandeId } = await startedSaga(new SagaRowCache());
      const [reserve] = await storeEvents(commandeId, ['StockReserve']);

      // when this actor is notified of its reservation
      const cache = new SagaRowCache();
      const { statements } = await counted(() => advanceSagas(pool, [reserve], DEADLINE_MS, cache));

      // then it read the row, then wrote it
      expect(statements).toBe(2);
      expect(await sagaRowOf(commandeId)).toMatchObject({ statut: 'stock_reserve', version: 2 });
      expect(cache.get(commandeId)?.version).toBe(2);
    });

    it('hands back the notifications of a saga another writer moved first, counting nothing and forgetting its row', async () => {
      // given a saga this actor started (its row in memory), moved on by another actor since, and a commande
      // just created
      const cache = new SagaRowCache();
      const { commandeId } = await startedSaga(cache);
      const [reserve] = await storeEvents(commandeId, ['StockReserve']);
      await advanceSagas(pool, [stamped(reserve, 1)], DEADLINE_MS, new SagaRowCache());
      const rowMovedOn = await sagaRowOf(commandeId);
      const fresh = newCommandeId();
      const [freshCreation] = await storeEvents(fresh, ['CommandeCreee']);
      const before = await counts();

      // when this actor, whose row is behind, is handed the reservation with the other creation
      const step = await advanceSagas(pool, [stamped(reserve, 4), freshCreation], DEADLINE_MS, cache);

      // then its compare-and-set fails: the reservation comes back, its row is left as the other actor wrote
      // it, and only the other commande is counted
      expect(step.leftOver).toEqual([stamped(reserve, 4)]);
      expect(step.transitions.map((t) => [t.commandeId, t.statut])).toEqual([[fresh, 'en_attente_stock']]);
      expect(step.refused).toEqual([]);
      expect(await sagaRowOf(commandeId)).toEqual(rowMovedOn);
      expect(countsMoved(before, await counts())).toEqual({ en_attente_stock: 1 });
      expect(cache.get(commandeId)).toBeUndefined();
      expect(cache.get(fresh)?.version).toBe(1);

      // and, applied again, the reservation is found already done
      expect(await advanceSagas(pool, step.leftOver, DEADLINE_MS, cache)).toEqual({
        transitions: [],
        refused: [],
        leftOver: [],
      });
    });

    it('hands back a redelivered creation whose saga exists, unless told the saga may exist', async () => {
      // given a saga already started
      const { commandeId, creation } = await startedSaga(new SagaRowCache());
      const rowBefore = await sagaRowOf(commandeId);
      const before = await counts();

      // when its creation is delivered again to an actor that has no row of it
      const presumedNew = await advanceSagas(pool, [creation], DEADLINE_MS, new SagaRowCache());
      const readFirst = await advanceSagas(pool, [creation], DEADLINE_MS, new SagaRowCache(), {
        presumeNew: false,
      });

      // then the insert finds the row and hands the creation back; read first, there is nothing to do
      expect(presumedNew).toEqual({ transitions: [], refused: [], leftOver: [creation] });
      expect(readFirst).toEqual({ transitions: [], refused: [], leftOver: [] });
      expect(await sagaRowOf(commandeId)).toEqual(rowBefore);
      expect(countsMoved(before, await counts())).toEqual({});
    });
  });

  describe('one notification at a time', () => {
    it('applies one notification and returns its transition', async () => {
      // given a commande just created
      const commandeId = newCommandeId();
      const [creation] = await storeEvents(commandeId, ['CommandeCreee']);

      // when its creation is handed alone
      const step = await advanceSaga(pool, stamped(creation, 0), DEADLINE_MS);

      // then its saga starts
      expect(step).toEqual({
        transitions: [
          {
            commandeId,
            eventType: 'CommandeCreee',
            statut: 'en_attente_stock',
            raison: null,
            final: false,
            startedAt: minutesAfterT0(0),
            at: minutesAfterT0(0),
          },
        ],
        refused: [],
      });
      expect(await sagaRowOf(commandeId)).toMatchObject({ statut: 'en_attente_stock', version: 1 });
    });

    it('takes a redelivered creation as already applied, without error and without counting it', async () => {
      // given a saga already started
      const { commandeId, creation } = await startedSaga(new SagaRowCache());
      const before = await counts();

      // when its creation is handed alone again
      const step = await advanceSaga(pool, creation, DEADLINE_MS);

      // then nothing happens
      expect(step).toEqual({ transitions: [], refused: [] });
      expect(await sagaRowOf(commandeId)).toMatchObject({ statut: 'en_attente_stock', version: 1 });
      expect(countsMoved(before, await counts())).toEqual({});
    });

    it('throws a version conflict at the version before the notification when another writer moved the saga first', async () => {
      // given a saga this actor started, moved on by another actor since
      const cache = new SagaRowCache();
      const { commandeId } = await startedSaga(cache);
      const [reserve] = await storeEvents(commandeId, ['StockReserve']);
      await advanceSaga(pool, reserve, DEADLINE_MS);
      const before = await counts();

      // when this actor, whose row is behind, is handed the reservation alone
      const advancing = advanceSaga(pool, reserve, DEADLINE_MS, cache);

      // then the lost race is thrown for the consumer to retry, and nothing is counted
      await expect(advancing).rejects.toThrow(VersionConflictError);
      await expect(advancing).rejects.toMatchObject({ aggregateId: commandeId, expectedVersion: 1 });
      expect(countsMoved(before, await counts())).toEqual({});
      expect(cache.get(commandeId)).toBeUndefined();
    });
  });
});
