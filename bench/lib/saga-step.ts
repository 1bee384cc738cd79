import type { Redis } from 'ioredis';
import type pg from 'pg';
import type { ChoreoProcess } from './choreo-process.js';
import type { BenchHttp } from './http.js';
import { coresBusy, postgresCpuBetween, postgresCpuSeconds, sampleMachine } from './proc-stats.js';
import type { Progress } from './progress.js';
import type { OrderKind, PlannedOrder } from './shop-seed.js';
import { type Percentiles, percentiles } from './stats.js';

/** The events that end a saga: a step's orders are completed when one of them is in the event store. */
export const FINAL_EVENTS = ['StockIndisponible', 'StockLibere', 'VenteConfirmee'];
const EXPECTED_FINAL: Record<OrderKind, string> = {
  success: 'VenteConfirmee',
  stock: 'StockIndisponible',
  balance: 'StockLibere',
};

export interface TimelinePoint {
  /** Seconds since the start of the whole saga benchmark. */
  t: number;
  arrivals: number;
  completions: number;
  p50: number;
  p95: number;
  p99: number;
}

export interface StepResult {
  label: string;
  rate: number;
  seconds: number;
  planned: number;
  accepted: number;
  httpErrors: number;
  completed: number;
  unexpectedOutcomes: number;
  sustained: boolean;
  why: string;
  completedPerSecond: number;
  eventsPerSecond: number;
  /** Checkout request (its scheduled send time) to the final event, from the events' own timestamps. */
  latency: Percentiles;
  /** CommandeCreee to the final event: the saga alone, without HTTP. */
  sagaLatency: Percentiles;
  /** Checkout request to its 202 answer. */
  checkoutLatency: Percentiles;
  choreoCores: number;
  machineCores: number;
  /** CPU time per completed saga: steadier than rates on a shared machine. */
  choreoCpuMsPerSaga: number;
  machineCpuMsPerSaga: number;
  /** CPU of the PostgreSQL backends connected to choreo's database, per completed saga. */
  postgresCpuMsPerSaga: number;
  /** PostgreSQL transactions (commits + rollbacks in choreo's database) per completed saga, readers included. */
  transactionsPerSaga: number;
  /** Redis stream commands per completed saga, counted by Redis itself (INFO commandstats). */
  streamOpsPerSaga: StreamOps;
  peakRssMb: number;
  timeline: TimelinePoint[];
}

interface Sent {
  intended: number;
  kind: OrderKind;
  answeredAt: number;
}

const now = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Counts a step's final events as they commit, reading only the positions not settled yet: a count over
 * the whole step, several times a second, cost PostgreSQL more than some of choreo's own statements, and
 * more as the step went on. Positions come from a sequence, so every position up to the newest one seen
 * was taken by a transaction running then, or before: once all those have ended (the oldest transaction
 * still running is younger than the newest one then), no position up to it can appear any more.
 */
class FinalsCounter {
  private settledPosition: number;
  private settledFinals = 0;
  private oldestRunning = 0n;
  private readonly newestSeen: { position: number; nextTransaction: bigint }[] = [];
  private counting: Promise<number> | null = null;

  constructor(
    private readonly pool: pg.Pool,
    startPosition: number,
  ) {
    this.settledPosition = startPosition;
  }

  /** One count at a time: the poller and the drain loop share what is settled. */
  count(): Promise<number> {
    this.counting ??= this.countOnce().finally(() => {
      this.counting = null;
    });
    return this.counting;
  }

