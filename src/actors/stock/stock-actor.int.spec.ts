import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { eventTypesOf } from '../../../test/support/commande-events.js';
import { expiree, ServiceFixture } from '../../../test/support/service-fixture.js';
import { createTestDatabase, type TestDatabase } from '../../../test/support/test-database.js';
import type { NewEvent, SagaEventType } from '../../domain/events.js';
import { createPool, type Pool } from '../../persistence/database.js';
import { migrate } from '../../persistence/migrate.js';
import { type HandleOutcome, handleOnce } from '../service-actor.js';
import { stockActor } from './stock-actor.js';

const reservationRowSchema = z.object({ produit_id: z.number().int(), statut: z.string() });

describe('the stock service deciding on an order', () => {
  let database: TestDatabase;
  let pool: Pool;
  let fixture: ServiceFixture;
  let clientId: number;

  beforeAll(async () => {
    database = await createTestDatabase('stock_actor');
    pool = createPool(database.url);
    await migrate(pool);
    fixture = new ServiceFixture(pool);
    clientId = await fixture.client(1_000);
  });
  afterAll(async () => {
    await pool?.end();
    await database?.drop();
  });

  /** Hands the commande's event of this type to the stock service, as its bus would. */
  async function deliver(commandeId: string, eventType: SagaEventType): Promise<HandleOutcome> {
    return handleOnce(pool, stockActor, await fixture.delivered(commandeId, eventType));
  }

  /** Three products, created in this order so that their ids rise, with this much stock of each. */
  async function storeWith(quantites: [number, number, number]) {
    const magasin = await fixture.magasin();
    const produits: number[] = [];
    for (const quantite of quantites) {
      const produit = await fixture.produit(1);
      await fixture.setStock(magasin, produit, quantite);
      produits.push(produit);
    }
    const [low = 0, mid = 0, high = 0] = produits;
    return { magasin, low, mid, high };
  }

  async function reservationsOf(commandeId: string): Promise<{ produit_id: number; statut: string }[]> {
    const result = await pool.query(
      'SELECT produit_id, statut FROM stock_reservations WHERE commande_id = $1 ORDER BY produit_id',
      [commandeId],
    );
    return result.rows.map((row) => reservationRowSchema.parse(row));
  }

  /** A commande whose lines the stock service reserved: 2 of `low`, 1 of `high`. */
  async function reservedOrder() {
    const store = await storeWith([5, 5, 5]);
    const commandeId = await fixture.order(clientId, store.magasin, [
      [store.high, 1, 1],
      [store.low, 2, 1],
    ]);
    expect(await deliver(commandeId, 'CommandeCreee')).toBe('applied');
    return { ...store, commandeId };
  }

  function paiementRefuse(magasin: number): NewEvent {
    return {
      event_type: 'PaiementRefuse',
      source: 'client-service',
      causation_id: null,
      data: { client_id: clientId, magasin_id: magasin, total: 3, solde: 0, raison: 'solde_insuffisant' },
    };
  }

  function paiementRembourse(magasin: number): NewEvent {
    return {
      event_type: 'PaiementRembourse',
      source: 'client-service',
      causation_id: null,
      data: { client_id: clientId, magasin_id: magasin, total: 3, raison: 'delai_du_test' },
    };
  }

  function stockLibere(magasin: number): NewEvent {
    return {
      event_type: 'StockLibere',
      source: 'stock-service',
      causation_id: null,
      data: { magasin_id: magasin, produits: [], raison: 'paiement_refuse' },
    };
  }

  it('reserves every line when all are in stock, down to the last unit, the lines in product id order', async () => {
    const { magasin, low, mid, high } = await storeWith([3, 5, 1]);
    const commandeId = await fixture.order(clientId, magasin, [
      [high, 1, 1],
      [mid, 2, 1],
      [low, 3, 1],
    ]);
    const created = await fixture.delivered(commandeId, 'CommandeCreee');

    expect(await deliver(commandeId, 'CommandeCreee')).toBe('applied');

    const reserved = await fixture.delivered(commandeId, 'StockReserve');
    expect(reserved).toMatchObject({ source: 'stock-service', causation_id: created.event_id });
    expect(reserved.data).toEqual({
      client_id: clientId,
      magasin_id: magasin,
      produits: [
        { produit_id: low, quantite: 3 },
        { produit_id: mid, quantite: 2 },
        { produit_id: high, quantite: 1 },
      ],
      total: 6,
    });
    expect(await fixture.stockOf(magasin, low)).toMatchObject({ quantite: 0, reservee: 3 });
    expect(await fixture.stockOf(magasin, mid)).toMatchObject({ quantite: 3, reservee: 2 });
    expect(await fixture.stockOf(magasin, high)).toMatchObject({ quantite: 0, reservee: 1 });
  });

  it('refuses the whole order when a line is short, naming each missing product in id order', async () => {
    // low is short, mid has no stock row in this store at all, high is in stock
    const magasin = await fixture.magasin();
    const low = await fixture.produit(1);
    const mid = await fixture.produit(1);
    const high = await fixture.produit(1);
    await fixture.setStock(magasin, low, 1);
    await fixture.setStock(magasin, high, 5);
    const commandeId = await fixture.order(clientId, magasin, [
      [high, 1, 1],
      [mid, 2, 1],
      [low, 3, 1],
    ]);

    expect(await deliver(commandeId, 'CommandeCreee')).toBe('applied');

    const refused = await fixture.delivered(commandeId, 'StockIndisponible');
    expect(refused.data).toEqual({
      client_id: clientId,
      magasin_id: magasin,
      raison: 'stock_insuffisant',
      manquants: [
        { produit_id: low, demande: 3, disponible: 1 },
        { produit_id: mid, demande: 2, disponible: 0 },
      ],
    });
    expect(await fixture.stockOf(magasin, high)).toMatchObject({ quantite: 5, reservee: 0 });
    expect(await reservationsOf(commandeId)).toEqual([]);
  });

  it('gives the stock back when the payment is refused, with the reason paiement_refuse', async () => {
    const { magasin, low, high, commandeId } = await reservedOrder();
    await fixture.append(commandeId, paiementRefuse(magasin));
    const refusal = await fixture.delivered(commandeId, 'PaiementRefuse');

    expect(await deliver(commandeId, 'PaiementRefuse')).toBe('applied');

    const libere = await fixture.delivered(commandeId, 'StockLibere');
    expect(libere).toMatchObject({ source: 'stock-service', causation_id: refusal.event_id });
    expect(libere.data).toEqual({
      magasin_id: magasin,
      produits: [
        { produit_id: low, quantite: 2 },
        { produit_id: high, quantite: 1 },
      ],
      raison: 'paiement_refuse',
    });
    expect(await fixture.stockOf(magasin, low)).toMatchObject({ quantite: 5, reservee: 0 });
    expect(await reservationsOf(commandeId)).toEqual([
      { produit_id: low, statut: 'liberee' },
      { produit_id: high, statut: 'liberee' },
    ]);
  });

  it('gives the stock back after a refund, with the refund reason', async () => {
    const { magasin, low, high, commandeId } = await reservedOrder();
    await fixture.acceptPayment(commandeId);
    await fixture.append(
      commandeId,
      expiree('paiement_accepte', 'delai_du_test'),
      paiementRembourse(magasin),
    );

    expect(await deliver(commandeId, 'PaiementRembourse')).toBe('applied');

    expect((await fixture.delivered(commandeId, 'StockLibere')).data).toEqual({
      magasin_id: magasin,
      produits: [
        { produit_id: low, quantite: 2 },
        { produit_id: high, quantite: 1 },
      ],
      raison: 'delai_du_test',
    });
    expect(await fixture.stockOf(magasin, high)).toMatchObject({ quantite: 5, reservee: 0 });
  });

  it('gives the stock back at once when a commande holding stock expires unpaid, with the expiry reason', async () => {
    const { magasin, low, commandeId } = await reservedOrder();
    await fixture.append(commandeId, expiree('stock_reserve', 'delai_du_test'));
    const expiry = await fixture.delivered(commandeId, 'CommandeExpiree');

    expect(await deliver(commandeId, 'CommandeExpiree')).toBe('applied');

    const libere = await fixture.delivered(commandeId, 'StockLibere');
    expect(libere.causation_id).toBe(expiry.event_id);
    expect(libere.data).toMatchObject({ magasin_id: magasin, raison: 'delai_du_test' });
    expect(await fixture.stockOf(magasin, low)).toMatchObject({ quantite: 5, reservee: 0 });
  });

  it('leaves the stock reserved when a paid commande expires: the refund comes first', async () => {
    const { magasin, low, commandeId } = await reservedOrder();
    await fixture.acceptPayment(commandeId);
    await fixture.append(commandeId, expiree('paiement_accepte'));

    expect(await deliver(commandeId, 'CommandeExpiree')).toBe('applied');

    expect(await eventTypesOf(pool, commandeId)).toEqual([
      'CommandeCreee',
      'StockReserve',
      'PaiementAccepte',
      'CommandeExpiree',
    ]);
    expect(await fixture.stockOf(magasin, low)).toMatchObject({ quantite: 3, reservee: 2 });
  });

  it('has nothing to give back when a commande expires before its stock was reserved', async () => {
    const { magasin, low } = await storeWith([5, 5, 5]);
    const commandeId = await fixture.order(clientId, magasin, [[low, 1, 1]]);
    await fixture.append(commandeId, expiree('en_attente_stock'));

    expect(await deliver(commandeId, 'CommandeExpiree')).toBe('applied');

    expect(await eventTypesOf(pool, commandeId)).toEqual(['CommandeCreee', 'CommandeExpiree']);
    expect(await fixture.stockOf(magasin, low)).toMatchObject({ quantite: 5, reservee: 0 });
  });

  it('refuses to release the stock after a refused payment when it was released already', async () => {
    const { magasin, low, commandeId } = await reservedOrder();
    await fixture.append(commandeId, paiementRefuse(magasin), stockLibere(magasin));

    expect(await deliver(commandeId, 'PaiementRefuse')).toBe('refused');

    expect(await eventTypesOf(pool, commandeId)).toEqual([
      'CommandeCreee',
      'StockReserve',
      'PaiementRefuse',
      'StockLibere',
    ]);
    expect(await fixture.stockOf(magasin, low)).toMatchObject({ quantite: 3, reservee: 2 });
  });

  it('refuses to release the stock after a refund when it was released already', async () => {
    const { magasin, low, commandeId } = await reservedOrder();
    await fixture.acceptPayment(commandeId);
    await fixture.append(
      commandeId,
      expiree('paiement_accepte'),
      paiementRembourse(magasin),
      stockLibere(magasin),
    );

    expect(await deliver(commandeId, 'PaiementRembourse')).toBe('refused');

    expect((await eventTypesOf(pool, commandeId)).filter((type) => type === 'StockLibere')).toHaveLength(1);
    expect(await fixture.stockOf(magasin, low)).toMatchObject({ quantite: 3, reservee: 2 });
  });

  it('turns the reservation of a confirmed sale into sold stock', async () => {
    const { magasin, low, high, commandeId } = await reservedOrder();
    await fixture.acceptPayment(commandeId);
    await fixture.append(commandeId, {
      event_type: 'VenteConfirmee',
      source: 'ventes-service',
      causation_id: null,
      data: { vente_id: 1, client_id: clientId, magasin_id: magasin, total: 3 },
    });

    expect(await deliver(commandeId, 'VenteConfirmee')).toBe('applied');

    expect(await fixture.stockOf(magasin, low)).toEqual({ quantite: 3, reservee: 0, vendue: 2 });
    expect(await fixture.stockOf(magasin, high)).toEqual({ quantite: 4, reservee: 0, vendue: 1 });
    expect(await reservationsOf(commandeId)).toEqual([
      { produit_id: low, statut: 'vendue' },
      { produit_id: high, statut: 'vendue' },
    ]);
  });
});
