import { randomUUID } from 'node:crypto';
import { getPostgreSQLEventStore } from '@event-driven-io/emmett-postgresql';
import pg from 'pg';
import type { NewEvent } from '../../src/domain/events.js';
import { createPool, withTransaction } from '../../src/persistence/database.js';
import { appendToStream, readAll, readStream } from '../../src/persistence/event-store.js';
import { migrate } from '../../src/persistence/migrate.js';
import { recreateDatabase } from './databases.js';
import type { Progress } from './progress.js';
import { timedLoops } from './stats.js';

export interface StoreWorkload {
  name: string;
  writers: number;
  eventsPerAppend: number;
}

export const APPEND_WORKLOADS: StoreWorkload[] = [
  { name: '1 writer, single events', writers: 1, eventsPerAppend: 1 },
  { name: '8 writers, single events', writers: 8, eventsPerAppend: 1 },
  { name: '1 writer, batches of 5', writers: 1, eventsPerAppend: 5 },
  { name: '8 writers, batches of 5', writers: 8, eventsPerAppend: 5 },
];

export interface Throughput {
  name: string;
  perSecond: number;
  eventsPerSecond: number;
}

export interface StoreResult {
  /** appendToStream(pool, ...): the append is its own transaction, like Emmett's appendToStream. */
  appends: Throughput[];
  /** appendToStream(tx, ...) inside withTransaction: BEGIN, INSERT, COMMIT, as the services append. */
  appendsInTransaction: Throughput[];
  reads: Throughput[];
  catchUp: Throughput;
}

const STREAMS_PER_WRITER = 50;
const DATA = {
  client_id: 42,
  magasin_id: 1,
  produits: [
    { produit_id: 1, quantite: 2, prix_unitaire: 5, sous_total: 10 },
    { produit_id: 5, quantite: 1, prix_unitaire: 5, sous_total: 5 },
  ],
  total: 15,
};

/** One append, in whichever store: stream name, the version it is at, how many events. */
type Append = (stream: string, expectedVersion: number, count: number) => Promise<void>;
type Read = (stream: string) => Promise<number>;

async function measureAppends(
  label: string,
  append: Append,
  seconds: number,
  progress: Progress,
): Promise<Throughput[]> {
  const results: Throughput[] = [];
  for (const workload of APPEND_WORKLOADS) {
    const versions = new Map<string, number>();
    const run = randomUUID().slice(0, 8);
    progress.update(`${label}: ${workload.name}`);
    const { count, elapsedMs } = await timedLoops(workload.writers, seconds, async (writer, iteration) => {
      const stream = `cmd-${run}-${writer}-${iteration % STREAMS_PER_WRITER}`;
      const version = versions.get(stream) ?? 0;
      await append(stream, version, workload.eventsPerAppend);
      versions.set(stream, version + workload.eventsPerAppend);
    });
    const perSecond = count / (elapsedMs / 1_000);
    results.push({ name: workload.name, perSecond, eventsPerSecond: perSecond * workload.eventsPerAppend });
  }
  progress.done(
    `${label}: ${results.map((r) => `${r.name} ${Math.round(r.eventsPerSecond)} ev/s`).join(', ')}`,
  );
  return results;
}

async function measureReads(
  label: string,
  streams: string[],
  read: Read,
  seconds: number,
  progress: Progress,
): Promise<Throughput[]> {
  const results: Throughput[] = [];
  for (const readers of [1, 8]) {
    progress.update(`${label}: reads with ${readers} readers`);
    let events = 0;
    const { count, elapsedMs } = await timedLoops(readers, seconds, async (reader, iteration) => {
      events += await read(streams[(reader * 7919 + iteration) % streams.length] as string);
    });
    results.push({
      name: `read one stream, ${readers} reader${readers > 1 ? 's' : ''}`,
      perSecond: count / (elapsedMs / 1_000),
      eventsPerSecond: events / (elapsedMs / 1_000),
    });
  }
  return results;
}

