import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { eventsOf, eventTypesOf } from '../../../test/support/commande-events.js';
import { expiree, ServiceFixture } from '../../../test/support/service-fixture.js';
import { createTestDatabase, type TestDatabase } from '../../../test/support/test-database.js';
import { createPool, type Pool, withTransaction } from '../../persistence/database.js';
import { migrate } from '../../persistence/migrate.js';
import { CommandeSession } from '../commande/commande-stream.js';
import { handleBatchOnce, handleOnce } from '../service-actor.js';
import { ventesActor } from './ventes-actor.js';

const venteRowSchema = z.object({
  id: z.number().int(),
  client_id: z.number().int(),
  magasin_id: z.number().int(),
  total_cents: z.number().int(),
});

describe('the ventes service recording a sale', () => {
  let database: TestDatabase;
  let pool: Pool;
  let fixture: ServiceFixture;
  let clientId: number;
  let magasin: number;
  let produit: number;

  beforeAll(async () => {
    database = await createTestDatabase('ventes_actor');
    pool = createPool(database.url);
    await migrate(pool);
    fixture = new ServiceFixture(pool);
    clientId = await fixture.client(100);
    magasin = await fixture.magasin();
    produit = await fixture.produit(2.5);
  });
  afterAll(async () => {
    await pool?.end();
    await database?.drop();
  });

  async function reservedOrder(): Promise<string> {
    const commandeId = await fixture.order(clientId, magasin, [[produit, 2, 2.5]]);
    await fixture.reserveStock(commandeId);
    return commandeId;
  }

  async function paidOrder(): Promise<string> {
    const commandeId = await reservedOrder();
    await fixture.acceptPayment(commandeId);
    return commandeId;
  }

  async function ventesOf(commandeId: string): Promise<z.infer<typeof venteRowSchema>[]> {
    const result = await pool.query(
      'SELECT id, client_id, magasin_id, total_cents FROM ventes WHERE commande_id = $1',
      [commandeId],
    );
    return result.rows.map((row) => venteRowSchema.parse(row));
  }

  it('records the sale of a paid commande once, and confirms it with the sale id', async () => {
    const commandeId = await paidOrder();
    const paid = await fixture.delivered(commandeId, 'PaiementAccepte');

    expect(await handleOnce(pool, ventesActor, paid)).toBe('applied');
    expect(await handleOnce(pool, ventesActor, paid)).toBe('duplicate');

    const ventes = await ventesOf(commandeId);
    expect(ventes).toEqual([
      { id: expect.any(Number), client_id: clientId, magasin_id: magasin, total_cents: 500 },
    ]);
    const confirmed = (await eventsOf(pool, commandeId)).filter(
      (event) => event.event_type === 'VenteConfirmee',
    );
    expect(confirmed).toHaveLength(1);
    expect(confirmed[0]).toMatchObject({ source: 'ventes-service', causation_id: paid.event_id });
    expect(confirmed[0]?.data).toEqual({
      vente_id: ventes[0]?.id,
      client_id: clientId,
      magasin_id: magasin,
      total: 5,
    });
  });

  it('records the sales of a batch, each confirmed with its own sale id', async () => {
    const first = await paidOrder();
    const second = await paidOrder();

    await handleBatchOnce(pool, ventesActor, [
      await fixture.delivered(first, 'PaiementAccepte'),
      await fixture.delivered(second, 'PaiementAccepte'),
    ]);

    for (const commandeId of [first, second]) {
      const [vente] = await ventesOf(commandeId);
      expect((await fixture.delivered(commandeId, 'VenteConfirmee')).data).toMatchObject({
        vente_id: vente?.id,
      });
    }
  });

  it('passes over the events of a batch that are not payments', async () => {
    // Handed to the actor directly: the host already leaves out the types an actor does not handle.
    const reserved = await reservedOrder();
    const paid = await paidOrder();
    const events = [
      await fixture.delivered(reserved, 'StockReserve'),
      await fixture.delivered(paid, 'PaiementAccepte'),
    ];

    await withTransaction(pool, async (tx) => {
      const session = new CommandeSession(tx);
      await session.preload([reserved, paid]);
      await ventesActor.handleAll?.(session, events);
      session.flush();
    });

    expect(await ventesOf(reserved)).toEqual([]);
    expect(await eventTypesOf(pool, reserved)).toEqual(['CommandeCreee', 'StockReserve']);
    expect(await ventesOf(paid)).toHaveLength(1);
    expect(await eventTypesOf(pool, paid)).toEqual([
      'CommandeCreee',
      'StockReserve',
      'PaiementAccepte',
      'VenteConfirmee',
    ]);
  });

  it('records no sale for a paid commande that expired before it was sold', async () => {
    const commandeId = await paidOrder();
    await fixture.append(commandeId, expiree('paiement_accepte'));

    expect(await handleOnce(pool, ventesActor, await fixture.delivered(commandeId, 'PaiementAccepte'))).toBe(
      'refused',
    );

    expect(await ventesOf(commandeId)).toEqual([]);
    expect(await eventTypesOf(pool, commandeId)).not.toContain('VenteConfirmee');
  });
});
