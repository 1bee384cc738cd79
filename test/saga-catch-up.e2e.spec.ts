import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { clientActor } from '../src/actors/client/client-actor.js';
import {
  DEADLINE_SOURCE,
  DeadlineScheduler,
  EXPIRY_REASON,
} from '../src/actors/commande/deadline-scheduler.js';
import { advanceSaga, advanceSagas, SagaRowCache } from '../src/actors/commande/saga-actor.js';
import { handleOnce } from '../src/actors/service-actor.js';
import { stockActor } from '../src/actors/stock/stock-actor.js';
import type { SagaEnvelope } from '../src/domain/events.js';
import { createLogger } from '../src/observability/logger.js';
import { eventOf, eventsOf } from './support/commande-events.js';
import { Shop } from './support/shop.js';
import { TestSystem } from './support/test-system.js';

const DEADLINE_MS = 60_000;

const sagaRowSchema = z.object({
  statut: z.string(),
  raison: z.string().nullable(),
  version: z.number().int(),
  deadline_at: z.date().nullable(),
});

/**
 * The saga actor's row of a commande: how it catches up on events it was not told about, the reason and
 * the deadline it keeps, and the expiry the deadline scheduler appends once that deadline has passed.
 */
describe('the saga of a commande, its row and its deadline', () => {
  let system: TestSystem;
  let shop: Shop;

  beforeAll(async () => {
    // No actor runs in the background: the test hands the events to the actors and the scheduler itself.
    // No bus carries anything here, so it runs once, on the PostgreSQL bus (which every run has).
    system = await TestSystem.start('saga-catch-up', { bus: 'postgres', actors: [] });
    shop = new Shop(system.api);
  });
  afterAll(async () => {
    await system?.stop();
  });

  it('reads from the event store the events missing before a notification, and applies them in order', async () => {
    // given a saga started at version 1, then the stock reserved (version 2) and the payment accepted
    // (version 3), of which the saga actor is told only the payment
    const creation = await sagaStarted(10);
    const commandeId = creation.aggregate_id;
    expect(await handleOnce(system.choreo.pool, stockActor, creation)).toBe('applied');
    const reserve = await eventOf(system.choreo.pool, commandeId, 'StockReserve');
    expect(await handleOnce(system.choreo.pool, clientActor, reserve)).toBe('applied');
    const paiement = await eventOf(system.choreo.pool, commandeId, 'PaiementAccepte');
    expect(paiement.version).toBe(3);

    // when the saga actor gets the version 3 with the version 2 missing
    const step = await advanceSagas(system.choreo.pool, [paiement], DEADLINE_MS, new SagaRowCache());

    // then it read the version 2 from the store and took both steps, in order
    expect(step.leftOver).toEqual([]);
    expect(step.refused).toEqual([]);
    expect(step.transitions.map((t) => [t.eventType, t.statut])).toEqual([
      ['StockReserve', 'stock_reserve'],
      ['PaiementAccepte', 'paiement_accepte'],
    ]);
    expect(await sagaRow(commandeId)).toMatchObject({ statut: 'paiement_accepte', version: 3 });
  });

  it('keeps the reason of a commande and its deadline, counted from its last progress, in its row', async () => {
    // given a commande of a product out of stock, whose saga has started
    const creation = await sagaStarted(0);
    const commandeId = creation.aggregate_id;

    // then, waiting for stock, its row has no reason and a deadline counted from its creation
    expect(await sagaRow(commandeId)).toEqual({
      statut: 'en_attente_stock',
      raison: null,
      version: 1,
      deadline_at: new Date(new Date(creation.timestamp).getTime() + DEADLINE_MS),
    });

    // when the stock service finds no stock, and the saga actor sees it
    expect(await handleOnce(system.choreo.pool, stockActor, creation)).toBe('applied');
    const indisponible = await eventOf(system.choreo.pool, commandeId, 'StockIndisponible');
    await advanceSaga(system.choreo.pool, indisponible, DEADLINE_MS);

    // then its row holds why, and no deadline any more: the commande is over
    expect(await sagaRow(commandeId)).toEqual({
      statut: 'stock_indisponible',
      raison: 'stock_insuffisant',
      version: 2,
      deadline_at: null,
    });
  });

  it('expires a commande past its deadline: CommandeExpiree caused by its last event, counted and said', async () => {
    // given a saga waiting for stock whose deadline has passed
    const creation = await sagaStarted(10);
    const commandeId = creation.aggregate_id;
    await system.choreo.pool.query(
      "UPDATE sagas SET deadline_at = now() - interval '1 second' WHERE commande_id = $1",
      [commandeId],
    );
    const expiredFrom: [string, string][] = [];
    const scheduler = new DeadlineScheduler({
      pool: system.choreo.pool,
      logger: createLogger('silent'),
      deadlineMs: DEADLINE_MS,
      onExpired: (expired, statut) => expiredFrom.push([expired, statut]),
    });

    // when the deadline scheduler looks for due deadlines
    const expired = await scheduler.expireDue();

    // then it expired that commande, said so, and appended its expiry after the creation
    expect(expired).toBe(1);
    expect(expiredFrom).toEqual([[commandeId, 'en_attente_stock']]);
    const [, expiry, ...rest] = await eventsOf(system.choreo.pool, commandeId);
    expect(rest).toEqual([]);
    expect(expiry).toMatchObject({
      event_type: 'CommandeExpiree',
      version: 2,
      source: DEADLINE_SOURCE,
      causation_id: creation.event_id,
      data: { raison: EXPIRY_REASON, etat: 'en_attente_stock', delai_ms: DEADLINE_MS },
    });
    // and the deadline is spent: a second look expires nothing
    expect((await sagaRow(commandeId))?.deadline_at).toBeNull();
    expect(await scheduler.expireDue()).toBe(0);
  });

  /** A commande of one unit of a product with this much in stock, its saga started: its CommandeCreee. */
  async function sagaStarted(stock: number): Promise<SagaEnvelope> {
    const magasin = await shop.magasin();
    const produit = await shop.produit(4);
    await shop.setStock(magasin, produit, stock);
    const commandeId = await shop.order(await shop.client(100), magasin, [[produit, 1]]);
    const creation = await eventOf(system.choreo.pool, commandeId, 'CommandeCreee');
    await advanceSaga(system.choreo.pool, creation, DEADLINE_MS);
    return creation;
  }

  async function sagaRow(commandeId: string): Promise<z.infer<typeof sagaRowSchema> | undefined> {
    const result = await system.choreo.pool.query(
      'SELECT statut, raison, version, deadline_at FROM sagas WHERE commande_id = $1',
      [commandeId],
    );
    return result.rows[0] === undefined ? undefined : sagaRowSchema.parse(result.rows[0]);
  }
});
