import type { CeilingResult } from './ceiling.js';
import type { ExplorerCounts } from './explorer-clients.js';
import type { ExplorersResult } from './explorers-step.js';
import { BUSES, type Bus } from './options.js';
import type { MachineInfo } from './proc-stats.js';
import type { ReplayResult } from './replay-bench.js';
import type { SagaBenchResult } from './saga-bench.js';
import type { StepResult } from './saga-step.js';
import type { PeerResult, StoreResult } from './store-bench.js';

export interface BenchReport {
  startedAt: string;
  mode: 'quick' | 'full';
  machine: MachineInfo;
  /** The saga section once per bus, each on its own choreo and a fresh database; null when not run. */
  saga: Record<Bus, SagaBenchResult | null>;
  ceiling: CeilingResult | null;
  store: StoreResult | null;
  peer: PeerResult | null;
  replay: ReplayResult | null;
  durationSeconds: number;
}

export interface Row {
  section: string;
  metric: string;
  value: string;
  reference: string;
  target: string;
}

const fmt = (value: number, digits = 0): string =>
  value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const verdict = (ok: boolean): string => (ok ? 'met' : 'NOT met');

/** One line of the saga section: a metric, its value on each bus that ran, the target and its verdicts. */
export interface SagaRow {
  metric: string;
  values: Partial<Record<Bus, string>>;
  target: string;
}

const BUS_LABELS: Record<Bus, string> = { redis: 'Redis Streams bus', postgres: 'PostgreSQL bus' };

function sagasRun(report: BenchReport): SagaBenchResult[] {
  return BUSES.flatMap((bus) => report.saga[bus] ?? []);
}

/** `label: met` for each bus, for a target every bus is held to. */
function verdicts(sagas: SagaBenchResult[], ok: (saga: SagaBenchResult) => boolean | null): string {
  return sagas
    .map((saga) => {
      const result = ok(saga);
      return `${saga.bus} ${result === null ? 'n/a' : verdict(result)}`;
    })
    .join(', ');
}

/** A step of the rate search (or the fixed rate), not the warm-up, the half-rate steps or the soak. */
const isSearchStep = (label: string): boolean =>
  label !== 'warm-up' && !label.startsWith('half rate') && label !== 'soak';

const msTriple = (a: number, b: number, c: number): string => `${fmt(a, 1)} / ${fmt(b, 1)} / ${fmt(c, 1)}`;