  private async countOnce(): Promise<number> {
    const settleUpTo = Math.max(
      this.settledPosition,
      ...this.newestSeen
        .filter((seen) => seen.nextTransaction <= this.oldestRunning)
        .map((seen) => seen.position),
    );
    const result = await this.pool.query<{
      finals: number;
      settling: number;
      newest: string;
      oldest_running: string;
      next_transaction: string;
    }>(
      `SELECT count(*) FILTER (WHERE event_type = ANY($2))::int AS finals,
              count(*) FILTER (WHERE event_type = ANY($2) AND position <= $3)::int AS settling,
              coalesce(max(position), $1)::text AS newest,
              pg_snapshot_xmin(pg_current_snapshot())::text AS oldest_running,
              pg_snapshot_xmax(pg_current_snapshot())::text AS next_transaction
       FROM events WHERE position > $1`,
      [this.settledPosition, FINAL_EVENTS, settleUpTo],
    );
    const row = result.rows[0];
    if (!row) return this.settledFinals;
    const total = this.settledFinals + row.finals;
    this.settledFinals += row.settling;
    this.settledPosition = settleUpTo;
    this.oldestRunning = BigInt(row.oldest_running);
    const pending = this.newestSeen.filter((seen) => seen.position > settleUpTo);
    this.newestSeen.splice(0, this.newestSeen.length, ...pending, {
      position: Number(row.newest),
      nextTransaction: BigInt(row.next_transaction),
    });
    return total;
  }
}

/** The stream commands a saga costs: what the machine's ceiling replays without choreo. */
export interface StreamOps {
  xadd: number;
  xreadgroup: number;
  xack: number;
}

async function streamOpCounts(redis: Redis): Promise<StreamOps> {
  const info = await redis.info('commandstats');
  const calls = (command: string) =>
    Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(info)?.[1] ?? 0);
  return { xadd: calls('xadd'), xreadgroup: calls('xreadgroup'), xack: calls('xack') };
}

async function transactionCount(pool: pg.Pool): Promise<number> {
  const result = await pool.query<{ count: string }>(
    'SELECT (xact_commit + xact_rollback)::text AS count FROM pg_stat_database WHERE datname = current_database()',
  );
  return Number(result.rows[0]?.count ?? 0);
}

export async function lastPosition(pool: pg.Pool): Promise<number> {
  const result = await pool.query<{ position: number }>(
    'SELECT coalesce(max(position), 0)::bigint AS position FROM events',
  );
  return Number(result.rows[0]?.position ?? 0);
}

export interface StepContext {
  http: BenchHttp;
  pool: pg.Pool;
  /** Only to read Redis' command counters. */
  redis: Redis;
  choreo: ChoreoProcess;
  progress: Progress;
  drainGraceMs: number;
  maxDrainMs: number;
  p99BoundMs: number;
  /** choreo's database, to attribute PostgreSQL's CPU. */
  database: string;
  /** Epoch ms the saga benchmark began, the origin of every timeline. */
  origin: number;
}

/**
 * Open-loop load: checkouts are sent on a fixed schedule whether or not earlier ones have finished, and
 * each one's latency counts from when it was due (no coordinated omission). Completion is read from the
 * event store afterwards: the final event's occurred_at minus the checkout's scheduled send time.
 */
