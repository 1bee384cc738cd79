import type { Logger } from 'pino';
import { ConflictError } from '../domain/errors.js';
import type { Pool } from '../persistence/database.js';
import { type ApiCall, type DemoShop, demoShop } from './demo-shop.js';

/** The kinds of checkout the demo sends: most succeed, some find no stock, some cannot pay. */
export const DEMO_MIX = { succes: 0.8, stock_insuffisant: 0.1, solde_insuffisant: 0.1 } as const;
type CheckoutKind = keyof typeof DEMO_MIX;

export interface DemoRequest {
  /** Checkouts per second. */
  rate: number;
  seconds: number;
}

export interface DemoProgress {
  state: 'idle' | 'seeding' | 'running' | 'done' | 'failed';
  rate: number;
  seconds: number;
  started_at: string | null;
  finished_at: string | null;
  /** Whether this run created the demo shop. */
  seeded: boolean;
  planned: number;
  sent: Record<CheckoutKind, number>;
  /** Checkouts not sent: every client of that kind still had one in flight. */
  skipped: number;
  /** Requests answered with an error. */
  errors: number;
  last_error: string | null;
  magasin_id: number | null;
}

const TICK_MS = 50;

function pickKind(random: number): CheckoutKind {
  if (random < DEMO_MIX.succes) return 'succes';
  if (random < DEMO_MIX.succes + DEMO_MIX.stock_insuffisant) return 'stock_insuffisant';
  return 'solde_insuffisant';
}

function idleProgress(): DemoProgress {
  return {
    state: 'idle',
    rate: 0,
    seconds: 0,
    started_at: null,
    finished_at: null,
    seeded: false,
    planned: 0,
    sent: { succes: 0, stock_insuffisant: 0, solde_insuffisant: 0 },
    skipped: 0,
    errors: 0,
    last_error: null,
    magasin_id: null,
  };
}

/**
 * Sends checkouts at a chosen rate for a bounded time through choreo's own API (a cart, then its
 * checkout, one at a time per client), seeding the demo shop first when it is not there. One run at a
 * time per process.
 */
export class DemoLoad {
  private current: DemoProgress = idleProgress();
  private timer: NodeJS.Timeout | null = null;
  private inFlight = new Set<Promise<void>>();
  private readonly busyClients = new Set<number>();

  constructor(
    private readonly pool: Pool,
    private readonly api: ApiCall,
    private readonly logger: Logger,
  ) {}

  progress(): DemoProgress {
    return structuredClone(this.current);
  }

  /** Starts a run; throws ConflictError while one is going. Resolves once the shop is ready and sending began. */
  async start(request: DemoRequest): Promise<DemoProgress> {
    if (this.current.state === 'seeding' || this.current.state === 'running') {
      throw new ConflictError('a demo load is already running: wait for it to end, or stop it');
    }
    this.current = {
      ...idleProgress(),
      state: 'seeding',
      rate: request.rate,
      seconds: request.seconds,
      planned: Math.round(request.rate * request.seconds),
    };
    try {
      const { shop, seeded } = await demoShop(this.pool, this.api);
      this.current.seeded = seeded;
      this.current.magasin_id = shop.magasin_id;
      this.run(shop, request);
    } catch (error) {
      this.fail(error);
    }
    return this.progress();
  }

  /** Stops sending; checkouts already sent go on through the saga. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.current.state === 'running' || this.current.state === 'seeding') this.finish('done');
    await Promise.all(this.inFlight);
  }

  private run(shop: DemoShop, request: DemoRequest): void {
    const startedAt = Date.now();
    this.current.state = 'running';
    this.current.started_at = new Date(startedAt).toISOString();
    let due = 0;
    this.timer = setInterval(() => {
      const elapsedMs = Math.min(Date.now() - startedAt, request.seconds * 1_000);
      const target = Math.round((elapsedMs / 1_000) * request.rate);
      while (due < target) {
        due += 1;
        this.sendOne(shop, pickKind(Math.random()));
      }
      if (elapsedMs >= request.seconds * 1_000) {
        if (this.timer) clearInterval(this.timer);
        this.timer = null;
        void Promise.all(this.inFlight).then(() => {
          if (this.current.state === 'running') this.finish('done');
        });
      }
    }, TICK_MS);
  }

  private sendOne(shop: DemoShop, kind: CheckoutKind): void {
    const clients = kind === 'solde_insuffisant' ? shop.clients_sans_le_sou : shop.clients_solvables;
    const client = clients.find((candidate) => !this.busyClients.has(candidate));
    if (client === undefined) {
      this.current.skipped += 1;
      return;
    }
    this.busyClients.add(client);
    const produit = kind === 'stock_insuffisant' ? shop.produit_epuise : shop.produit_en_stock;
    const work = this.checkout(client, shop.magasin_id, produit)
      .then(() => {
        this.current.sent[kind] += 1;
      })
      .catch((error: unknown) => {
        this.current.errors += 1;
        this.current.last_error = error instanceof Error ? error.message : String(error);
      })
      .finally(() => {
        this.busyClients.delete(client);
        this.inFlight.delete(work);
      });
    this.inFlight.add(work);
  }

  private async checkout(client: number, magasin: number, produit: number): Promise<void> {
    const added = await this.api('POST', `/api/panier/${client}/articles`, {
      produit_id: produit,
      quantite: 1,
    });
    if (added.status !== 200) throw new Error(`cart: HTTP ${added.status} ${JSON.stringify(added.body)}`);
    const checkedOut = await this.api('POST', `/api/panier/${client}/checkout`, { magasin_id: magasin });
    if (checkedOut.status !== 202) {
      throw new Error(`checkout: HTTP ${checkedOut.status} ${JSON.stringify(checkedOut.body)}`);
    }
  }

  private fail(error: unknown): void {
    this.current.last_error = error instanceof Error ? error.message : String(error);
    this.logger.warn({ err: error }, 'demo load failed');
    this.finish('failed');
  }

  private finish(state: 'done' | 'failed'): void {
    this.current.state = state;
    this.current.finished_at = new Date().toISOString();
  }
}
