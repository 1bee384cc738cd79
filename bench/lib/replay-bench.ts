import { randomUUID } from 'node:crypto';
import { CommandeSession, loadCommande } from '../../src/actors/commande/commande-stream.js';
import { type NewEvent, parseSagaEnvelope, type SagaEnvelope } from '../../src/domain/events.js';
import { replayCommande } from '../../src/machines/commande-replay.js';
import { createLogger } from '../../src/observability/logger.js';
import { CheckpointedReader } from '../../src/persistence/checkpointed-reader.js';
import { createPool, type Pool, withTransaction } from '../../src/persistence/database.js';
import { appendToStream, readAll } from '../../src/persistence/event-store.js';
import { EventStoreNotifier } from '../../src/persistence/event-store-notifier.js';
import { migrate } from '../../src/persistence/migrate.js';
import { COMMANDES_PROJECTION, projectCommandes } from '../../src/projections/commandes-projection.js';
import { recreateDatabase } from './databases.js';
import { inParallel } from './http.js';
import type { Progress } from './progress.js';

/** Orders per read when rehydrating in batches, as a consumer's batch of events does. */
const REHYDRATION_BATCH = 100;

export interface ReplayResult {
  orders: number;
  events: number;
  /** `batch` orders per read: 1 is `loadCommande`, more is `CommandeSession.preload` as a consumer batch does. */
  rehydrated: { concurrency: number; batch: number; ordersPerSecond: number; eventsPerSecond: number }[];
  foldEventsPerSecond: number;
  parseAndFoldEventsPerSecond: number;
  projectionRebuildEventsPerSecond: number;
}

/** The events of one order along the bench's mix: 80 % sold, 10 % out of stock, 10 % payment refused. */
function orderEvents(index: number): NewEvent[] {
  const base = { client_id: 1 + (index % 500), magasin_id: 1 + (index % 8) };
  const produits = [
    { produit_id: 1 + (index % 40), quantite: 2, prix_unitaire: 5, sous_total: 10 },
    { produit_id: 41 + (index % 10), quantite: 1, prix_unitaire: 2.5, sous_total: 2.5 },
  ];
  const total = 12.5;
  const reserved = produits.map(({ produit_id, quantite }) => ({ produit_id, quantite }));
  const event = (event_type: string, source: string, data: object): NewEvent =>
    ({ event_type, source, causation_id: null, data }) as NewEvent;
  const created = event('CommandeCreee', 'panier-service', { ...base, produits, total });
  const slot = index % 10;
  if (slot === 3) {
    return [
      created,
      event('StockIndisponible', 'stock-service', {
        ...base,
        raison: 'stock_insuffisant',
        manquants: [{ produit_id: 1, demande: 2, disponible: 0 }],
      }),
    ];
  }
  const stockReserve = event('StockReserve', 'stock-service', { ...base, produits: reserved, total });
  if (slot === 7) {
    return [
      created,
      stockReserve,
      event('PaiementRefuse', 'client-service', { ...base, total, solde: 0, raison: 'solde_insuffisant' }),
      event('StockLibere', 'stock-service', {
        magasin_id: base.magasin_id,
        produits: reserved,
        raison: 'paiement_refuse',
      }),
    ];
  }
  return [
    created,
    stockReserve,
    event('PaiementAccepte', 'client-service', { ...base, total }),
    event('VenteConfirmee', 'ventes-service', { ...base, vente_id: index + 1, total }),
  ];
}

async function seedOrders(pool: Pool, count: number, progress: Progress): Promise<string[]> {
  const ids = Array.from({ length: count }, () => `cmd-${randomUUID()}`);
  const chunks: number[] = [];
  for (let start = 0; start < count; start += 100) chunks.push(start);
  let done = 0;
  await inParallel(chunks, 4, async (start) => {
    await withTransaction(pool, async (tx) => {
      for (let index = start; index < Math.min(count, start + 100); index += 1) {
        const events = orderEvents(index);
        // One append per event, as the services do, so that versions and causation look like the real thing.
        for (let version = 0; version < events.length; version += 1) {
          await appendToStream(tx, ids[index] as string, version, [events[version] as NewEvent]);
        }
      }
    });
    done += 100;
    progress.update(`replay: seeding orders ${Math.min(done, count)}/${count}`);
  });
  return ids;
}

