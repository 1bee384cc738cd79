import type { Registry } from 'prom-client';
import { runConservationAudit } from '../audit/conservation-audit.js';
import { METRIC } from '../observability/metrics.js';
import type { Pool } from '../persistence/database.js';

/** How the system stands, as the overview shows it beside the traffic the explorer saw itself. */
export interface SystemReading {
  /** Commandes in each state of the order machine now (the saga actors' counts); null if unreadable. */
  states: Record<string, number> | null;
  groups: { group: string; stream: string; lag: number | null; pending: number | null }[];
  deadLetters: number | null;
}

export interface AuditVerdict {
  ok: boolean;
  checked_at: string;
  stock_ecarts: number;
  argent_ecarts: number;
  commandes: number;
  en_cours: number;
}

type Sample = { labels: Record<string, string | number | undefined>; value: number };

async function samplesOf(registry: Registry, name: string): Promise<Sample[] | null> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return null;
  const reading = await metric.get();
  return reading.values.map((value) => ({ labels: value.labels, value: value.value }));
}

function label(sample: Sample, name: string): string {
  return String(sample.labels[name] ?? '');
}

/**
 * The scrape-time readings of /metrics (commandes by state, consumer groups' lag and pending entries, dead
 * letters waiting), taken from the process's registry: the same bounded, single-flight readings whichever
 * bus carries the events.
 */
export async function readSystem(registry: Registry): Promise<SystemReading> {
  const [states, lag, pending, deadLetters] = await Promise.all([
    samplesOf(registry, METRIC.commandesParEtat),
    samplesOf(registry, METRIC.consumerGroupLag),
    samplesOf(registry, METRIC.consumerGroupPending),
    samplesOf(registry, METRIC.deadLetterStreamLength),
  ]);
  const groups = new Map<string, SystemReading['groups'][number]>();
  const groupOf = (sample: Sample) => {
    const key = `${label(sample, 'group')} ${label(sample, 'stream')}`;
    let group = groups.get(key);
    if (!group) {
      group = { group: label(sample, 'group'), stream: label(sample, 'stream'), lag: null, pending: null };
      groups.set(key, group);
    }
    return group;
  };
  for (const sample of lag ?? []) groupOf(sample).lag = sample.value;
  for (const sample of pending ?? []) groupOf(sample).pending = sample.value;
  return {
    states:
      states === null || states.length === 0
        ? null
        : Object.fromEntries(states.map((sample) => [label(sample, 'etat'), sample.value])),
    groups: [...groups.values()].sort(
      (a, b) => a.stream.localeCompare(b.stream) || a.group.localeCompare(b.group),
    ),
    deadLetters: deadLetters?.[0]?.value ?? null,
  };
}

/** The conservation audit (GET /api/audit), reduced to its verdict. */
export async function auditVerdict(pool: Pool): Promise<AuditVerdict> {
  const report = await runConservationAudit(pool);
  return {
    ok: report.ok,
    checked_at: report.checked_at,
    stock_ecarts: report.stock.ecarts.length,
    argent_ecarts: report.argent.ecarts.length,
    commandes: report.commandes.total,
    en_cours: report.commandes.en_cours.length,
  };
}
