import type { ClientRepository } from '../actors/client/client-repository.js';
import type { CheckoutBatcher } from '../actors/panier/checkout-batcher.js';
import type { PanierRepository } from '../actors/panier/panier-repository.js';
import type { CatalogueRepository } from '../actors/stock/catalogue-repository.js';
import type { VentesRepository } from '../actors/ventes/ventes-repository.js';
import type { Bus, DeadLetterStore } from '../bus/bus.js';
import type { Metrics } from '../observability/metrics.js';
import type { Pool } from '../persistence/database.js';
import type { CommandesQueries } from '../projections/commandes-queries.js';
import type { Authenticator } from './auth/authenticator.js';

export interface ReadinessProbe {
  postgres: () => Promise<void>;
  /** The bus in use: Redis Streams (Redis must answer) or PostgreSQL. */
  bus: Pick<Bus, 'kind' | 'probe'>;
}

/** What the HTTP layer needs, handed in by the app so that routes own no connection of their own. */
export interface ApiDependencies {
  pool: Pool;
  catalogue: CatalogueRepository;
  clients: ClientRepository;
  paniers: PanierRepository;
  checkouts: CheckoutBatcher;
  ventes: VentesRepository;
  commandes: CommandesQueries;
  metrics: Metrics;
  deadLetters: DeadLetterStore;
  readiness: ReadinessProbe;
  /** Tells who sent a request (src/api/auth): every route declares who may call it. */
  authenticator: Authenticator;
}
