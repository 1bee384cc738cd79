import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { ChoreoProcess } from './choreo-process.js';
import { recreateDatabase } from './databases.js';
import { type ExplorersResult, runStepWithExplorers } from './explorers-step.js';
import { type HopSplit, measureHopSplit, redisStreamEntries } from './hop-split.js';
import { BenchHttp } from './http.js';
import type { BenchOptions, Bus } from './options.js';
import { Progress } from './progress.js';
import { lastPosition, runStep, type StepContext, type StepResult } from './saga-step.js';
import { BenchShop } from './shop-seed.js';
import { startVacuumStandIn, type VacuumStandIn } from './vacuum-stand-in.js';

export interface SagaBenchResult {
  /** The bus asked for (env `BUS`), and the fresh database this run used. */
  bus: Bus;
  database: string;
  /**
   * Entries left in the Redis streams under this run's prefix at its end: events the Redis bus carried.
   * Not 0 on the postgres bus means this choreo ignored `BUS=postgres` (it predates the PostgreSQL bus).
   */
  redisStreamEntries: number;
  /** The bus choreo's `/ready` names (null for a choreo whose `/ready` did not name one yet). */
  reportedBus: string | null;
  /** Whether the events went on the bus asked for, by `/ready` and by the Redis streams. */
  busHonoured: boolean;
  steps: StepResult[];
  sustainedRate: number;
  best: StepResult | null;
  halfRate: StepResult | null;
  /** Each hop of the sagas at half rate, split at its publication on Redis: the Redis bus only. */
  halfRateHops: HopSplit | null;
  /** The half-rate step again, right after it, with explorers open (null with --explorers 0). */
  explorers: ExplorersResult | null;
  soak: StepResult | null;
  totalOrders: number;
  choreoPeakRssMb: number;
  choreoCpuSeconds: number;
  streamPrefix: string;
  /**
   * Should all be 0: entries no consumer could apply, commandes that timed out instead of finishing, and
   * commandes whose saga had not reached a final state when the run ended (an event lost on the way).
   * Dead letters are counted as a user sees them, `GET /api/dead-letters` (up to 1,000; null if it failed).
   */
  deadLetters: number | null;
  expired: number;
  neverFinal: number;
}

/** The label of the half-rate step with explorers open. */
export const explorersLabel = (count: number): string => `half rate, ${count} explorers`;

/** Each bus gets a database of its own, created anew: choreo records the bus it uses in its database. */
export const sagaDatabase = (bus: Bus): string => `choreo_bench_${bus}`;

const DEAD_LETTER_LIMIT = 1_000;

/**
 * Starts choreo as a user would, on one bus (`BUS=redis|postgres`) and a fresh database, seeds a shop over
 * HTTP, then searches the highest checkout rate whose sagas keep up, and measures latency at half that rate.
 */