/** The saga section side by side, one column per bus, each from its own choreo and fresh database. */
export function sagaRows(report: BenchReport): SagaRow[] {
  const sagas = sagasRun(report);
  if (sagas.length === 0) return [];
  const row = (metric: string, value: (saga: SagaBenchResult) => string, target = ''): SagaRow => ({
    metric,
    values: Object.fromEntries(sagas.map((saga) => [saga.bus, value(saga)])),
    target,
  });
  const best = (saga: SagaBenchResult) => saga.best;
  const half = (saga: SagaBenchResult) => saga.halfRate;
  const firstFailed = (saga: SagaBenchResult) =>
    saga.steps.find((s) => !s.sustained && isSearchStep(s.label));
  const lost = (saga: SagaBenchResult) =>
    saga.deadLetters === 0 && saga.expired === 0 && saga.neverFinal === 0;
  return [
    row(
      'highest rate sustained (checkouts/s offered)',
      (saga) =>
        `${fmt(saga.sustainedRate)} (${saga.steps.filter((s) => isSearchStep(s.label)).length} steps)`,
      `>= 1,000: ${verdicts(sagas, (saga) => saga.sustainedRate >= 1_000)}`,
    ),
    row('first rate not sustained', (saga) => {
      const failed = firstFailed(saga);
      return failed
        ? `${fmt(failed.rate)}/s (${fmt(failed.completedPerSecond)} done/s, p99 ${fmt(failed.latency.p99)} ms)`
        : 'none';
    }),
    row('sustained: sagas/s, events/s', (saga) => {
      const step = best(saga);
      return step ? `${fmt(step.completedPerSecond)}, ${fmt(step.eventsPerSecond)}` : '-';
    }),
    row('sustained: CPU per saga, choreo / PostgreSQL / machine (ms)', (saga) => {
      const step = best(saga);
      return step
        ? msTriple(step.choreoCpuMsPerSaga, step.postgresCpuMsPerSaga, step.machineCpuMsPerSaga)
        : '-';
    }),
    row('sustained: PostgreSQL transactions, Redis stream commands per saga', (saga) => {
      const step = best(saga);
      if (!step) return '-';
      const ops = step.streamOpsPerSaga;
      return `${fmt(step.transactionsPerSaga, 1)}, ${fmt(ops.xadd + ops.xreadgroup + ops.xack, 1)}`;
    }),
    row(
      'half rate: latency p50 / p99 (p95, max), ms',
      (saga) => {
        const step = half(saga);
        return step
          ? `${fmt(step.latency.p50)} / ${fmt(step.latency.p99)} (${fmt(step.latency.p95)}, ${fmt(step.latency.max)}) at ${fmt(step.rate)}/s`
          : '-';
      },
      `p50 <= 10, p99 <= 50: ${verdicts(sagas, (saga) => {
        const step = half(saga);
        return step ? step.latency.p50 <= 10 && step.latency.p99 <= 50 : null;
      })}`,
    ),
    row('half rate: saga only (CommandeCreee → final) p50 / p99, ms', (saga) => {
      const step = half(saga);
      return step ? `${fmt(step.sagaLatency.p50)} / ${fmt(step.sagaLatency.p99)}` : '-';
    }),
    row('half rate: CPU per saga, choreo / PostgreSQL / machine (ms)', (saga) => {
      const step = half(saga);
      return step
        ? msTriple(step.choreoCpuMsPerSaga, step.postgresCpuMsPerSaga, step.machineCpuMsPerSaga)
        : '-';
    }),
    row('half rate: checkout HTTP answer p50 / p99, ms', (saga) => {
      const step = half(saga);
      return step ? `${fmt(step.checkoutLatency.p50)} / ${fmt(step.checkoutLatency.p99)}` : '-';
    }),
    row('half rate: each hop published / handled, p50 / p99 ms', (saga) =>
      saga.halfRateHops
        ? `${fmt(saga.halfRateHops.published.p50, 1)} / ${fmt(saga.halfRateHops.published.p99, 1)}; ${fmt(saga.halfRateHops.handled.p50, 1)} / ${fmt(saga.halfRateHops.handled.p99, 1)} (${fmt(saga.halfRateHops.handled.count)} hops)`
        : 'Redis bus only',
    ),
    row(
      'choreo peak RSS (VmHWM), all actors',
      (saga) => `${fmt(saga.choreoPeakRssMb)} MB after ${fmt(saga.totalOrders)} orders`,
      sagas.every((saga) => saga.totalOrders >= 100_000)
        ? `<= 250 MB after 100k orders: ${verdicts(sagas, (saga) => saga.choreoPeakRssMb <= 250)}`
        : '<= 250 MB after 100k orders: not run to 100k (--soak-orders 100000)',
    ),
    row(
      'lost orders: dead letters / expired / never final',
      (saga) =>
        `${saga.deadLetters === null ? '?' : fmt(saga.deadLetters)} / ${fmt(saga.expired)} / ${fmt(saga.neverFinal)}`,
      `0 / 0 / 0: ${verdicts(sagas, lost)}`,
    ),
    row(
      'bus in use (/ready); entries in its Redis streams',
      (saga) => `${saga.reportedBus ?? '?'}; ${fmt(saga.redisStreamEntries)}`,
      `the bus asked for: ${sagas.map((saga) => `${saga.bus} ${saga.busHonoured ? 'yes' : 'NO'}`).join(', ')}`,
    ),
  ];
}

/**
 * The half-rate step without explorers and the same step right after it with explorers open, side by
 * side for each bus: one header line and rows of cells.
 */
