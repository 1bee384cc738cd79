import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventTypesOf } from '../../../test/support/commande-events.js';
import { expiree, ServiceFixture } from '../../../test/support/service-fixture.js';
import { createTestDatabase, type TestDatabase } from '../../../test/support/test-database.js';
import type { SagaEventType } from '../../domain/events.js';
import { createPool, type Pool } from '../../persistence/database.js';
import { migrate } from '../../persistence/migrate.js';
import { type HandleOutcome, handleOnce } from '../service-actor.js';
import { clientActor } from './client-actor.js';

describe('the client service deciding on a payment', () => {
  let database: TestDatabase;
  let pool: Pool;
  let fixture: ServiceFixture;
  let magasin: number;
  let produit: number;

  beforeAll(async () => {
    database = await createTestDatabase('client_actor');
    pool = createPool(database.url);
    await migrate(pool);
    fixture = new ServiceFixture(pool);
    magasin = await fixture.magasin();
    produit = await fixture.produit(2.5);
  });
  afterAll(async () => {
    await pool?.end();
    await database?.drop();
  });

  async function deliver(commandeId: string, eventType: SagaEventType): Promise<HandleOutcome> {
    return handleOnce(pool, clientActor, await fixture.delivered(commandeId, eventType));
  }

  /** A commande of 5.00 whose stock is reserved, waiting for its payment. */
  async function reservedOrder(clientId: number): Promise<string> {
    const commandeId = await fixture.order(clientId, magasin, [[produit, 2, 2.5]]);
    await fixture.reserveStock(commandeId);
    return commandeId;
  }

  /** A commande of 5.00 that the client service paid. */
  async function paidOrder(clientId: number): Promise<string> {
    const commandeId = await reservedOrder(clientId);
    expect(await deliver(commandeId, 'StockReserve')).toBe('applied');
    return commandeId;
  }

  it('debits the exact total when the balance covers it, and accepts the payment', async () => {
    const clientId = await fixture.client(100);
    const commandeId = await reservedOrder(clientId);
    const reserved = await fixture.delivered(commandeId, 'StockReserve');

    expect(await deliver(commandeId, 'StockReserve')).toBe('applied');

    const accepted = await fixture.delivered(commandeId, 'PaiementAccepte');
    expect(accepted).toMatchObject({ source: 'client-service', causation_id: reserved.event_id });
    expect(accepted.data).toEqual({ client_id: clientId, magasin_id: magasin, total: 5 });
    expect(await fixture.soldeCentsOf(clientId)).toBe(9_500);
    expect(await fixture.paiementsOf(commandeId)).toEqual([
      { client_id: clientId, montant_cents: 500, statut: 'accepte' },
    ]);
  });

  it('refuses a payment the balance does not cover, with solde_insuffisant and the balance it saw', async () => {
    const clientId = await fixture.client(3);
    const commandeId = await reservedOrder(clientId);

    expect(await deliver(commandeId, 'StockReserve')).toBe('applied');

    expect((await fixture.delivered(commandeId, 'PaiementRefuse')).data).toEqual({
      client_id: clientId,
      magasin_id: magasin,
      total: 5,
      solde: 3,
      raison: 'solde_insuffisant',
    });
    expect(await fixture.soldeCentsOf(clientId)).toBe(300);
    expect(await fixture.paiementsOf(commandeId)).toEqual([
      { client_id: clientId, montant_cents: 500, statut: 'refuse' },
    ]);
  });

  it('refuses the payment of a client that does not exist, with client_inconnu', async () => {
    const commandeId = await reservedOrder(999_999);

    expect(await deliver(commandeId, 'StockReserve')).toBe('applied');

    expect((await fixture.delivered(commandeId, 'PaiementRefuse')).data).toMatchObject({
      client_id: 999_999,
      solde: 0,
      raison: 'client_inconnu',
    });
  });

  it('refunds a paid commande that expired: balance credited, payment marked refunded, PaiementRembourse', async () => {
    const clientId = await fixture.client(100);
    const commandeId = await paidOrder(clientId);
    await fixture.append(commandeId, expiree('paiement_accepte', 'delai_du_test'));
    const expiry = await fixture.delivered(commandeId, 'CommandeExpiree');

    expect(await deliver(commandeId, 'CommandeExpiree')).toBe('applied');

    const refund = await fixture.delivered(commandeId, 'PaiementRembourse');
    expect(refund).toMatchObject({ source: 'client-service', causation_id: expiry.event_id });
    expect(refund.data).toEqual({
      client_id: clientId,
      magasin_id: magasin,
      total: 5,
      raison: 'delai_du_test',
    });
    expect(await fixture.soldeCentsOf(clientId)).toBe(10_000);
    expect(await fixture.paiementsOf(commandeId)).toEqual([
      { client_id: clientId, montant_cents: 500, statut: 'rembourse' },
    ]);
  });

  it('has nothing to refund when a commande expires before it was paid', async () => {
    const clientId = await fixture.client(100);
    const commandeId = await reservedOrder(clientId);
    await fixture.append(commandeId, expiree('stock_reserve'));

    expect(await deliver(commandeId, 'CommandeExpiree')).toBe('applied');

    expect(await eventTypesOf(pool, commandeId)).toEqual([
      'CommandeCreee',
      'StockReserve',
      'CommandeExpiree',
    ]);
    expect(await fixture.soldeCentsOf(clientId)).toBe(10_000);
    expect(await fixture.paiementsOf(commandeId)).toEqual([]);
  });

  it('refunds nothing and says so when a commande awaiting its refund has no accepted payment', async () => {
    // PaiementAccepte in the stream without the payment row the client service writes with it.
    const clientId = await fixture.client(100);
    const commandeId = await reservedOrder(clientId);
    await fixture.acceptPayment(commandeId);
    await fixture.append(commandeId, expiree('paiement_accepte'));

    await expect(deliver(commandeId, 'CommandeExpiree')).rejects.toThrow(
      `commande ${commandeId} awaits a refund but has no accepted payment`,
    );

    expect(await eventTypesOf(pool, commandeId)).toEqual([
      'CommandeCreee',
      'StockReserve',
      'PaiementAccepte',
      'CommandeExpiree',
    ]);
    expect(await fixture.soldeCentsOf(clientId)).toBe(10_000);
  });
});