export async function runStep(
  context: StepContext,
  label: string,
  rate: number,
  seconds: number,
  orders: readonly PlannedOrder[],
): Promise<StepResult> {
  const { http, pool, choreo, progress } = context;
  const startPosition = await lastPosition(pool);
  const transactionsBefore = await transactionCount(pool);
  const streamOpsBefore = await streamOpCounts(context.redis);
  const cpuBefore = choreo.sample();
  const postgresBefore = postgresCpuSeconds(context.database);
  const machineBefore = sampleMachine();
  const sent = new Map<string, Sent>();
  let httpErrors = 0;
  let answered = 0;
  let finals = 0;
  let polling = true;
  const finalsCounter = new FinalsCounter(pool, startPosition);
  const poller = (async () => {
    while (polling) {
      finals = await finalsCounter.count().catch(() => finals);
      progress.update(
        `${label}: ${rate}/s, sent ${answered}/${orders.length}, final ${finals}, errors ${httpErrors}`,
      );
      await sleep(250);
    }
  })();

  const start = now();
  const interval = 1_000 / rate;
  const inFlight: Promise<void>[] = [];
  let next = 0;
  while (next < orders.length) {
    const due = Math.min(orders.length, Math.floor((now() - start) / interval) + 1);
    while (next < due) {
      const order = orders[next] as PlannedOrder;
      const intended = start + next * interval;
      next += 1;
      inFlight.push(
        http
          .send('POST', `/api/panier/${order.clientId}/checkout`, { magasin_id: order.magasinId })
          .then((reply) => {
            answered += 1;
            const body = reply.body as { commande_id?: unknown };
            if (reply.status === 202 && typeof body?.commande_id === 'string') {
              sent.set(body.commande_id, { intended, kind: order.kind, answeredAt: now() });
            } else {
              httpErrors += 1;
            }
          })
          .catch(() => {
            answered += 1;
            httpErrors += 1;
          }),
      );
    }
    await sleep(Math.max(0, Math.min(interval, start + next * interval - now())));
  }
  await Promise.all(inFlight);
  const lastDue = start + (orders.length - 1) * interval;

  // Wait for the backlog: in time for the step to count as sustained, or longer so the next step starts idle.
  const sustainDeadline = lastDue + context.drainGraceMs;
  const drainDeadline = lastDue + context.maxDrainMs;
  let drainedInTime = false;
  for (;;) {
    finals = await finalsCounter.count();
    if (finals >= sent.size) {
      drainedInTime = now() <= sustainDeadline;
      break;
    }
    if (now() > drainDeadline) break;
    await sleep(50);
  }
  polling = false;
  await poller;
  const cpuAfter = choreo.sample();
  const postgresAfter = postgresCpuSeconds(context.database);
  // The statistics collector publishes with a delay; give it a moment before reading the counters.
  await sleep(600);
  const transactionsAfter = await transactionCount(pool);
  const streamOpsAfter = await streamOpCounts(context.redis);
  const machineAfter = sampleMachine();
  const end = now();

  const rows = await pool.query<{ aggregate_id: string; event_type: string; at: string }>(
    `SELECT aggregate_id, event_type, (extract(epoch FROM occurred_at) * 1000)::float8::text AS at
     FROM events WHERE position > $1 AND event_type = ANY($2)`,
    [startPosition, ['CommandeCreee', ...FINAL_EVENTS]],
  );
  const eventCount = await pool.query<{ count: number }>(
    'SELECT count(*)::int AS count FROM events WHERE position > $1',
    [startPosition],
  );
  const created = new Map<string, number>();
  const finished = new Map<string, { at: number; type: string }>();
  for (const row of rows.rows) {
    const at = Number(row.at);
    if (row.event_type === 'CommandeCreee') created.set(row.aggregate_id, at);
    else finished.set(row.aggregate_id, { at, type: row.event_type });
  }
  const latencies: number[] = [];
  const sagaLatencies: number[] = [];
  const checkoutLatencies: number[] = [];
  let unexpectedOutcomes = 0;
  let lastFinal = start;
  let firstFinal = Number.POSITIVE_INFINITY;
  const buckets = new Map<number, { arrivals: number; latencies: number[] }>();
  const bucketOf = (at: number) => {
    const key = Math.floor((at - context.origin) / 1_000);
    const bucket = buckets.get(key) ?? { arrivals: 0, latencies: [] };
    buckets.set(key, bucket);
    return bucket;
  };
  for (const [commandeId, order] of sent) {
    checkoutLatencies.push(order.answeredAt - order.intended);
    bucketOf(order.intended).arrivals += 1;
    const final = finished.get(commandeId);
    if (!final) continue;
    if (final.type !== EXPECTED_FINAL[order.kind]) unexpectedOutcomes += 1;
    const latency = Math.max(0, final.at - order.intended);
    latencies.push(latency);
    bucketOf(final.at).latencies.push(latency);
    const createdAt = created.get(commandeId);
    if (createdAt !== undefined) sagaLatencies.push(final.at - createdAt);
    lastFinal = Math.max(lastFinal, final.at);
    firstFinal = Math.min(firstFinal, final.at);
  }
  const latency = percentiles(latencies);
  // Completions per second between the first and the last one: the arrival rate when the step kept up,
  // the rate at which the backlog drained when it did not.
  const windowSeconds = Math.max(0.001, (lastFinal - Math.min(firstFinal, lastFinal)) / 1_000);
  const timeline = [...buckets.entries()]
    .sort(([a], [b]) => a - b)
    .map(([key, bucket]) => {
      const p = percentiles(bucket.latencies);
      return {
        t: key,
        arrivals: bucket.arrivals,
        completions: bucket.latencies.length,
        p50: p.p50,
        p95: p.p95,
        p99: p.p99,
      };
    });

  const reasons: string[] = [];
  if (sent.size < orders.length * 0.99)
    reasons.push(`${orders.length - sent.size} checkouts refused or failed`);
  if (!drainedInTime) {
    const missing = sent.size - latencies.length;
    reasons.push(
      missing > 0
        ? `backlog: ${missing} never final`
        : `backlog: last final ${Math.round(lastFinal - lastDue)} ms after the last arrival (> ${context.drainGraceMs} ms)`,
    );
  }
  if (latency.p99 > context.p99BoundMs)
    reasons.push(`p99 ${Math.round(latency.p99)} ms > ${context.p99BoundMs} ms`);
  if (unexpectedOutcomes > 0) reasons.push(`${unexpectedOutcomes} orders ended in an unexpected state`);
  const wall = Math.max(0.001, (end - start) / 1_000);
  const choreoCores = cpuBefore && cpuAfter ? (cpuAfter.cpuSeconds - cpuBefore.cpuSeconds) / wall : 0;
  const machineCores = coresBusy(machineBefore, machineAfter);
  const choreoCpuMsPerSaga = (choreoCores * wall * 1_000) / Math.max(1, latencies.length);
  const machineCpuMsPerSaga = (machineCores * wall * 1_000) / Math.max(1, latencies.length);
  const postgresCpuMsPerSaga =
    (postgresCpuBetween(postgresBefore, postgresAfter) * 1_000) / Math.max(1, latencies.length);
  const transactionsPerSaga = (transactionsAfter - transactionsBefore) / Math.max(1, latencies.length);
  const perSaga = (command: keyof StreamOps) =>
    (streamOpsAfter[command] - streamOpsBefore[command]) / Math.max(1, latencies.length);
  const streamOpsPerSaga = {
    xadd: perSaga('xadd'),
    xreadgroup: perSaga('xreadgroup'),
    xack: perSaga('xack'),
  };
  progress.done(
    `${label}: ${rate}/s for ${seconds}s: ${latencies.length}/${sent.size} final, ` +
      `p50 ${Math.round(latency.p50)} ms, p99 ${Math.round(latency.p99)} ms, CPU per saga ` +
      `${choreoCpuMsPerSaga.toFixed(1)} ms choreo / ${postgresCpuMsPerSaga.toFixed(1)} ms PostgreSQL / ` +
      `${machineCpuMsPerSaga.toFixed(1)} ms machine, ` +
      `${transactionsPerSaga.toFixed(1)} PG transactions and ` +
      `${(streamOpsPerSaga.xadd + streamOpsPerSaga.xreadgroup + streamOpsPerSaga.xack).toFixed(1)} stream commands per saga: ` +
      (reasons.length === 0 ? 'sustained' : reasons.join('; ')),
  );
  return {
    label,
    rate,
    seconds,
    planned: orders.length,
    accepted: sent.size,
    httpErrors,
    completed: latencies.length,
    unexpectedOutcomes,
    sustained: reasons.length === 0,
    why: reasons.length === 0 ? 'sustained' : reasons.join('; '),
    completedPerSecond: Math.max(0, latencies.length - 1) / windowSeconds,
    eventsPerSecond: (eventCount.rows[0]?.count ?? 0) / windowSeconds,
    latency,
    sagaLatency: percentiles(sagaLatencies),
    checkoutLatency: percentiles(checkoutLatencies),
    choreoCores,
    machineCores,
    choreoCpuMsPerSaga,
    machineCpuMsPerSaga,
    postgresCpuMsPerSaga,
    transactionsPerSaga,
    streamOpsPerSaga,
    peakRssMb: cpuAfter?.peakRssMb ?? 0,
    timeline,
  };
}
