import { z } from 'zod';
import type { Pool } from '../persistence/database.js';

/** Calls choreo's own HTTP API: in process through fastify's inject, from a terminal through fetch. */
export type ApiCall = (
  method: 'GET' | 'POST' | 'PUT',
  url: string,
  body?: unknown,
  headers?: Record<string, string>,
) => Promise<{ status: number; body: unknown }>;

/** A small shop for the demo load: one store, a product in plenty, one out of stock, rich and poor clients. */
export interface DemoShop {
  magasin_id: number;
  produit_en_stock: number;
  produit_epuise: number;
  clients_solvables: number[];
  clients_sans_le_sou: number[];
}

const demoShopSchema = z.object({
  magasin_id: z.number().int(),
  produit_en_stock: z.number().int(),
  produit_epuise: z.number().int(),
  clients_solvables: z.array(z.number().int()).min(1),
  clients_sans_le_sou: z.array(z.number().int()).min(1),
});

const SETTING_KEY = 'explorer.demo_shop';
const RICH_CLIENTS = 16;
const POOR_CLIENTS = 4;
const idBody = z.object({ id: z.number().int() });

async function created(api: ApiCall, url: string, body: unknown, what: string): Promise<number> {
  const response = await api('POST', url, body);
  if (response.status !== 201) {
    throw new Error(`demo shop: ${what} answered HTTP ${response.status}: ${JSON.stringify(response.body)}`);
  }
  return idBody.parse(response.body).id;
}

async function seed(api: ApiCall): Promise<DemoShop> {
  const magasin_id = await created(
    api,
    '/api/magasins',
    { nom: 'Boutique démo', ville: 'Montréal' },
    'store',
  );
  const produit_en_stock = await created(api, '/api/produits', { nom: 'Pomme', prix: 0.5 }, 'product');
  const produit_epuise = await created(api, '/api/produits', { nom: 'Édition limitée', prix: 25 }, 'product');
  const stocked = await api('PUT', `/api/stock/${magasin_id}/${produit_en_stock}`, { quantite: 1_000_000 });
  if (stocked.status !== 200) throw new Error(`demo shop: stock answered HTTP ${stocked.status}`);
  const clients_solvables: number[] = [];
  for (let i = 1; i <= RICH_CLIENTS; i++) {
    clients_solvables.push(
      await created(api, '/api/clients', { nom: `Client démo ${i}`, solde: 100_000 }, 'client'),
    );
  }
  const clients_sans_le_sou: number[] = [];
  for (let i = 1; i <= POOR_CLIENTS; i++) {
    clients_sans_le_sou.push(
      await created(api, '/api/clients', { nom: `Client démo sans le sou ${i}`, solde: 0.1 }, 'client'),
    );
  }
  return { magasin_id, produit_en_stock, produit_epuise, clients_solvables, clients_sans_le_sou };
}

/** The demo shop recorded in `choreo_settings`, seeded through the API the first time (or if it was removed). */
export async function demoShop(pool: Pool, api: ApiCall): Promise<{ shop: DemoShop; seeded: boolean }> {
  const recorded = await pool.query('SELECT value FROM choreo_settings WHERE key = $1', [SETTING_KEY]);
  const value = z.object({ value: z.string() }).safeParse(recorded.rows[0]);
  if (value.success) {
    const shop = demoShopSchema.safeParse(JSON.parse(value.data.value));
    if (shop.success && (await api('GET', `/api/magasins/${shop.data.magasin_id}`)).status === 200) {
      return { shop: shop.data, seeded: false };
    }
  }
  const shop = await seed(api);
  await pool.query(
    `INSERT INTO choreo_settings (key, value) VALUES ($1, $2)
     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, set_at = now()`,
    [SETTING_KEY, JSON.stringify(shop)],
  );
  return { shop, seeded: true };
}