/** Fills a store with order-sized streams (4 events each) to read back. */
async function fillStreams(append: Append, count: number): Promise<string[]> {
  const streams = Array.from(
    { length: count },
    (_, index) => `cmd-read-${index}-${randomUUID().slice(0, 6)}`,
  );
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < streams.length) {
        const stream = streams[next++] as string;
        await append(stream, 0, 4);
      }
    }),
  );
  return streams;
}

export async function runChoreoStore(
  adminUrl: string,
  seconds: number,
  progress: Progress,
): Promise<StoreResult> {
  const url = await recreateDatabase(adminUrl, 'choreo_bench_store');
  const pool = createPool(url, 10);
  try {
    await migrate(pool);
    const newEvents = (count: number): NewEvent[] =>
      Array.from({ length: count }, () => ({
        event_type: 'CommandeCreee',
        source: 'bench',
        causation_id: null,
        data: DATA,
      })) as NewEvent[];
    const append: Append = (stream, version, count) =>
      appendToStream(pool, stream, version, newEvents(count)).then(() => undefined);
    const appendInTransaction: Append = (stream, version, count) =>
      withTransaction(pool, (tx) => appendToStream(tx, stream, version, newEvents(count))).then(
        () => undefined,
      );
    const appends = await measureAppends('choreo appends', append, seconds, progress);
    const appendsInTransaction = await measureAppends(
      'choreo appends in BEGIN/COMMIT',
      appendInTransaction,
      seconds,
      progress,
    );
    const streams = await fillStreams(append, 500);
    const reads = await measureReads(
      'choreo',
      streams,
      async (stream) => (await readStream(pool, stream)).length,
      seconds,
      progress,
    );
    progress.update('choreo: catch-up read of the whole store');
    let after = 0;
    let total = 0;
    const start = performance.now();
    for (;;) {
      const batch = await readAll(pool, { after, limit: 1_000 });
      const last = batch.at(-1);
      if (!last) break;
      total += batch.length;
      after = last.position;
    }
    const elapsed = (performance.now() - start) / 1_000;
    const catchUp = {
      name: `catch-up read of ${total} events`,
      perSecond: total / elapsed,
      eventsPerSecond: total / elapsed,
    };
    progress.done(
      `choreo reads: ${reads.map((r) => `${r.name} ${Math.round(r.perSecond)}/s`).join(', ')}; catch-up ${Math.round(catchUp.eventsPerSecond)} ev/s`,
    );
    return { appends, appendsInTransaction, reads, catchUp };
  } finally {
    await pool.end();
  }
}

export interface PeerResult {
  appends: Throughput[];
  reads: Throughput[];
}

/** The same workloads on Emmett's PostgreSQL event store, in its own database on the same server. */
export async function runEmmettStore(
  adminUrl: string,
  seconds: number,
  progress: Progress,
): Promise<PeerResult> {
  const url = await recreateDatabase(adminUrl, 'choreo_bench_emmett');
  const store = getPostgreSQLEventStore(url);
  try {
    const append: Append = async (stream, version, count) => {
      await store.appendToStream(
        stream,
        Array.from({ length: count }, () => ({ type: 'CommandeCreee', data: DATA })),
        { expectedStreamVersion: BigInt(version) },
      );
    };
    await append(`warm-up-${randomUUID()}`, 0, 1); // creates the schema
    const appends = await measureAppends('emmett appends', append, seconds, progress);
    const streams = await fillStreams(append, 500);
    const reads = await measureReads(
      'emmett',
      streams,
      async (stream) => (await store.readStream(stream)).events.length,
      seconds,
      progress,
    );
    progress.done(`emmett reads: ${reads.map((r) => `${r.name} ${Math.round(r.perSecond)}/s`).join(', ')}`);
    return { appends, reads };
  } finally {
    await store.close();
    // Emmett's driver layer parses int8 as BigInt process-wide; give choreo's parsing back.
    pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number.parseInt(value, 10));
  }
}
