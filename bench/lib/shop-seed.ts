import type pg from 'pg';
import { type BenchHttp, inParallel } from './http.js';

export type OrderKind = 'success' | 'stock' | 'balance';

export interface PlannedOrder {
  clientId: number;
  magasinId: number;
  kind: OrderKind;
  lines: [produitId: number, quantite: number][];
}

function idOf(reply: { status: number; body: unknown }, what: string): number {
  const body = reply.body as { id?: unknown };
  if (reply.status !== 201 || typeof body?.id !== 'number') {
    throw new Error(`${what}: HTTP ${reply.status} ${JSON.stringify(reply.body)}`);
  }
  return body.id;
}

/** A deterministic generator, so that two runs place the same orders. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/**
 * The shop the load runs against, created over HTTP: stores, products in plenty, a few products sold out
 * everywhere (orders for them end stock_indisponible), rich clients and clients with no money (their
 * orders end annulee after compensation).
 */
export class BenchShop {
  readonly magasins: number[] = [];
  readonly available: number[] = [];
  readonly soldOut: number[] = [];
  private readonly rich: number[] = [];
  private readonly poor: number[] = [];
  private richUsed = 0;
  private poorUsed = 0;
  private readonly random = seededRandom(42);

  constructor(
    private readonly http: BenchHttp,
    private readonly pool: pg.Pool,
  ) {}

  async seedCatalogue(stores: number, products: number): Promise<void> {
    const run = Date.now().toString(36);
    for (let index = 0; index < stores; index += 1) {
      this.magasins.push(
        idOf(await this.http.send('POST', '/api/magasins', { nom: `Bench ${run} ${index}` }), 'magasin'),
      );
    }
    const soldOutCount = Math.max(1, Math.round(products / 10));
    for (let index = 0; index < products; index += 1) {
      const prix = 1 + (index % 20) * 0.25;
      const id = idOf(await this.http.send('POST', '/api/produits', { nom: `P${index}`, prix }), 'produit');
      (index < soldOutCount ? this.soldOut : this.available).push(id);
    }
    const pairs = this.magasins.flatMap((magasinId) =>
      [...this.available, ...this.soldOut].map((produitId) => ({ magasinId, produitId })),
    );
    await inParallel(pairs, 16, async ({ magasinId, produitId }) => {
      const quantite = this.soldOut.includes(produitId) ? 0 : 10_000_000;
      const reply = await this.http.send('PUT', `/api/stock/${magasinId}/${produitId}`, { quantite });
      if (reply.status !== 200) throw new Error(`set stock: HTTP ${reply.status}`);
    });
  }

  /** Creates clients over HTTP until each pool has what the next step needs. */
  async ensureClients(
    richNeeded: number,
    poorNeeded: number,
    onProgress: (done: number) => void,
  ): Promise<void> {
    const wanted: { solde: number }[] = [];
    for (let index = this.rich.length - this.richUsed; index < richNeeded; index += 1)
      wanted.push({ solde: 10_000_000 });
    for (let index = this.poor.length - this.poorUsed; index < poorNeeded; index += 1)
      wanted.push({ solde: 0 });
    let done = 0;
    await inParallel(wanted, 32, async ({ solde }, index) => {
      const id = idOf(await this.http.send('POST', '/api/clients', { nom: `C${index}`, solde }), 'client');
      (solde > 0 ? this.rich : this.poor).push(id);
      done += 1;
      if (done % 200 === 0) onProgress(done);
    });
  }

  /** Orders for one step: 80 % succeed, 10 % ask for a sold-out product, 10 % come from a client with no money. */
  plan(count: number): PlannedOrder[] {
    const orders: PlannedOrder[] = [];
    for (let index = 0; index < count; index += 1) {
      const slot = index % 10;
      const kind: OrderKind = slot === 3 ? 'stock' : slot === 7 ? 'balance' : 'success';
      const clientId = kind === 'balance' ? this.poor[this.poorUsed++] : this.rich[this.richUsed++];
      if (clientId === undefined) throw new Error('not enough clients seeded');
      const magasinId = this.pick(this.magasins);
      const lineCount = 1 + Math.floor(this.random() * 3);
      const produits = new Set<number>();
      while (produits.size < lineCount) produits.add(this.pick(this.available));
      if (kind === 'stock') produits.add(this.pick(this.soldOut));
      const lines = [...produits].map((produitId): [number, number] => [
        produitId,
        1 + Math.floor(this.random() * 2),
      ]);
      orders.push({ clientId, magasinId, kind, lines });
    }
    return orders;
  }

  /**
   * Fills the carts of a step's clients in one statement: the rows the cart API writes, without tens of
   * thousands of HTTP calls that would load the machine while the previous step's numbers settle.
   */
  async fillCarts(orders: readonly PlannedOrder[]): Promise<void> {
    const clients: number[] = [];
    const produits: number[] = [];
    const quantites: number[] = [];
    for (const order of orders) {
      for (const [produitId, quantite] of order.lines) {
        clients.push(order.clientId);
        produits.push(produitId);
        quantites.push(quantite);
      }
    }
    await this.pool.query(
      `INSERT INTO panier_articles (client_id, produit_id, quantite)
       SELECT * FROM unnest($1::int[], $2::int[], $3::int[])`,
      [clients, produits, quantites],
    );
  }

  get clientsLeft(): { rich: number; poor: number } {
    return { rich: this.rich.length - this.richUsed, poor: this.poor.length - this.poorUsed };
  }

  private pick(values: readonly number[]): number {
    const value = values[Math.floor(this.random() * values.length)];
    if (value === undefined) throw new Error('empty pick');
    return value;
  }
}