/** Rehydration from PostgreSQL, the pure fold in memory, and a projection rebuild from position 0. */
export async function runReplayBench(
  adminUrl: string,
  orders: number,
  progress: Progress,
): Promise<ReplayResult> {
  const url = await recreateDatabase(adminUrl, 'choreo_bench_replay');
  const pool = createPool(url, 10);
  const logger = createLogger('silent');
  try {
    await migrate(pool);
    const ids = await seedOrders(pool, orders, progress);

    const rehydrated: ReplayResult['rehydrated'] = [];
    for (const { concurrency, batch } of [
      { concurrency: 1, batch: 1 },
      { concurrency: 8, batch: 1 },
      { concurrency: 1, batch: REHYDRATION_BATCH },
    ]) {
      progress.update(`replay: rehydrating ${orders} orders with ${concurrency} loop(s), ${batch} per read`);
      let events = 0;
      const start = performance.now();
      const clients = await Promise.all(Array.from({ length: concurrency }, () => pool.connect()));
      try {
        let next = 0;
        await Promise.all(
          clients.map(async (client) => {
            while (next < ids.length) {
              const slice = ids.slice(next, next + batch);
              next += batch;
              const session = new CommandeSession(client);
              if (batch > 1) await session.preload(slice);
              for (const id of slice) {
                const commande = batch > 1 ? await session.load(id) : await loadCommande(client, id);
                if (!commande.snapshot) throw new Error(`${commande.commandeId} did not rehydrate`);
                events += commande.events.length;
              }
            }
          }),
        );
      } finally {
        for (const client of clients) client.release();
      }
      const seconds = (performance.now() - start) / 1_000;
      rehydrated.push({
        concurrency,
        batch,
        ordersPerSecond: ids.length / seconds,
        eventsPerSecond: events / seconds,
      });
    }

    progress.update('replay: folding events in memory');
    const stored = [];
    for (let after = 0; ; ) {
      const batch = await readAll(pool, { after, limit: 5_000 });
      const last = batch.at(-1);
      if (!last) break;
      stored.push(...batch);
      after = last.position;
    }
    const byOrder = new Map<string, SagaEnvelope[]>();
    for (const event of stored) {
      const envelope = parseSagaEnvelope(event);
      const list = byOrder.get(envelope.aggregate_id) ?? [];
      list.push(envelope);
      byOrder.set(envelope.aggregate_id, list);
    }
    const streams = [...byOrder.values()];
    let folded = 0;
    const foldStart = performance.now();
    while (performance.now() - foldStart < 1_000) {
      for (const events of streams) {
        replayCommande(events);
        folded += events.length;
      }
    }
    const foldEventsPerSecond = folded / ((performance.now() - foldStart) / 1_000);

    let parsedAndFolded = 0;
    const parseStart = performance.now();
    while (performance.now() - parseStart < 1_000) {
      const grouped = new Map<string, SagaEnvelope[]>();
      for (const event of stored) {
        const envelope = parseSagaEnvelope(event);
        const list = grouped.get(envelope.aggregate_id) ?? [];
        list.push(envelope);
        grouped.set(envelope.aggregate_id, list);
      }
      for (const events of grouped.values()) replayCommande(events);
      parsedAndFolded += stored.length;
    }
    const parseAndFoldEventsPerSecond = parsedAndFolded / ((performance.now() - parseStart) / 1_000);

    progress.update('replay: projection rebuild from position 0');
    const reader = new CheckpointedReader({
      name: COMMANDES_PROJECTION,
      pool,
      notifier: new EventStoreNotifier(url, logger), // never started: the rebuild is driven batch by batch
      logger,
      handle: projectCommandes,
    });
    let projected = 0;
    const rebuildStart = performance.now();
    for (;;) {
      const outcome = await reader.processBatch();
      if (outcome.kind !== 'handled') break;
      projected += outcome.count;
    }
    const projectionRebuildEventsPerSecond = projected / ((performance.now() - rebuildStart) / 1_000);
    const result: ReplayResult = {
      orders,
      events: stored.length,
      rehydrated,
      foldEventsPerSecond,
      parseAndFoldEventsPerSecond,
      projectionRebuildEventsPerSecond,
    };
    progress.done(
      `replay: rehydrated ${rehydrated.map((r) => `${Math.round(r.ordersPerSecond)} orders/s (x${r.concurrency}, ${r.batch} per read)`).join(', ')}; ` +
        `fold ${Math.round(foldEventsPerSecond)} ev/s; projection rebuild ${Math.round(projectionRebuildEventsPerSecond)} ev/s`,
    );
    return result;
  } finally {
    await pool.end();
  }
}
