import { z } from 'zod';
import { eventually } from './eventually.js';
import type { HttpClient, HttpResponse } from './http-client.js';

const FINAL_STATUTS = new Set(['stock_indisponible', 'annulee', 'vente_confirmee']);

const idBody = z.object({ id: z.number() });
const checkoutBody = z.object({ commande_id: z.string(), statut: z.string() });
export const commandeBody = z.object({
  commande_id: z.string(),
  client_id: z.number(),
  magasin_id: z.number(),
  produits: z.array(
    z.object({
      produit_id: z.number(),
      quantite: z.number(),
      prix_unitaire: z.number(),
      sous_total: z.number(),
    }),
  ),
  total: z.number(),
  statut: z.string(),
  raison: z.string().nullable(),
  historique: z.array(z.object({ event_type: z.string(), timestamp: z.string() })),
});
export type CommandeBody = z.infer<typeof commandeBody>;
const stockBody = z.array(z.object({ produit_id: z.number(), quantite: z.number(), reservee: z.number() }));
const clientBody = z.object({ id: z.number(), nom: z.string(), solde: z.number() });

function expectStatus(response: HttpResponse, status: number, what: string): unknown {
  if (response.status !== status) {
    throw new Error(`${what}: expected HTTP ${status}, got ${response.status}: ${response.text}`);
  }
  return response.body;
}

/** The steps a user takes over HTTP, for arranging scenarios in a line each. */
export class Shop {
  private static counter = 0;

  constructor(readonly api: HttpClient) {}

  async magasin(nom = `Magasin ${++Shop.counter}-${Date.now()}`): Promise<number> {
    return idBody.parse(expectStatus(await this.api.post('/api/magasins', { nom }), 201, 'create magasin'))
      .id;
  }

  async produit(prix: number, nom = `Produit ${++Shop.counter}`): Promise<number> {
    return idBody.parse(
      expectStatus(await this.api.post('/api/produits', { nom, prix }), 201, 'create produit'),
    ).id;
  }

  async setStock(magasinId: number, produitId: number, quantite: number): Promise<void> {
    expectStatus(await this.api.put(`/api/stock/${magasinId}/${produitId}`, { quantite }), 200, 'set stock');
  }

  async client(solde: number, nom = `Client ${++Shop.counter}`): Promise<number> {
    return idBody.parse(
      expectStatus(await this.api.post('/api/clients', { nom, solde }), 201, 'create client'),
    ).id;
  }

  async addToCart(clientId: number, produitId: number, quantite: number): Promise<void> {
    expectStatus(
      await this.api.post(`/api/panier/${clientId}/articles`, { produit_id: produitId, quantite }),
      200,
      'add to cart',
    );
  }

  async checkout(clientId: number, magasinId: number, idempotencyKey?: string): Promise<string> {
    const headers = idempotencyKey ? { 'Idempotency-Key': idempotencyKey } : undefined;
    const response = await this.api.post(
      `/api/panier/${clientId}/checkout`,
      { magasin_id: magasinId },
      headers,
    );
    return checkoutBody.parse(expectStatus(response, 202, 'checkout')).commande_id;
  }

  /** Fills the cart and checks out in one step. */
  async order(
    clientId: number,
    magasinId: number,
    lines: [produitId: number, quantite: number][],
  ): Promise<string> {
    for (const [produitId, quantite] of lines) await this.addToCart(clientId, produitId, quantite);
    return this.checkout(clientId, magasinId);
  }

  async commande(commandeId: string): Promise<CommandeBody> {
    return commandeBody.parse(
      expectStatus(await this.api.get(`/api/commandes/${commandeId}`), 200, 'get commande'),
    );
  }

  async finalCommande(commandeId: string, timeoutMs = 20_000): Promise<CommandeBody> {
    return eventually(
      () => this.commande(commandeId),
      (commande) => FINAL_STATUTS.has(commande.statut),
      { timeoutMs, description: `commande ${commandeId} to reach a final state` },
    );
  }

  async stock(magasinId: number): Promise<z.infer<typeof stockBody>> {
    return stockBody.parse(
      expectStatus(await this.api.get(`/api/stock/magasin/${magasinId}`), 200, 'get stock'),
    );
  }

  async stockOf(magasinId: number, produitId: number): Promise<{ quantite: number; reservee: number }> {
    const line = (await this.stock(magasinId)).find((entry) => entry.produit_id === produitId);
    return line ?? { quantite: 0, reservee: 0 };
  }

  /**
   * Waits for a stock line to read `expected`: the stock service turns a reservation into a sale when it
   * sees VenteConfirmee, a moment after the commande is already shown as confirmed.
   */
  async stockSettlesAt(
    magasinId: number,
    produitId: number,
    expected: { quantite: number; reservee: number },
  ): Promise<{ quantite: number; reservee: number }> {
    return eventually(
      async () => {
        const { quantite, reservee } = await this.stockOf(magasinId, produitId);
        return { quantite, reservee };
      },
      (level) => level.quantite === expected.quantite && level.reservee === expected.reservee,
      {
        description: `stock of produit ${produitId} in magasin ${magasinId} to settle at ${JSON.stringify(expected)}`,
      },
    ).catch(async () => this.stockOf(magasinId, produitId));
  }

  async solde(clientId: number): Promise<number> {
    return clientBody.parse(expectStatus(await this.api.get(`/api/clients/${clientId}`), 200, 'get client'))
      .solde;
  }
}
