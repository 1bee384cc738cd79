import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Redis } from 'ioredis';
import { COUNTED_SAGA_COST, runCeiling, type SagaCost } from './lib/ceiling.js';
import { sagaChart } from './lib/chart.js';
import { dropDatabase, postgresVersion } from './lib/databases.js';
import { BUSES, type Bus, parseOptions, runs } from './lib/options.js';
import { machineInfo } from './lib/proc-stats.js';
import { Progress, section } from './lib/progress.js';
import { runReplayBench } from './lib/replay-bench.js';
import { type BenchReport, machineLine, markdown, textTable } from './lib/report.js';
import { runSagaBench, type SagaBenchResult } from './lib/saga-bench.js';
import { runStoreBench } from './lib/store-bench.js';

/**
 * `npm run bench [-- --quick] [--bus redis|postgres] [--profile] [--only saga,ceiling,store,peer,replay] [--rate N] ...`
 * Measures choreo on this machine's PostgreSQL and Redis, the saga section once per bus, and writes
 * bench/results/<stamp>.{json,md} and <stamp>-<bus>.svg.
 */
async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const began = Date.now();
  const progress = new Progress();
  const redis = new Redis(options.redisUrl, { lazyConnect: false });
  const redisInfo = await redis.info('server');
  redis.disconnect();
  const machine = machineInfo(
    await postgresVersion(options.adminUrl),
    /redis_version:(\S+)/.exec(redisInfo)?.[1] ?? 'unknown',
  );
  process.stderr.write(`choreo bench (${options.quick ? 'quick' : 'full'}) on ${machineLine(machine)}\n`);

  const report: BenchReport = {
    startedAt: new Date(began).toISOString(),
    mode: options.quick ? 'quick' : 'full',
    machine,
    saga: { redis: null, postgres: null },
    ceiling: null,
    store: null,
    peer: null,
    replay: null,
    durationSeconds: 0,
  };
  if (runs(options, 'saga')) {
    for (const bus of options.buses) {
      section(
        `sagas on the ${BUS_NAMES[bus]} bus: open-loop checkouts against choreo started with npm start’s command, ACTORS=all, BUS=${bus}`,
      );
      report.saga[bus] = await runSagaBench(options, bus);
    }
  }
  if (runs(options, 'ceiling')) {
    section('the machine’s ceiling: raw pg + ioredis, the operations one saga cost in the saga section');
    report.ceiling = await runCeiling(
      options.adminUrl,
      options.redisUrl,
      options.ceilingSeconds,
      measuredSagaCost(report.saga.redis) ?? measuredSagaCost(report.saga.postgres) ?? COUNTED_SAGA_COST,
      progress,
    );
    await dropDatabase(options.adminUrl, 'choreo_bench_ceiling');
  }
  if (runs(options, 'store') || runs(options, 'peer')) {
    section('event store: appends and reads, choreo and Emmett’s PostgreSQL event store taking turns');
    const { store, peer } = await runStoreBench(
      options.adminUrl,
      options.storeSeconds,
      options.storeRounds,
      runs(options, 'peer'),
      progress,
    );
    report.store = store;
    report.peer = peer;
    await dropDatabase(options.adminUrl, 'choreo_bench_store');
    // Emmett's database is left to the next run: its pool may still hold connections that a forced drop
    // would kill under it.
  }
  if (runs(options, 'replay')) {
    section('replay: rehydration, in-memory fold, projection rebuild');
    report.replay = await runReplayBench(options.adminUrl, options.replayOrders, progress);
    await dropDatabase(options.adminUrl, 'choreo_bench_replay');
  }
  report.durationSeconds = (Date.now() - began) / 1_000;

  const directory = resolve(import.meta.dirname, 'results');
  mkdirSync(directory, { recursive: true });
  const stamp = `${report.startedAt.replace(/[:.]/g, '-')}-${report.mode}`;
  const files = [`${stamp}.json`, `${stamp}.md`];
  writeFileSync(resolve(directory, `${stamp}.json`), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(resolve(directory, `${stamp}.md`), markdown(report));
  for (const bus of BUSES) {
    const saga = report.saga[bus];
    if (!saga) continue;
    writeFileSync(
      resolve(directory, `${stamp}-${bus}.svg`),
      sagaChart(
        saga.steps,
        `choreo ${report.mode} bench, ${bus} bus, ${report.startedAt}, ${machine.cores} × ${machine.cpuModel}`,
      ),
    );
    files.push(`${stamp}-${bus}.svg`);
  }
  console.log(`\n${textTable(report)}\n`);
  console.log(`machine: ${machineLine(machine)}`);
  console.log(
    `written: ${files.map((file) => `bench/results/${file}`).join(', ')} (${Math.round(report.durationSeconds)} s)`,
  );
  // The saga databases (choreo_bench_redis, choreo_bench_postgres) are kept until the next run, for inspection.
}

const BUS_NAMES: Record<Bus, string> = { redis: 'Redis Streams', postgres: 'PostgreSQL' };

/**
 * What a saga cost at the highest rate sustained (or, if none was, at the last rate tried). The ceiling
 * replays the Redis bus's cost when it ran: raw pg + ioredis is that bus's bare I/O.
 */
function measuredSagaCost(saga: SagaBenchResult | null): SagaCost | null {
  const step = saga?.best ?? saga?.steps.at(-1);
  if (!saga || !step || step.completed === 0) return null;
  return {
    transactions: step.transactionsPerSaga,
    ...step.streamOpsPerSaga,
    bus: saga.bus,
    source: `measured at ${step.rate}/s on the ${saga.bus} bus in the saga section`,
  };
}

main().catch((error: unknown) => {
  console.error('bench failed:', error);
  process.exit(1);
});
