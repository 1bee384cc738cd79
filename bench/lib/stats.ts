export interface Percentiles {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentiles of a sample (ms). */
export function percentiles(values: readonly number[]): Percentiles {
  if (values.length === 0) return { count: 0, p50: 0, p95: 0, p99: 0, max: 0, mean: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p: number): number =>
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? 0;
  const sum = sorted.reduce((total, value) => total + value, 0);
  return {
    count: sorted.length,
    p50: rank(0.5),
    p95: rank(0.95),
    p99: rank(0.99),
    max: sorted.at(-1) ?? 0,
    mean: sum / sorted.length,
  };
}

export function round(value: number, digits = 1): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/** Runs `work` in `concurrency` loops until `seconds` pass; returns how many calls completed and the time taken. */
export async function timedLoops(
  concurrency: number,
  seconds: number,
  work: (worker: number, iteration: number) => Promise<void>,
): Promise<{ count: number; elapsedMs: number }> {
  const start = performance.now();
  const deadline = start + seconds * 1_000;
  let count = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      let iteration = 0;
      while (performance.now() < deadline) {
        await work(worker, iteration);
        iteration += 1;
        count += 1;
      }
    }),
  );
  return { count, elapsedMs: performance.now() - start };
}
