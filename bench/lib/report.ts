import type { CeilingResult } from './ceiling.js';
import type { MachineInfo } from './proc-stats.js';
import type { ReplayResult } from './replay-bench.js';
import type { SagaBenchResult } from './saga-bench.js';
import type { PeerResult, StoreResult } from './store-bench.js';

export interface BenchReport {
  startedAt: string;
  mode: 'quick' | 'full';
  machine: MachineInfo;
  saga: SagaBenchResult | null;
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

export function rows(report: BenchReport): Row[] {
  const out: Row[] = [];
  const { saga, ceiling, store, peer, replay } = report;
  if (saga) {
    const best = saga.best;
    const half = saga.halfRate;
    out.push({
      section: 'saga',
      metric: 'highest rate sustained (checkouts/s offered)',
      value: fmt(saga.sustainedRate),
      reference: `${saga.steps.filter((s) => s.label !== 'warm-up').length} steps tried`,
      target: `>= 1,000: ${verdict(saga.sustainedRate >= 1_000)}`,
    });
    if (best) {
      out.push(
        {
          section: 'saga',
          metric: 'completed sagas/s at that rate',
          value: fmt(best.completedPerSecond),
          reference: ceiling ? `ceiling ${fmt(ceiling.sagasPerSecond)}/s` : '',
          target: ceiling
            ? `>= 50 % of ceiling: ${fmt((best.completedPerSecond / ceiling.sagasPerSecond) * 100)} %, ${verdict(best.completedPerSecond >= ceiling.sagasPerSecond / 2)}`
            : '',
        },
        {
          section: 'saga',
          metric: 'events/s at that rate',
          value: fmt(best.eventsPerSecond),
          reference: `${fmt(best.transactionsPerSaga, 1)} PostgreSQL transactions per saga`,
          target: '',
        },
        {
          section: 'saga',
          metric: 'choreo CPU at that rate (cores; ms per saga)',
          value: `${fmt(best.choreoCores, 2)}; ${fmt(best.choreoCpuMsPerSaga, 1)} ms`,
          reference: `PostgreSQL (choreo's database) ${fmt(best.postgresCpuMsPerSaga, 1)} ms per saga; whole machine ${fmt(best.machineCores, 2)} of ${report.machine.cores} cores, ${fmt(best.machineCpuMsPerSaga, 1)} ms per saga`,
          target: '',
        },
      );
    }
    const failed = saga.steps.find((s) => !s.sustained && s.label !== 'warm-up' && s.label !== 'half rate');
    if (failed) {
      out.push({
        section: 'saga',
        metric: `first rate not sustained: ${fmt(failed.rate)}/s`,
        value: `${fmt(failed.completedPerSecond)} done/s`,
        reference: failed.why,
        target: '',
      });
    }
    if (half) {
      out.push(
        {
          section: 'saga',
          metric: `latency at ${fmt(half.rate)}/s (p50 / p95 / p99 / max, ms)`,
          value: `${fmt(half.latency.p50)} / ${fmt(half.latency.p95)} / ${fmt(half.latency.p99)} / ${fmt(half.latency.max)}`,
          reference: `saga only (CommandeCreee → final): ${fmt(half.sagaLatency.p50)} / ${fmt(half.sagaLatency.p99)} p50/p99`,
          target: `p50 <= 10, p99 <= 50: ${verdict(half.latency.p50 <= 10 && half.latency.p99 <= 50)}`,
        },
        ...(saga.halfRateHops
          ? [
              {
                section: 'saga',
                metric: 'each hop at that rate: published / handled (p50 / p99, ms)',
                value: `${fmt(saga.halfRateHops.published.p50, 1)} / ${fmt(saga.halfRateHops.published.p99, 1)}; ${fmt(saga.halfRateHops.handled.p50, 1)} / ${fmt(saga.halfRateHops.handled.p99, 1)}`,
                reference: `event inserted → XADD by the relay; XADD → next event inserted (${fmt(saga.halfRateHops.handled.count)} hops)`,
                target: '',
              },
            ]
          : []),
        {
          section: 'saga',
          metric: 'checkout HTTP answer at that rate (p50 / p99, ms)',
          value: `${fmt(half.checkoutLatency.p50)} / ${fmt(half.checkoutLatency.p99)}`,
          reference: `${half.completed}/${half.accepted} final`,
          target: '',
        },
      );
    }
    out.push({
      section: 'saga',
      metric: 'choreo peak RSS (VmHWM), all actors',
      value: `${fmt(saga.choreoPeakRssMb)} MB`,
      reference: `after ${fmt(saga.totalOrders)} orders; ${fmt(saga.choreoCpuSeconds, 1)} CPU s in total`,
      target: `<= 250 MB after 100k orders: ${saga.totalOrders >= 100_000 ? verdict(saga.choreoPeakRssMb <= 250) : 'not run to 100k (--soak-orders 100000)'}`,
    });
    out.push({
      section: 'saga',
      metric: 'dead letters / commandes expired / never final',
      value: `${fmt(saga.deadLetters)} / ${fmt(saga.expired)} / ${fmt(saga.neverFinal)}`,
      reference: `over ${fmt(saga.totalOrders)} orders`,
      target: `0 / 0 / 0: ${verdict(saga.deadLetters === 0 && saga.expired === 0 && saga.neverFinal === 0)}`,
    });
  }
  if (ceiling) {
    out.push({
      section: 'ceiling',
      metric: 'raw pg + ioredis, same ops per saga',
      value: `${fmt(ceiling.sagasPerSecond)} sagas/s`,
      reference:
        `${fmt(ceiling.cost.transactions, 1)} tx + ${fmt(ceiling.cost.xadd + ceiling.cost.xreadgroup + ceiling.cost.xack, 1)} ` +
        `stream ops per saga, ${ceiling.cost.source}: ${fmt(ceiling.transactionsPerSecond)} tx/s + ${fmt(ceiling.redisOpsPerSecond)} stream ops/s`,
      target: '',
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
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...all.map(line)].join('\n');
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
    '| section | metric | choreo | reference | target |',
    '| --- | --- | --- | --- | --- |',
    ...all.map(
      (row) => `| ${row.section} | ${row.metric} | ${row.value} | ${row.reference} | ${row.target} |`,
    ),
  ];
  if (report.saga) {
    lines.push(
      '',
      '## Saga steps',
      '',
      '| step | rate/s | s | final/accepted | done/s | events/s | p50 | p95 | p99 | max | choreo cores | machine cores | choreo CPU ms/saga | PostgreSQL CPU ms/saga | machine CPU ms/saga | PG tx/saga | verdict |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
      ...report.saga.steps.map(
        (s) =>
          `| ${s.label} | ${s.rate} | ${s.seconds} | ${s.completed}/${s.accepted} | ${fmt(s.completedPerSecond)} | ${fmt(s.eventsPerSecond)} | ${fmt(s.latency.p50)} | ${fmt(s.latency.p95)} | ${fmt(s.latency.p99)} | ${fmt(s.latency.max)} | ${fmt(s.choreoCores, 2)} | ${fmt(s.machineCores, 2)} | ${fmt(s.choreoCpuMsPerSaga, 1)} | ${fmt(s.postgresCpuMsPerSaga, 1)} | ${fmt(s.machineCpuMsPerSaga, 1)} | ${fmt(s.transactionsPerSaga, 1)} | ${s.why} |`,
      ),
    );
  }
  lines.push('', `Run took ${fmt(report.durationSeconds)} s.`, '');
  return lines.join('\n');
}
