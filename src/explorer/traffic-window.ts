/** What the explorer's overview shows of the last minutes' traffic, computed from the events seen. */
export interface TrafficReading {
  /** Transitions taken in the last minute, keyed `source --Event--> target`. */
  transitionsLastMinute: Record<string, number>;
  /** Orders that reached each final state, per second over the last 10 s. */
  completionsPerSecond: Record<string, number>;
  /** The same, second by second over the last minute (oldest first), for a sparkline. */
  completionsLastMinute: Record<string, number[]>;
  /** Checkout (CommandeCreee) to final state, over the last 5 minutes; null with no sample. */
  latencyMs: { p50: number | null; p99: number | null; samples: number };
}

const WINDOW_SECONDS = 60;
const RATE_SECONDS = 10;
const LATENCY_WINDOW_MS = 5 * 60_000;
const MAX_LATENCY_SAMPLES = 20_000;

/** Counts per key in one-second buckets over the last minute. */
class SecondBuckets {
  private readonly counts = new Map<string, number[]>();
  private readonly seconds: number[] = new Array(WINDOW_SECONDS).fill(-1);

  add(key: string, atMs: number): void {
    const second = Math.floor(atMs / 1_000);
    const slot = second % WINDOW_SECONDS;
    if (this.seconds[slot] !== second) {
      for (const buckets of this.counts.values()) buckets[slot] = 0;
      this.seconds[slot] = second;
    }
    let buckets = this.counts.get(key);
    if (!buckets) {
      buckets = new Array(WINDOW_SECONDS).fill(0);
      this.counts.set(key, buckets);
    }
    buckets[slot] = (buckets[slot] ?? 0) + 1;
  }

  /** Per key, the counts of the `span` seconds before `nowMs` (the current second excluded), oldest first. */
  series(nowMs: number, span: number): Map<string, number[]> {
    const current = Math.floor(nowMs / 1_000);
    const result = new Map<string, number[]>();
    for (const [key, buckets] of this.counts) {
      const values: number[] = [];
      for (let second = current - span; second < current; second++) {
        const slot = ((second % WINDOW_SECONDS) + WINDOW_SECONDS) % WINDOW_SECONDS;
        values.push(this.seconds[slot] === second ? (buckets[slot] ?? 0) : 0);
      }
      result.set(key, values);
    }
    return result;
  }
}

function percentile(sorted: readonly number[], fraction: number): number | null {
  if (sorted.length === 0) return null;
  const index = Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1);
  return sorted[Math.max(0, index)] ?? null;
}

/** The last minutes of transitions, completions and latencies, kept in memory in fixed space. */
export class TrafficWindow {
  private readonly transitions = new SecondBuckets();
  private readonly completions = new SecondBuckets();
  private latencies: { atMs: number; ms: number }[] = [];

  recordTransition(key: string, atMs: number): void {
    this.transitions.add(key, atMs);
  }

  recordCompletion(outcome: string, atMs: number, latencyMs: number | null): void {
    this.completions.add(outcome, atMs);
    if (latencyMs === null) return;
    this.latencies.push({ atMs, ms: latencyMs });
    if (this.latencies.length > MAX_LATENCY_SAMPLES) this.latencies.splice(0, MAX_LATENCY_SAMPLES / 4);
  }

  reading(nowMs: number, outcomes: readonly string[]): TrafficReading {
    const transitionsLastMinute: Record<string, number> = {};
    for (const [key, values] of this.transitions.series(nowMs + 1_000, WINDOW_SECONDS)) {
      const total = values.reduce((sum, value) => sum + value, 0);
      if (total > 0) transitionsLastMinute[key] = total;
    }
    const series = this.completions.series(nowMs, WINDOW_SECONDS);
    const completionsPerSecond: Record<string, number> = {};
    const completionsLastMinute: Record<string, number[]> = {};
    for (const outcome of outcomes) {
      const values = series.get(outcome) ?? new Array(WINDOW_SECONDS).fill(0);
      completionsLastMinute[outcome] = values;
      completionsPerSecond[outcome] =
        values.slice(-RATE_SECONDS).reduce((sum, value) => sum + value, 0) / RATE_SECONDS;
    }
    this.latencies = this.latencies.filter((sample) => sample.atMs > nowMs - LATENCY_WINDOW_MS);
    const sorted = this.latencies.map((sample) => sample.ms).sort((a, b) => a - b);
    return {
      transitionsLastMinute,
      completionsPerSecond,
      completionsLastMinute,
      latencyMs: { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), samples: sorted.length },
    };
  }
}