export async function runSagaBench(options: BenchOptions, bus: Bus): Promise<SagaBenchResult> {
  const progress = new Progress();
  const database = sagaDatabase(bus);
  const databaseUrl = await recreateDatabase(options.adminUrl, database);
  const streamPrefix = `bench:${Date.now().toString(36)}:${randomBytes(3).toString('hex')}:`;
  const choreo = await ChoreoProcess.start({
    databaseUrl,
    redisUrl: options.redisUrl,
    streamPrefix,
    profileDir: options.profile ? `bench/results/profiles/${bus}` : undefined,
    logName: `choreo-${bus}.log`,
    env: { BUS: bus },
  });
  const http = new BenchHttp(choreo.baseUrl, 128, choreo.token);
  const reportedBus = await busInUse(http);
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
  const counters = new Redis(options.redisUrl, { lazyConnect: false });
  pool.on('error', () => {});
  const steps: StepResult[] = [];
  let totalOrders = 0;
  let vacuum: VacuumStandIn | null = null;
  try {
    const shop = new BenchShop(http, pool);
    progress.update('seeding stores, products and stock over HTTP');
    await shop.seedCatalogue(options.stores, options.products);
    progress.done(
      `seeded ${shop.magasins.length} stores, ${shop.available.length} products in stock, ${shop.soldOut.length} sold out`,
    );
    vacuum = await startVacuumStandIn(pool, database);
    if (vacuum.reason) progress.done(vacuum.reason);
    const context: StepContext = {
      http,
      pool,
      redis: counters,
      choreo,
      progress,
      drainGraceMs: options.drainGraceMs,
      maxDrainMs: options.maxDrainMs,
      p99BoundMs: options.p99BoundMs,
      database,
      origin: performance.timeOrigin + performance.now(),
    };
    const prepare = async (label: string, rate: number, seconds: number) => {
      const count = Math.max(1, Math.round(rate * seconds));
      await shop.ensureClients(count, Math.ceil(count / 10), (done) =>
        progress.update(`${label}: creating clients over HTTP (${done})`),
      );
      const orders = shop.plan(count);
      await shop.fillCarts(orders);
      return orders;
    };
    const record = (result: StepResult): StepResult => {
      totalOrders += result.accepted;
      steps.push(result);
      return result;
    };
    const step = async (label: string, rate: number, seconds: number): Promise<StepResult> =>
      record(await runStep(context, label, rate, seconds, await prepare(label, rate, seconds)));

    let best: StepResult | null = null;
    // Warm-up: JIT, connection pools, consumer groups. Without it the first step also pays for V8
    // compiling choreo's hot code (a tenth of choreo's CPU at 60/s over the first 30 s, under perf).
    await step('warm-up', Math.max(10, Math.round(options.startRate / 4)), options.quick ? 1 : 3);
    if (options.fixedRate !== null) {
      const result = await step('fixed', options.fixedRate, options.stepSeconds);
      if (result.sustained) best = result;
    } else {
      let rate = options.startRate;
      let failed: StepResult | null = null;
      let tried = 0;
      while (tried < options.maxSteps && rate <= options.maxRate) {
        tried += 1;
        const result = await step(`search ${tried}`, rate, options.stepSeconds);
        if (!result.sustained) {
          failed = result;
          break;
        }
        best = result;
        rate = Math.round(rate * options.rateFactor);
      }
      // One bisection between the last rate sustained and the first that was not.
      if (failed && best && tried < options.maxSteps) {
        const middle = Math.round(Math.sqrt(best.rate * failed.rate));
        if (middle > best.rate && middle < failed.rate) {
          const result = await step('bisect', middle, options.stepSeconds);
          if (result.sustained) best = result;
        }
      }
    }
    const sustainedRate = best?.rate ?? 0;
    const beforeHalfRate = { position: await lastPosition(pool), at: Date.now() };
    const halfRateValue = Math.max(1, Math.round((sustainedRate || options.startRate) / 2));
    const halfRate = await step('half rate', halfRateValue, options.halfRateSeconds);
    // The split reads each event's XADD time off its stream entry id: there is nothing like it on the
    // PostgreSQL bus, whose consumers read the event store itself.
    const halfRateHops =
      bus === 'redis'
        ? await measureHopSplit(pool, counters, streamPrefix, beforeHalfRate.position, beforeHalfRate.at)
        : null;
    // The same step again, right after, with explorers open: what they cost is the difference.
    let explorers: ExplorersResult | null = null;
    if (options.explorers > 0) {
      const label = explorersLabel(options.explorers);
      const orders = await prepare(label, halfRateValue, options.halfRateSeconds);
      explorers = await runStepWithExplorers(
        context,
        choreo.baseUrl,
        options.explorers,
        label,
        halfRateValue,
        options.halfRateSeconds,
        orders,
      );
      record(explorers.step);
    }
    let soak: StepResult | null = null;
    if (options.soakOrders > totalOrders) {
      const rate = Math.max(1, Math.round((sustainedRate || options.startRate) / 2));
      soak = await step('soak', rate, Math.ceil((options.soakOrders - totalOrders) / rate));
    }
    const sample = choreo.sample();
    const deadLetters = await countDeadLetters(http);
    const streamEntries = await redisStreamEntries(counters, streamPrefix);
    const busHonoured =
      (reportedBus === null || reportedBus === bus) && (bus === 'redis') === streamEntries > 0;
    if (!busHonoured) {
      progress.done(
        `note: this choreo did not run on the ${bus} bus (/ready names ${reportedBus ?? 'no bus'}; ${streamEntries} entries in the Redis streams under the run's prefix): the ${bus} column does not measure it`,
      );
    }
    const expired = await pool.query<{ count: number }>(
      "SELECT count(*)::int AS count FROM events WHERE event_type = 'CommandeExpiree'",
    );
    const unfinished = await pool.query<{ count: number }>(
      `SELECT count(*)::int AS count FROM events AS c
       WHERE c.event_type = 'CommandeCreee'
         AND NOT EXISTS (SELECT 1 FROM sagas AS s WHERE s.commande_id = c.aggregate_id AND s.final)`,
    );
    const neverFinal = unfinished.rows[0]?.count ?? 0;
    if (deadLetters !== 0 || (expired.rows[0]?.count ?? 0) > 0 || neverFinal > 0) {
      progress.done(
        `anomalies: ${deadLetters ?? 'uncounted'} dead letters, ${expired.rows[0]?.count ?? 0} commandes expired, ${neverFinal} never final (see bench/results/choreo-${bus}.log)`,
      );
    }
    return {
      bus,
      database,
      redisStreamEntries: streamEntries,
      reportedBus,
      busHonoured,
      deadLetters,
      expired: expired.rows[0]?.count ?? 0,
      neverFinal,
      steps,
      sustainedRate,
      best,
      halfRate,
      halfRateHops,
      explorers,
      soak,
      totalOrders,
      choreoPeakRssMb: sample?.peakRssMb ?? 0,
      choreoCpuSeconds: sample?.cpuSeconds ?? 0,
      streamPrefix,
    };
  } finally {
    await vacuum?.stop();
    http.close();
    await pool.end();
    counters.disconnect();
    const code = await choreo.stop();
    if (code !== 0) process.stderr.write(`choreo exited with ${code}\n${choreo.logTail}\n`);
    await deleteStreams(options.redisUrl, streamPrefix);
  }
}

/** The bus `/ready` names. */
async function busInUse(http: BenchHttp): Promise<string | null> {
  try {
    const reply = await http.send('GET', '/ready');
    const body = reply.body as { bus?: unknown } | null;
    return typeof body?.bus === 'string' ? body.bus : null;
  } catch {
    return null;
  }
}

/** Dead letters as a user reads them, whichever bus keeps them. */
async function countDeadLetters(http: BenchHttp): Promise<number | null> {
  try {
    const reply = await http.send('GET', `/api/dead-letters?limit=${DEAD_LETTER_LIMIT}`);
    return reply.status === 200 && Array.isArray(reply.body) ? reply.body.length : null;
  } catch {
    return null;
  }
}

async function deleteStreams(redisUrl: string, prefix: string): Promise<void> {
  const redis = new Redis(redisUrl, { lazyConnect: false });
  try {
    let cursor = '0';
    do {
      const [nextCursor, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = nextCursor;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}
