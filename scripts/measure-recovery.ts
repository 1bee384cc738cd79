/**
 * How long choreo takes to recover once Redis has lost its data (docs/performance.md, "Recovery after
 * Redis loses its data"). Needs a PostgreSQL on 127.0.0.1:5432 (user postgres) and redis-server on the
 * PATH; each run starts a redis-server of its own on a free port, without persistence.
 *
 *   tsx scripts/measure-recovery.ts fill --database recovery_100k --orders 100000
 *   tsx scripts/measure-recovery.ts measure --database recovery_100k_copy [--in-flight 100]
 *
 * `fill` makes the database and runs that many orders through a real choreo (all actors, Redis Streams):
 * carts written with SQL, each checkout through `checkout()` (the event store's own append path), every
 * saga then completed by the services. `measure` runs choreo on a filled database until every consumer
 * group has caught up and recorded its position, pauses the sales service and places `--in-flight` orders
 * (they wait at paiement_accepte), FLUSHALLs Redis, resumes the sales service, and reports the time until
 * every group has caught up again and every order in flight is final, with the entries published again.
 * Run `measure` on a copy (CREATE DATABASE copy TEMPLATE filled): it changes the database.
 */
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { z } from 'zod';
import { checkout } from '../src/actors/panier/checkout.js';
import { Choreo } from '../src/app.js';
import { ACTOR_NAMES } from '../src/config.js';
import { createLogger } from '../src/observability/logger.js';
import { freePort } from '../test/support/free-port.js';
import { RedisServer } from '../test/support/redis-server.js';
import { testConfig } from '../test/support/test-system.js';

const ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const PREFIX = 'recovery:';
const STREAM_GROUPS: [string, string[]][] = [
  ['commande.evenements', ['stock-service', 'client-service', 'commande-saga']],
  ['stock.evenements', ['client-service', 'commande-saga']],
  ['paiement.evenements', ['stock-service', 'ventes-service', 'commande-saga']],
  ['vente.evenements', ['stock-service', 'commande-saga']],
];
const CLIENTS = 1_024;
const WORKERS = 32;

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    database: { type: 'string' },
    orders: { type: 'string', default: '100000' },
    'in-flight': { type: 'string', default: '100' },
  },
});
const mode = z.enum(['fill', 'measure']).parse(positionals[0]);
const database = z
  .string()
  .regex(/^[a-z0-9_]+$/)
  .parse(values.database);
const orders = z.coerce.number().int().positive().parse(values.orders);
const inFlight = z.coerce.number().int().min(0).parse(values['in-flight']);
const databaseUrl = `postgres://postgres@127.0.0.1:5432/${database}`;

const countRow = z.object({ n: z.coerce.number().int() });
const positionRow = z.object({ position: z.coerce.number().int() });
const groupInfo = z.array(z.array(z.union([z.string(), z.number(), z.null()])));

function log(message: string): void {
  process.stdout.write(`${new Date().toISOString()} ${message}\n`);
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 3_600_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function startChoreo(redisUrl: string): Promise<Choreo> {
  const choreo = await Choreo.create(
    { ...testConfig(databaseUrl, PREFIX, [...ACTOR_NAMES]), redisUrl, bus: 'redis', poolSize: 20 },
    { logger: createLogger(process.env.LOG_LEVEL ?? 'warn'), processMetrics: false },
  );
  await choreo.start();
  return choreo;
}

async function count(choreo: Choreo, sql: string, params: unknown[] = []): Promise<number> {
  return countRow.parse((await choreo.pool.query(sql, params)).rows[0]).n;
}

/** Checkouts of `total` orders of one unit, `WORKERS` at a time, each worker with clients of its own. */
async function placeOrders(choreo: Choreo, total: number, firstClient: number): Promise<string[]> {
  const ids: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: WORKERS }, async (_, worker) => {
      // Each worker has clients of its own: two checkouts of one client at once would share its cart.
      for (let own = 0; ; own++) {
        const index = next++;
        if (index >= total) return;
        const clientId = firstClient + worker + WORKERS * (own % (CLIENTS / WORKERS));
        await choreo.pool.query(
          `INSERT INTO panier_articles (client_id, produit_id, quantite) VALUES ($1, 1, 1)
           ON CONFLICT (client_id, produit_id) DO UPDATE SET quantite = 1`,
          [clientId],
        );
        ids.push((await checkout(choreo.pool, clientId, 1, undefined)).commande_id);
        if (index % 5_000 === 0) log(`${index} checkouts`);
      }
    }),
  );
  return ids;
}

/** Every group exists on each of its streams, holds nothing pending, and was given the last entry. */
async function groupsCaughtUp(redis: Redis): Promise<boolean> {
  for (const [stream, groups] of STREAM_GROUPS) {
    const key = `${PREFIX}${stream}`;
    let infos: Record<string, unknown>[];
    let lastId: string;
    try {
      infos = groupInfo
        .parse(await redis.call('XINFO', 'GROUPS', key))
        .map((fields) => Object.fromEntries(pairs(fields)));
      const info = Object.fromEntries(
        pairs(z.array(z.unknown()).parse(await redis.call('XINFO', 'STREAM', key))),
      );
      lastId = z.string().parse(info['last-generated-id']);
    } catch {
      return false;
    }
    for (const group of groups) {
      const info = infos.find(({ name }) => name === group);
      const caughtUp = info !== undefined && info.pending === 0 && info['last-delivered-id'] === lastId;
      if (!caughtUp) return false;
    }
  }
  return true;
}