export function explorerTable(report: BenchReport): string[][] {
  const runs = sagasRun(report).flatMap((saga) =>
    saga.explorers && saga.halfRate ? [{ saga, without: saga.halfRate, explorers: saga.explorers }] : [],
  );
  if (runs.length === 0) return [];
  const header = [
    'half rate, without and with explorers',
    ...runs.flatMap(({ saga, explorers }) => [
      `${saga.bus}, none`,
      `${saga.bus}, ${explorers.explorers} explorers`,
    ]),
  ];
  const row = (
    metric: string,
    value: (step: StepResult) => string,
    withExplorers: (explorers: ExplorersResult) => string = (explorers) => value(explorers.step),
  ): string[] => [
    metric,
    ...runs.flatMap(({ without, explorers }) => [value(without), withExplorers(explorers)]),
  ];
  const sum = (explorers: ExplorersResult, key: keyof ExplorerCounts) =>
    explorers.perExplorer.reduce((total, counts) => total + counts[key], 0);
  const min = (explorers: ExplorersResult, key: keyof ExplorerCounts) =>
    Math.min(...explorers.perExplorer.map((counts) => counts[key]));
  return [
    header,
    row(
      'checkouts/s offered; orders final / accepted',
      (step) => `${fmt(step.rate)}; ${fmt(step.completed)} / ${fmt(step.accepted)}`,
    ),
    row(
      'latency p50 / p99 (max), ms',
      (step) => `${fmt(step.latency.p50)} / ${fmt(step.latency.p99)} (${fmt(step.latency.max)})`,
    ),
    row('CPU per saga, choreo / PostgreSQL / machine (ms)', (step) =>
      msTriple(step.choreoCpuMsPerSaga, step.postgresCpuMsPerSaga, step.machineCpuMsPerSaga),
    ),
    row(
      'cores busy, choreo / machine',
      (step) => `${fmt(step.choreoCores, 2)} / ${fmt(step.machineCores, 2)}`,
    ),
    row(
      'pushed per explorer per second: KiB, messages (changes)',
      () => '-',
      (explorers) =>
        `${fmt(explorers.bytesPerExplorerPerSecond / 1024, 1)} KiB, ${fmt(explorers.messagesPerExplorerPerSecond, 1)} (${fmt(explorers.changesPerExplorerPerSecond)})`,
    ),
    row(
      'explorers told of every change; fewest changes, finals told',
      () => '-',
      (explorers) =>
        `${explorers.explorersThatSawAll}/${explorers.explorers}; ${fmt(min(explorers, 'changes'))} of ${fmt(explorers.expectedChanges)}, ${fmt(min(explorers, 'finals'))} of ${fmt(explorers.expectedFinals)}`,
    ),
    row(
      'truncated messages / resets / reconnects / invalid, all explorers',
      () => '-',
      (explorers) =>
        `${fmt(sum(explorers, 'truncatedMessages'))} / ${fmt(sum(explorers, 'resets'))} / ${fmt(sum(explorers, 'reconnects'))} / ${fmt(sum(explorers, 'invalid'))}`,
    ),
    row(
      'orders list reloads, all explorers',
      () => '-',
      (explorers) => fmt(sum(explorers, 'reloads')),
    ),
  ];
}

const EXPLORER_NOTE =
  'Each explorer: one GET /api/explorer/live?changes=all&overview=1 (the orders list\'s feed and the overview\'s), every message parsed and validated, the machine fetched at open, the orders list reloaded (at most once a second) on a reset or a truncated message. "Told of every change": one change per saga event committed during the step, and a final event for every order completed. The step with explorers runs right after the one without, on the same choreo.';

