import { afterAll, beforeAll, expect, it } from 'vitest';
import { z } from 'zod';
import { pruneInbox } from '../src/persistence/history-retention.js';
import { describeOnBus } from './support/buses.js';
import { deadLettersOf } from './support/dead-letters.js';
import { eventually } from './support/eventually.js';
import { Shop } from './support/shop.js';
import { TestSystem } from './support/test-system.js';

const countRow = z.object({ count: z.coerce.number().int() });
const positionRow = z.object({ position: z.coerce.number().int() });
const GROUPS = ['stock-service', 'client-service', 'ventes-service', 'commande-saga'];

// The rule on the PostgreSQL bus (on Redis Streams, test/redis-recovery.e2e.spec.ts): each group's
// checkpoint is its low-water mark, and the inbox goes at or below the lowest.
describeOnBus('postgres', 'The inbox and the idempotency keys stop growing with history', () => {
  let system: TestSystem;
  let shop: Shop;

  beforeAll(async () => {
    system = await TestSystem.start('history_retention', {
      bus: 'postgres',
      config: { idempotencyKeyRetentionMs: 60_000 },
      choreo: { historyRetentionIntervalMs: 100 },
    });
    shop = new Shop(system.api);
  });
  afterAll(async () => {
    await system?.stop();
  });

  const one = async <T>(schema: z.ZodType<T>, sql: string, values: unknown[] = []): Promise<T> =>
    schema.parse((await system.choreo.pool.query(sql, values)).rows[0]);
  const prunedThrough = async () => (await one(positionRow, 'SELECT position FROM inbox_pruned')).position;
  const oldestCheckpoint = async () =>
    (
      await one(
        positionRow,
        `SELECT min(position) AS position FROM checkpoints
         WHERE name = ANY(ARRAY['bus:stock-service', 'bus:client-service', 'bus:ventes-service', 'bus:commande-saga'])`,
      )
    ).position;
  const inboxRowsAtOrBelow = async (position: number) =>
    (
      await one(
        countRow,
        'SELECT count(*) FROM inbox AS i JOIN events AS e ON e.event_id = i.event_id WHERE e.position <= $1',
        [position],
      )
    ).count;

  it('prunes the inbox at or below the oldest group checkpoint, and never past a group still behind', async () => {
    // given orders done: every group's checkpoint is past their events
    const magasin = await shop.magasin();
    const produit = await shop.produit(1);
    await shop.setStock(magasin, produit, 50);
    const client = await shop.client(100);
    for (let i = 0; i < 5; i++) {
      const commandeId = await shop.order(client, magasin, [[produit, 1]]);
      expect((await shop.finalCommande(commandeId)).statut).toBe('vente_confirmee');
    }
    const head = (await one(positionRow, 'SELECT max(position) AS position FROM events')).position;
    await eventually(prunedThrough, (position) => position === head, {
      description: 'the inbox to be pruned up to the head',
    });
    expect(await inboxRowsAtOrBelow(head)).toBe(0);

    // when the sales service is behind (paused) with a payment it has not applied
    expect(await system.choreo.pauseActor('ventes')).toBe(true);
    const waiting = await shop.order(client, magasin, [[produit, 1]]);
    await eventually(
      () => shop.commande(waiting),
      (commande) => commande.statut === 'paiement_accepte',
    );
    const payment = (
      await one(
        positionRow,
        "SELECT position FROM events WHERE aggregate_id = $1 AND event_type = 'PaiementAccepte'",
        [waiting],
      )
    ).position;

    // then the inbox keeps the rows of every event after its checkpoint, the stock service's among them
    await eventually(
      async () => ({ pruned: await prunedThrough(), oldest: await oldestCheckpoint() }),
      ({ pruned, oldest }) => pruned === oldest && oldest < payment,
      { description: 'the pruning to stop at the sales service checkpoint' },
    );
    const keptRows = await one(
      countRow,
      'SELECT count(*) FROM inbox AS i JOIN events AS e ON e.event_id = i.event_id WHERE e.aggregate_id = $1',
      [waiting],
    );
    expect(keptRows.count).toBeGreaterThan(0);

    // and once it is back the order completes, applied once
    system.choreo.resumeActor('ventes');
    expect((await shop.finalCommande(waiting)).statut).toBe('vente_confirmee');
    expect(await shop.solde(client)).toBe(94);
    expect((await one(countRow, 'SELECT count(*) FROM ventes')).count).toBe(6);
  });

  it('keeps the pruning below a dead letter until it is re-driven, which then applies it once', async () => {
    // given a payment the sales service dead-letters (a constraint stands for a bug in it), then fixed
    await system.choreo.pool.query('ALTER TABLE ventes ADD CONSTRAINT ventes_closed CHECK (false) NOT VALID');
    const magasin = await shop.magasin();
    const produit = await shop.produit(1);
    await shop.setStock(magasin, produit, 50);
    const client = await shop.client(100);
    const poisoned = await shop.order(client, magasin, [[produit, 1]]);
    const letter = await eventually(
      async () => (await deadLettersOf(system.api)).find((candidate) => candidate.group === 'ventes-service'),
      (found) => found !== undefined,
      { description: 'the payment to be dead-lettered by the sales service' },
    );
    await system.choreo.pool.query('ALTER TABLE ventes DROP CONSTRAINT ventes_closed');
    const payment = Number(letter?.fields.position);
    expect(payment).toBeGreaterThan(0);

    // when every group's checkpoint is past it (an order after it completes) and the inbox is pruned
    const after = await shop.order(client, magasin, [[produit, 1]]);
    expect((await shop.finalCommande(after)).statut).toBe('vente_confirmee');
    const head = (await one(positionRow, 'SELECT max(position) AS position FROM events')).position;
    await eventually(oldestCheckpoint, (position) => position >= head, {
      description: 'every group checkpoint to pass the order after the dead letter',
    });
    await pruneInbox(system.choreo.pool, await system.choreo.bus.handledThrough(), GROUPS);

    // then the pruning stayed below the dead letter
    expect(await prunedThrough()).toBeLessThan(payment);

    // and once re-driven, the payment is applied, once
    expect((await system.api.post(`/api/dead-letters/${letter?.id}/rejouer`)).status).toBe(202);
    expect((await shop.finalCommande(poisoned)).statut).toBe('vente_confirmee');
    const sales = await one(countRow, 'SELECT count(*) FROM ventes WHERE commande_id = $1', [poisoned]);
    expect(sales.count).toBe(1);
  });

  it('forgets Idempotency-Keys older than IDEMPOTENCY_KEY_RETENTION_MS, and recognises the others', async () => {
    const magasin = await shop.magasin();
    const produit = await shop.produit(1);
    await shop.setStock(magasin, produit, 50);
    const client = await shop.client(100);
    await shop.addToCart(client, produit, 1);
    const old = await shop.checkout(client, magasin, 'old-key');
    await shop.addToCart(client, produit, 1);
    const recent = await shop.checkout(client, magasin, 'recent-key');
    // the first key was used two minutes ago, past the minute it is kept here
    await system.choreo.pool.query(
      "UPDATE checkouts SET created_at = now() - interval '2 minutes' WHERE idempotency_key = 'old-key'",
    );
    await eventually(
      async () =>
        (
          await system.choreo.pool.query('SELECT idempotency_key FROM checkouts WHERE client_id = $1', [
            client,
          ])
        ).rows,
      (rows) => rows.length === 1,
      { description: 'the old key to be forgotten' },
    );
    expect(await shop.checkout(client, magasin, 'recent-key')).toBe(recent);
    await shop.addToCart(client, produit, 1);
    expect(await shop.checkout(client, magasin, 'old-key')).not.toBe(old);
  });
});
