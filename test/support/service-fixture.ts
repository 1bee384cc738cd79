import { z } from 'zod';
import { ClientRepository } from '../../src/actors/client/client-repository.js';
import { DEADLINE_SOURCE, EXPIRY_REASON } from '../../src/actors/commande/deadline-scheduler.js';
import { commandeCreee, newCommandeId } from '../../src/actors/panier/checkout.js';
import { CatalogueRepository } from '../../src/actors/stock/catalogue-repository.js';
import type { NewEvent, SagaEnvelope, SagaEnvelopeOf, SagaEventType } from '../../src/domain/events.js';
import { fromCents, toCents } from '../../src/domain/money.js';
import type { Pool } from '../../src/persistence/database.js';
import { appendToStream, streamVersion } from '../../src/persistence/event-store.js';
import { eventOf } from './commande-events.js';

const stockRowSchema = z.object({
  quantite: z.number().int(),
  reservee: z.number().int(),
  vendue: z.number().int(),
});
const soldeRowSchema = z.object({ solde_cents: z.number().int() });
const paiementRowSchema = z.object({
  client_id: z.number().int(),
  montant_cents: z.number().int(),
  statut: z.string(),
});

/** A line of an order: the product, how many, and its unit price. */
export type OrderLine = [produitId: number, quantite: number, prixUnitaire: number];

/**
 * The rows and streams a service reads, made as the application makes them (the catalogue and client
 * repositories, the checkout's CommandeCreee), for tests that hand events to a service directly.
 */
export class ServiceFixture {
  private static counter = 0;
  private readonly catalogue: CatalogueRepository;
  private readonly clients: ClientRepository;

  constructor(readonly pool: Pool) {
    this.catalogue = new CatalogueRepository(pool);
    this.clients = new ClientRepository(pool);
  }

  async magasin(): Promise<number> {
    return (await this.catalogue.createMagasin({ nom: `Magasin ${++ServiceFixture.counter}` })).id;
  }

  async produit(prix: number): Promise<number> {
    return (await this.catalogue.createProduit({ nom: `Produit ${++ServiceFixture.counter}`, prix })).id;
  }

  async setStock(magasinId: number, produitId: number, quantite: number): Promise<void> {
    await this.catalogue.setStock(magasinId, produitId, quantite);
  }

  async client(solde: number): Promise<number> {
    return (await this.clients.create({ nom: `Client ${++ServiceFixture.counter}`, solde })).id;
  }

  /** A commande as the checkout creates it: its CommandeCreee, nothing else. */
  async order(clientId: number, magasinId: number, lines: readonly OrderLine[]): Promise<string> {
    const articles = lines.map(([produit_id, quantite, prix_unitaire]) => ({
      produit_id,
      quantite,
      prix_unitaire,
      sous_total: fromCents(quantite * toCents(prix_unitaire)),
    }));
    const total = fromCents(articles.reduce((sum, article) => sum + toCents(article.sous_total), 0));
    const commandeId = newCommandeId();
    await appendToStream(this.pool, commandeId, 0, [
      commandeCreee(clientId, magasinId, { client_id: clientId, articles, total }),
    ]);
    return commandeId;
  }

  /** Appends events to a commande's stream as the service that emits them would. */
  async append(commandeId: string, ...events: NewEvent[]): Promise<void> {
    await appendToStream(this.pool, commandeId, await streamVersion(this.pool, commandeId), events);
  }

  /** The StockReserve the stock service appends when every line is in stock. */
  async reserveStock(commandeId: string): Promise<void> {
    const { client_id, magasin_id, produits, total } = (await this.creationOf(commandeId)).data;
    await this.append(commandeId, {
      event_type: 'StockReserve',
      source: 'stock-service',
      causation_id: null,
      data: {
        client_id,
        magasin_id,
        produits: produits.map(({ produit_id, quantite }) => ({ produit_id, quantite })),
        total,
      },
    });
  }

  /** The PaiementAccepte the client service appends, without its payment row. */
  async acceptPayment(commandeId: string): Promise<void> {
    const { client_id, magasin_id, total } = (await this.creationOf(commandeId)).data;
    await this.append(commandeId, {
      event_type: 'PaiementAccepte',
      source: 'client-service',
      causation_id: null,
      data: { client_id, magasin_id, total },
    });
  }

  async creationOf(commandeId: string): Promise<SagaEnvelopeOf<'CommandeCreee'>> {
    const created = await this.delivered(commandeId, 'CommandeCreee');
    if (created.event_type !== 'CommandeCreee') throw new Error(`${commandeId} has no CommandeCreee`);
    return created;
  }

  /** The commande's event of this type, as a service receives it. */
  delivered(commandeId: string, eventType: SagaEventType): Promise<SagaEnvelope> {
    return eventOf(this.pool, commandeId, eventType);
  }

  async stockOf(magasinId: number, produitId: number): Promise<z.infer<typeof stockRowSchema>> {
    const result = await this.pool.query(
      'SELECT quantite, reservee, vendue FROM stock WHERE magasin_id = $1 AND produit_id = $2',
      [magasinId, produitId],
    );
    return stockRowSchema.parse(result.rows[0]);
  }

  async soldeCentsOf(clientId: number): Promise<number> {
    const result = await this.pool.query('SELECT solde_cents FROM clients WHERE id = $1', [clientId]);
    return soldeRowSchema.parse(result.rows[0]).solde_cents;
  }

  async paiementsOf(commandeId: string): Promise<z.infer<typeof paiementRowSchema>[]> {
    const result = await this.pool.query(
      'SELECT client_id, montant_cents, statut FROM paiements WHERE commande_id = $1',
      [commandeId],
    );
    return result.rows.map((row) => paiementRowSchema.parse(row));
  }
}

/** A CommandeExpiree as the deadline scheduler appends it. */
export function expiree(etat: string, raison: string = EXPIRY_REASON): NewEvent<'CommandeExpiree'> {
  return {
    event_type: 'CommandeExpiree',
    source: DEADLINE_SOURCE,
    causation_id: null,
    data: { raison, etat, delai_ms: 30_000 },
  };
}
