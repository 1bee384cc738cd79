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

async function measureAppend(workload: StoreWorkload, append: Append, seconds: number): Promise<Throughput> {
  const versions = new Map<string, number>();
  const run = randomUUID().slice(0, 8);
  const { count, elapsedMs } = await timedLoops(workload.writers, seconds, async (writer, iteration) => {
    const stream = `cmd-${run}-${writer}-${iteration % STREAMS_PER_WRITER}`;
    const version = versions.get(stream) ?? 0;
    await append(stream, version, workload.eventsPerAppend);
    versions.set(stream, version + workload.eventsPerAppend);
  });
  const perSecond = count / (elapsedMs / 1_000);
  return { name: workload.name, perSecond, eventsPerSecond: perSecond * workload.eventsPerAppend };
}

const best = (a: Throughput | undefined, b: Throughput): Throughput =>
  a && a.eventsPerSecond >= b.eventsPerSecond ? a : b;

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

/**
 * choreo's event store and, when asked, Emmett's on the same server, each in its own database. The
 * append workloads alternate between the stores, `rounds` times, and the best round of each counts:
 * the machine is shared, and what runs at the same moment is what can be compared.
 */
export async function runStoreBench(
  adminUrl: string,
  seconds: number,
  rounds: number,
  withPeer: boolean,
  progress: Progress,
): Promise<{ store: StoreResult; peer: PeerResult | null }> {
  // choreo's own pool, as choreo runs its event store (prepared statements, int8 as numbers).
  const pool = createPool(await recreateDatabase(adminUrl, 'choreo_bench_store'), 10);
  const emmett = withPeer
    ? getPostgreSQLEventStore(await recreateDatabase(adminUrl, 'choreo_bench_emmett'))
    : null;
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
    const emmettAppend: Append = async (stream, version, count) => {
      await emmett?.appendToStream(
        stream,
        Array.from({ length: count }, () => ({ type: 'CommandeCreee', data: DATA })),
        { expectedStreamVersion: BigInt(version) },
      );
    };
    if (emmett) await emmettAppend(`warm-up-${randomUUID()}`, 0, 1); // creates its schema

    const appends: Throughput[] = [];
    const appendsInTransaction: Throughput[] = [];
    const peerAppends: Throughput[] = [];
    for (const [index, workload] of APPEND_WORKLOADS.entries()) {
      for (let round = 1; round <= rounds; round += 1) {
        progress.update(`appends, ${workload.name}, round ${round}/${rounds}`);
        const measureChoreo = async () => {
          appends[index] = best(appends[index], await measureAppend(workload, append, seconds));
        };
        const measurePeer = async () => {
          if (emmett)
            peerAppends[index] = best(
              peerAppends[index],
              await measureAppend(workload, emmettAppend, seconds),
            );
        };
        // Which store goes first changes with the round: on this kind of VM the first measurement after a
        // switch can be slower, and neither store should always take that turn.
        if (round % 2 === 1) {
          await measureChoreo();
          await measurePeer();
        } else {
          await measurePeer();
          await measureChoreo();
        }
        appendsInTransaction[index] = best(
          appendsInTransaction[index],
          await measureAppend(workload, appendInTransaction, seconds),
        );
      }
      const line = [`choreo ${Math.round(appends[index]?.eventsPerSecond ?? 0)}`];
      if (emmett) line.push(`Emmett ${Math.round(peerAppends[index]?.eventsPerSecond ?? 0)}`);
      line.push(`choreo in BEGIN/COMMIT ${Math.round(appendsInTransaction[index]?.eventsPerSecond ?? 0)}`);
      progress.done(`appends, ${workload.name}: ${line.join(', ')} events/s`);
    }

    const streams = await fillStreams(append, 500);
    const reads = await measureReads(
      'choreo',
      streams,
      async (stream) => (await readStream(pool, stream)).length,
      seconds,
      progress,
    );
    let peerReads: Throughput[] = [];
    if (emmett) {
      const emmettStreams = await fillStreams(emmettAppend, 500);
      peerReads = await measureReads(
        'emmett',
        emmettStreams,
        async (stream) => (await emmett.readStream(stream)).events.length,
        seconds,
        progress,
      );
    }
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
      `reads: ${reads.map((r) => `${r.name} ${Math.round(r.perSecond)}/s`).join(', ')}` +
        (emmett ? ` (Emmett ${peerReads.map((r) => `${Math.round(r.perSecond)}/s`).join(', ')})` : '') +
        `; catch-up ${Math.round(catchUp.eventsPerSecond)} ev/s`,
    );
    return {
      store: { appends, appendsInTransaction, reads, catchUp },
      peer: emmett ? { appends: peerAppends, reads: peerReads } : null,
    };
  } finally {
    await pool.end();
    if (emmett) {
      await emmett.close();
      // Emmett's driver layer parses int8 as BigInt process-wide; give choreo's parsing back.
      pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number.parseInt(value, 10));
    }
  }
}

export interface PeerResult {
  appends: Throughput[];
  reads: Throughput[];
}