export function rows(report: BenchReport): Row[] {
  const out: Row[] = [];
  const { ceiling, store, peer, replay } = report;
  if (ceiling) {
    // The ceiling replays one bus's saga; choreo's share of it is that bus's.
    const replayed = ceiling.cost.bus ? report.saga[ceiling.cost.bus] : null;
    const done = replayed?.best?.completedPerSecond ?? null;
    out.push({
      section: 'ceiling',
      metric: 'raw pg + ioredis, same ops per saga',
      value: `${fmt(ceiling.sagasPerSecond)} sagas/s`,
      reference:
        `${fmt(ceiling.cost.transactions, 1)} tx + ${fmt(ceiling.cost.xadd + ceiling.cost.xreadgroup + ceiling.cost.xack, 1)} ` +
        `stream ops per saga, ${ceiling.cost.source}: ${fmt(ceiling.transactionsPerSecond)} tx/s + ${fmt(ceiling.redisOpsPerSecond)} stream ops/s`,
      target:
        done !== null && replayed
          ? `choreo (${replayed.bus} bus) >= 50 % of it: ${fmt((done / ceiling.sagasPerSecond) * 100)} %, ${verdict(done >= ceiling.sagasPerSecond / 2)}`
          : '',
    });
  }
  if (store) {
    store.appends.forEach((append, index) => {
      const other = peer?.appends[index];
      const inTransaction = store.appendsInTransaction[index];
      const ratio = other ? append.eventsPerSecond / other.eventsPerSecond : null;
      out.push({
        section: 'event store',
        metric: `appends, ${append.name} (events/s)`,
        value: fmt(append.eventsPerSecond),
        reference: [
          other ? `Emmett ${fmt(other.eventsPerSecond)}` : '',
          inTransaction ? `choreo in BEGIN/COMMIT ${fmt(inTransaction.eventsPerSecond)}` : '',
        ]
          .filter(Boolean)
          .join('; '),
        target: ratio === null ? '' : `x${fmt(ratio, 2)} (>= 1.5: ${verdict(ratio >= 1.5)})`,
      });
    });
    store.reads.forEach((read, index) => {
      const other = peer?.reads[index];
      out.push({
        section: 'event store',
        metric: `${read.name} (reads/s, 4 events each)`,
        value: fmt(read.perSecond),
        reference: other ? `Emmett ${fmt(other.perSecond)}` : '',
        target: other ? `x${fmt(read.perSecond / other.perSecond, 2)}` : '',
      });
    });
    out.push({
      section: 'event store',
      metric: store.catchUp.name,
      value: `${fmt(store.catchUp.eventsPerSecond)} events/s`,
      reference: '',
      target: '',
    });
  }
  if (replay) {
    for (const r of replay.rehydrated) {
      out.push({
        section: 'replay',
        metric: `orders rehydrated from PostgreSQL, ${r.concurrency} loop${r.concurrency > 1 ? 's' : ''}, ${r.batch === 1 ? 'one per read' : `${r.batch} per read`}`,
        value: `${fmt(r.ordersPerSecond)} orders/s`,
        reference: `${fmt(r.eventsPerSecond)} events/s, ${fmt(replay.orders)} orders`,
        target: `>= 5,000: ${verdict(r.ordersPerSecond >= 5_000)}`,
      });
    }
    out.push(
      {
        section: 'replay',
        metric: 'events folded through the order machine, in memory',
        value: `${fmt(replay.foldEventsPerSecond)} events/s`,
        reference: `with zod parsing: ${fmt(replay.parseAndFoldEventsPerSecond)}`,
        target: `>= 100,000: ${verdict(replay.foldEventsPerSecond >= 100_000)}`,
      },
      {
        section: 'replay',
        metric: 'projection rebuild from position 0',
        value: `${fmt(replay.projectionRebuildEventsPerSecond)} events/s`,
        reference: `${fmt(replay.events)} events`,
        target: '',
      },
    );
  }
  return out;
}

function pad(text: string, width: number): string {
  return text.length >= width ? text : text + ' '.repeat(width - text.length);
}

/** The saga section, one column per bus. */
export function sagaTextTable(report: BenchReport): string {
  const all = sagaRows(report);
  if (all.length === 0) return '';
  const buses = sagasRun(report).map((saga) => saga.bus);
  const header = ['saga section', ...buses.map((bus) => BUS_LABELS[bus]), 'target'];
  const cells = all.map((row) => [row.metric, ...buses.map((bus) => row.values[bus] ?? ''), row.target]);
  const widths = header.map((_, index) =>
    Math.max(...[header, ...cells].map((line) => (line[index] ?? '').length)),
  );
  const line = (values: string[]) => values.map((value, index) => pad(value, widths[index] ?? 0)).join('  ');
  return [
    line(header),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...cells.map(line),
    sagaNote(report),
  ].join('\n');
}

/** What a reader of the two columns must know. */
function sagaNote(report: BenchReport): string {
  const sagas = sagasRun(report);
  const notes = [
    `Each bus ran on its own choreo and a fresh database: ${sagas.map((saga) => `BUS=${saga.bus} on ${saga.database}`).join(', ')}.`,
  ];
  if (sagas.some((saga) => saga.bus !== 'redis')) {
    notes.push('The hop split reads XADD times off Redis stream entry ids: Redis bus only.');
  }
  const ignored = sagas.filter((saga) => !saga.busHonoured);
  if (ignored.length > 0) {
    notes.push(
      `This choreo did not honour BUS=${ignored.map((saga) => saga.bus).join(', ')}: that column does not measure the bus it names.`,
    );
  }
  return notes.join('\n');
}

