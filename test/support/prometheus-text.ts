import type { HttpClient } from './http-client.js';

/** One sample of the Prometheus text exposition format. */
export interface MetricSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SAMPLE_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL_PAIR = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

function parseValue(raw: string): number {
  if (raw === '+Inf') return Number.POSITIVE_INFINITY;
  if (raw === '-Inf') return Number.NEGATIVE_INFINITY;
  return Number(raw);
}

function unescapeLabelValue(value: string): string {
  return value.replace(/\\(.)/g, (_match, char: string) => (char === 'n' ? '\n' : char));
}

/** Parses what GET /metrics answers (comments skipped); throws on a line it cannot read. */
export function parsePrometheusText(text: string): MetricSample[] {
  const samples: MetricSample[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const match = SAMPLE_LINE.exec(line);
    if (!match) throw new Error(`unreadable metrics line: ${line}`);
    const [, name = '', labelText = '', rawValue = ''] = match;
    const labels: Record<string, string> = {};
    for (const [, key = '', value = ''] of labelText.matchAll(LABEL_PAIR)) {
      labels[key] = unescapeLabelValue(value);
    }
    samples.push({ name, labels, value: parseValue(rawValue) });
  }
  return samples;
}

/** The samples of a scrape, looked up by name and (a subset of) labels. */
export class MetricsSnapshot {
  constructor(readonly samples: MetricSample[]) {}

  static parse(text: string): MetricsSnapshot {
    return new MetricsSnapshot(parsePrometheusText(text));
  }

  select(name: string, labels: Record<string, string> = {}): MetricSample[] {
    return this.samples.filter(
      (sample) =>
        sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
    );
  }

  /** The sum of the matching samples; 0 when there is none. */
  sum(name: string, labels: Record<string, string> = {}): number {
    return this.select(name, labels).reduce((total, sample) => total + sample.value, 0);
  }

  /** Label value → sample value, for a metric with one label of interest. */
  byLabel(name: string, label: string): Record<string, number> {
    const values: Record<string, number> = {};
    for (const sample of this.select(name)) {
      const key = sample.labels[label] ?? '';
      values[key] = (values[key] ?? 0) + sample.value;
    }
    return values;
  }
}

/**
 * Every sample name a /metrics text declares in its `# TYPE` lines, series or not: a counter with labels
 * that has not counted anything yet is declared but has no sample.
 */
export function declaredMetricNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const [, name = '', type = ''] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const suffixes =
      type === 'histogram'
        ? ['_bucket', '_sum', '_count']
        : type === 'summary'
          ? ['_sum', '_count', '']
          : [''];
    for (const suffix of suffixes) names.add(`${name}${suffix}`);
  }
  return names;
}

/** GET /metrics, parsed; throws when it does not answer 200. */
export async function scrapeMetrics(api: HttpClient): Promise<MetricsSnapshot> {
  const response = await api.get('/metrics');
  if (response.status !== 200) throw new Error(`GET /metrics answered ${response.status}: ${response.text}`);
  return MetricsSnapshot.parse(response.text);
}
