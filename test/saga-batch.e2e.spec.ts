import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeadlineScheduler } from '../src/actors/commande/deadline-scheduler.js';
import { advanceSaga, advanceSagas, SagaRowCache } from '../src/actors/commande/saga-actor.js';
import type { SagaEnvelope } from '../src/domain/events.js';
import { createLogger } from '../src/observability/logger.js';
import { eventOf } from './support/commande-events.js';
import { Shop } from './support/shop.js';
import { TestSystem } from './support/test-system.js';

const DEADLINE_MS = 60_000;

/**
 * The saga actor does not read the row of a commande it sees created, but must not be fooled by a
 * redelivery; it and the deadline scheduler count what they did only once their write won.
 */
describe('the saga actor and the deadline scheduler, when another writer got there first', () => {
  let system: TestSystem;
  let shop: Shop;

  beforeAll(async () => {
    // No actor runs in the background: the test hands the notifications to the saga actor itself.
    // No bus carries anything here, so it runs once, on the PostgreSQL bus (which every run has).
    system = await TestSystem.start('saga-batch', { bus: 'postgres', actors: [] });
    shop = new Shop(system.api);
  });
  afterAll(async () => {
    await system?.stop();
  });

  it('starts new sagas, and hands back a redelivered creation whose saga already moved on', async () => {
    // given a saga that has already taken its first event, and a commande not seen yet
    const seen = await sagaMovedOn(await sagaStarted());
    const fresh = await orderedCommande();

    // when both creations come in one batch, the first one delivered again
    const step = await advanceSagas(system.choreo.pool, [seen, fresh], DEADLINE_MS, new SagaRowCache());

    // then the new saga starts, the redelivered creation comes back to be applied again, from the row
    expect(step.transitions.map((t) => [t.commandeId, t.statut])).toEqual([
      [fresh.aggregate_id, 'en_attente_stock'],
    ]);
    expect(step.leftOver).toEqual([seen]);
    const again = await advanceSaga(system.choreo.pool, seen, DEADLINE_MS);
    expect(again.transitions).toEqual([]);
    expect(await sagaRow(seen.aggregate_id)).toEqual({ statut: 'stock_reserve', version: 2 });
    expect(await sagaRow(fresh.aggregate_id)).toEqual({ statut: 'en_attente_stock', version: 1 });
  });

  it('counts the refusals of a commande whose write lost a race only when it is folded again', async () => {
    // given a commande whose saga already moved on, and a redelivery of its creation followed by an event
    // the order machine refuses right after a creation
    const seen = await sagaMovedOn(await sagaStarted());
    const refusedAfterCreation: SagaEnvelope = {
      ...seen,
      event_id: randomUUID(),
      version: 2,
      event_type: 'VenteConfirmee',
      source: 'ventes-service',
      data: { vente_id: 1, client_id: 1, magasin_id: 1, total: 4 },
    };

    // when both come in one batch: folded from no row, the creation is taken and the sale refused, but
    // the insert finds the row
    const step = await advanceSagas(
      system.choreo.pool,
      [seen, refusedAfterCreation],
      DEADLINE_MS,
      new SagaRowCache(),
    );

    // then nothing is counted for it: the notifications come back whole
    expect(step.leftOver).toEqual([seen, refusedAfterCreation]);
    expect(step.refused).toEqual([]);
    expect(step.transitions).toEqual([]);
  });

  it('moves the count of commandes in each state with the rows it writes, and not for a write that lost', async () => {
    // given the counts as they are
    const before = await countsByState();

    // when the saga actor starts a saga, and then is handed its creation again after another writer
    // moved its row on (the insert finds the row: nothing is written)
    const creation = await sagaStarted();
    const afterStart = await countsByState();
    await sagaMovedOn(creation);
    const { leftOver } = await advanceSagas(system.choreo.pool, [creation], DEADLINE_MS, new SagaRowCache());

    // then the start counted one commande waiting for stock, and the write that lost counted nothing
    expect(leftOver).toEqual([creation]);
    expect(afterStart.en_attente_stock).toBe((before.en_attente_stock ?? 0) + 1);
    expect(await countsByState()).toEqual(afterStart);
  });

  it('does not count an expiry that a service beat to the commande: its append conflicts at COMMIT', async () => {
    // given a commande whose deadline has passed, and a service's StockReserve appended but not committed
    const creation = await sagaStarted();
    await system.choreo.pool.query(
      "UPDATE sagas SET deadline_at = now() - interval '1 second' WHERE commande_id = $1",
      [creation.aggregate_id],
    );
    const service = new pg.Client({ connectionString: system.database.url });
    await service.connect();
    await service.query('BEGIN');
    await service.query(
      `INSERT INTO events (event_id, event_type, aggregate_id, version, source, correlation_id, data)
       VALUES ($1, 'StockReserve', $2, 2, 'stock-service', $2, '{}')`,
      [randomUUID(), creation.aggregate_id],
    );
    const expiredFrom: string[] = [];
    const scheduler = new DeadlineScheduler({
      pool: system.choreo.pool,
      logger: createLogger('silent'),
      deadlineMs: DEADLINE_MS,
      onExpired: (_commandeId, statut) => expiredFrom.push(statut),
    });

    // when the scheduler expires it (its CommandeExpiree waits on the service's version 2), and the
    // service commits
    const expiring = scheduler.expireDue();
    await waitUntilBlockedBy((await service.query('SELECT pg_backend_pid() AS pid')).rows[0].pid);
    await service.query('COMMIT');
    await service.end();

    // then the expiry lost: nothing expired, nothing counted, the commande holds the service's event
    expect(await expiring).toBe(0);
    expect(expiredFrom).toEqual([]);
    const stored = await system.choreo.pool.query(
      'SELECT event_type FROM events WHERE aggregate_id = $1 ORDER BY version',
      [creation.aggregate_id],
    );
    expect(stored.rows.map((row) => row.event_type)).toEqual(['CommandeCreee', 'StockReserve']);
  });

  /** Until a backend waits on a lock that the given one holds: here, the scheduler's append of version 2. */
  async function waitUntilBlockedBy(blockerPid: number): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const blocked = await system.choreo.pool.query(
        'SELECT 1 FROM pg_stat_activity WHERE $1::int = ANY(pg_blocking_pids(pid))',
        [blockerPid],
      );
      if (blocked.rowCount) return;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    throw new Error(`nothing waited on backend ${blockerPid} within 10 s`);
  }

  /** A commande of one unit, in stock, created and not yet seen by the saga actor: its CommandeCreee. */
  async function orderedCommande(): Promise<SagaEnvelope> {
    const magasin = await shop.magasin();
    const produit = await shop.produit(4);
    await shop.setStock(magasin, produit, 10);
    const commandeId = await shop.order(await shop.client(100), magasin, [[produit, 1]]);
    return eventOf(system.choreo.pool, commandeId, 'CommandeCreee');
  }

  /** The same, with its saga started by the saga actor. */
  async function sagaStarted(): Promise<SagaEnvelope> {
    const creation = await orderedCommande();
    await advanceSaga(system.choreo.pool, creation, DEADLINE_MS);
    return creation;
  }

  /** Moves the saga's row on to version 2 behind the actor's back, as another writer would. */
  async function sagaMovedOn(creation: SagaEnvelope): Promise<SagaEnvelope> {
    await system.choreo.pool.query(
      "UPDATE sagas SET statut = 'stock_reserve', version = 2 WHERE commande_id = $1",
      [creation.aggregate_id],
    );
    return creation;
  }

  async function countsByState(): Promise<Record<string, number>> {
    const result = await system.choreo.pool.query(
      'SELECT statut, commandes::int AS commandes FROM saga_counts',
    );
    return Object.fromEntries(result.rows.map((row) => [row.statut, row.commandes]));
  }

  async function sagaRow(commandeId: string): Promise<unknown> {
    const result = await system.choreo.pool.query(
      'SELECT statut, version FROM sagas WHERE commande_id = $1',
      [commandeId],
    );
    return result.rows[0];
  }
});