export function textTable(report: BenchReport): string {
  const all = rows(report);
  const header: Row = {
    section: 'section',
    metric: 'metric',
    value: 'choreo',
    reference: 'reference',
    target: 'target',
  };
  const keys: (keyof Row)[] = ['section', 'metric', 'value', 'reference', 'target'];
  const widths = keys.map((key) => Math.max(...[header, ...all].map((row) => row[key].length)));
  const line = (row: Row) => keys.map((key, index) => pad(row[key], widths[index] ?? 0)).join('  ');
  const table = [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...all.map(line)].join('\n');
  return [sagaTextTable(report), explorerTextTable(report), all.length > 0 ? table : '']
    .filter(Boolean)
    .join('\n\n');
}

function explorerTextTable(report: BenchReport): string {
  const [header, ...cells] = explorerTable(report);
  if (!header) return '';
  const widths = header.map((_, index) =>
    Math.max(...[header, ...cells].map((line) => (line[index] ?? '').length)),
  );
  const line = (values: string[]) => values.map((value, index) => pad(value, widths[index] ?? 0)).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line), EXPLORER_NOTE].join(
    '\n',
  );
}

export function machineLine(machine: MachineInfo): string {
  return `${machine.cores} × ${machine.cpuModel}, ${machine.ramGb} GB RAM, Node ${machine.node}, PostgreSQL ${machine.postgres}, Redis ${machine.redis}; load average at start ${machine.loadAverage}`;
}

export function markdown(report: BenchReport): string {
  const all = rows(report);
  const lines = [
    `# choreo benchmark (${report.mode}), ${report.startedAt}`,
    '',
    `Machine: ${machineLine(report.machine)}. PostgreSQL, Redis, choreo and the load generator all run on it.`,
    '',
  ];
  const sagaTable = sagaRows(report);
  if (sagaTable.length > 0) {
    const buses = sagasRun(report).map((saga) => saga.bus);
    lines.push(
      `| saga section | ${buses.map((bus) => BUS_LABELS[bus]).join(' | ')} | target |`,
      `| --- | ${buses.map(() => '---').join(' | ')} | --- |`,
      ...sagaTable.map(
        (row) =>
          `| ${row.metric} | ${buses.map((bus) => row.values[bus] ?? '').join(' | ')} | ${row.target} |`,
      ),
      '',
      sagaNote(report).split('\n').join(' '),
      '',
    );
  }
  const [explorerHeader, ...explorerCells] = explorerTable(report);
  if (explorerHeader) {
    lines.push(
      `| ${explorerHeader.join(' | ')} |`,
      `| ${explorerHeader.map(() => '---').join(' | ')} |`,
      ...explorerCells.map((cells) => `| ${cells.join(' | ')} |`),
      '',
      EXPLORER_NOTE,
      '',
    );
  }
  if (all.length > 0) {
    lines.push(
      '| section | metric | choreo | reference | target |',
      '| --- | --- | --- | --- | --- |',
      ...all.map(
        (row) => `| ${row.section} | ${row.metric} | ${row.value} | ${row.reference} | ${row.target} |`,
      ),
    );
  }
  for (const saga of sagasRun(report)) {
    lines.push(
      '',
      `## Saga steps, ${BUS_LABELS[saga.bus]}`,
      '',
      '| step | rate/s | s | final/accepted | done/s | events/s | p50 | p95 | p99 | max | choreo cores | machine cores | choreo CPU ms/saga | PostgreSQL CPU ms/saga | machine CPU ms/saga | PG tx/saga | verdict |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
      ...saga.steps.map(
        (s) =>
          `| ${s.label} | ${s.rate} | ${s.seconds} | ${s.completed}/${s.accepted} | ${fmt(s.completedPerSecond)} | ${fmt(s.eventsPerSecond)} | ${fmt(s.latency.p50)} | ${fmt(s.latency.p95)} | ${fmt(s.latency.p99)} | ${fmt(s.latency.max)} | ${fmt(s.choreoCores, 2)} | ${fmt(s.machineCores, 2)} | ${fmt(s.choreoCpuMsPerSaga, 1)} | ${fmt(s.postgresCpuMsPerSaga, 1)} | ${fmt(s.machineCpuMsPerSaga, 1)} | ${fmt(s.transactionsPerSaga, 1)} | ${s.why} |`,
      ),
    );
  }
  lines.push('', `Run took ${fmt(report.durationSeconds)} s.`, '');
  return lines.join('\n');
}