function pairs(fields: readonly unknown[]): [string, unknown][] {
  const out: [string, unknown][] = [];
  for (let i = 0; i + 1 < fields.length; i += 2) out.push([String(fields[i]), fields[i + 1]]);
  return out;
}

async function relayAtHead(choreo: Choreo): Promise<boolean> {
  const head = await count(choreo, 'SELECT coalesce(max(position), 0) AS n FROM events');
  const relay = await choreo.pool.query("SELECT position FROM checkpoints WHERE name = 'outbox-relay'");
  return relay.rows[0] !== undefined && positionRow.parse(relay.rows[0]).position === head;
}

async function fill(): Promise<void> {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  await admin.end();
  const redisServer = new RedisServer(await freePort());
  await redisServer.start();
  const choreo = await startChoreo(redisServer.url);
  await choreo.pool.query(`INSERT INTO magasins (nom) VALUES ('Entrepôt')`);
  await choreo.pool.query(`INSERT INTO produits (nom, prix_cents) VALUES ('Pomme', 100)`);
  await choreo.pool.query('INSERT INTO stock (magasin_id, produit_id, quantite) VALUES (1, 1, 1000000000)');
  await choreo.pool.query(
    `INSERT INTO clients (nom, solde_cents) SELECT 'Client ' || n, 100000000 FROM generate_series(1, $1) AS n`,
    [CLIENTS],
  );
  const started = Date.now();
  await placeOrders(choreo, orders, 1);
  await until('every saga to end', async () => {
    const done = await count(choreo, 'SELECT count(*) AS n FROM sagas WHERE final');
    return done === orders;
  });
  log(`filled ${orders} orders in ${Math.round((Date.now() - started) / 1_000)} s`);
  await choreo.stop();
  await redisServer.kill();
}

async function measure(): Promise<void> {
  const redisServer = new RedisServer(await freePort());
  await redisServer.start();
  const redis = new Redis(redisServer.url, { protocol: 2 });
  const choreo = await startChoreo(redisServer.url);
  const hasPositions =
    (await count(
      choreo,
      "SELECT count(*) AS n FROM pg_tables WHERE tablename = 'consumer_group_positions'",
    )) > 0;
  log(
    `started (${hasPositions ? 'with' : 'without'} consumer group positions); waiting for every group to catch up`,
  );
  await until('the relay to publish the store', () => relayAtHead(choreo));
  await until('every group to catch up', () => groupsCaughtUp(redis));
  log('every group caught up');
  if (hasPositions) {
    const head = await count(choreo, 'SELECT coalesce(max(position), 0) AS n FROM events');
    await until('every group to record its position', async () => {
      const recorded = await count(
        choreo,
        'SELECT count(*) AS n FROM consumer_group_positions WHERE position = $1',
        [head],
      );
      return recorded === 4;
    });
    log('every group recorded its position');
    await until('the inbox to be pruned', async () => {
      return (await count(choreo, 'SELECT position AS n FROM inbox_pruned')) === head;
    });
    log('the inbox pruned');
  }
  const events = await count(choreo, 'SELECT count(*) AS n FROM events');
  const inbox = await count(choreo, 'SELECT count(*) AS n FROM inbox');
  log(`steady: ${events} events, ${inbox} inbox rows`);

  await choreo.pauseActor('ventes');
  const waiting = await placeOrders(choreo, inFlight, 1);
  await until('the orders in flight to be paid', async () => {
    const paid = await count(
      choreo,
      "SELECT count(*) AS n FROM sagas WHERE commande_id = ANY($1::text[]) AND statut = 'paiement_accepte'",
      [waiting],
    );
    return paid === waiting.length;
  });

  const lost = Date.now();
  await redis.flushall();
  choreo.resumeActor('ventes');
  await until(
    'the relay to publish again',
    async () => (await redis.exists(`${PREFIX}choreo.relay-marker`)) === 1,
  );
  await until('the relay to reach the head', () => relayAtHead(choreo));
  const published = Date.now();
  await until('every order in flight to end', async () => {
    const done = await count(
      choreo,
      'SELECT count(*) AS n FROM sagas WHERE commande_id = ANY($1::text[]) AND final',
      [waiting],
    );
    return done === waiting.length;
  });
  await until('the relay to reach the head', () => relayAtHead(choreo));
  await until('every group to catch up', () => groupsCaughtUp(redis));
  const caughtUp = Date.now();
  let republished = 0;
  for (const [stream] of STREAM_GROUPS) {
    republished += z.number().parse(await redis.xlen(`${PREFIX}${stream}`));
  }
  log(
    JSON.stringify({
      events,
      inboxRowsBefore: inbox,
      inFlight: waiting.length,
      entriesInRedisAfter: republished,
      publishedAgainMs: published - lost,
      caughtUpMs: caughtUp - lost,
    }),
  );
  redis.disconnect();
  await choreo.stop();
  await redisServer.kill();
}

await (mode === 'fill' ? fill() : measure());
