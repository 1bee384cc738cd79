/** The transports choreo can carry its events on (env `BUS`); the saga section runs once per bus. */
export const BUSES = ['redis', 'postgres'] as const;
export type Bus = (typeof BUSES)[number];

/** What a run measures and for how long; `--quick` is the smoke run that CI executes. */
export interface BenchOptions {
  quick: boolean;
  /** Run choreo under `node --cpu-prof` and keep the profile under bench/results/profiles. */
  profile: boolean;
  /** Only these sections (saga, ceiling, store, peer, replay); all when empty. */
  only: string[];
  /** The buses the saga section runs on, in this order (`--bus redis`, `--bus postgres`; both by default). */
  buses: Bus[];
  adminUrl: string;
  redisUrl: string;
  /** Seconds of load per rate step, and for the run at half the sustained rate. */
  stepSeconds: number;
  halfRateSeconds: number;
  /** Rate search: first rate, growth factor, highest rate tried, steps at most. */
  startRate: number;
  rateFactor: number;
  maxRate: number;
  maxSteps: number;
  /** A step is sustained when every order is final this long after the last arrival, and p99 is under the bound. */
  drainGraceMs: number;
  /** How long to wait for a backlog to clear before the next step (a step that fell behind). */
  maxDrainMs: number;
  p99BoundMs: number;
  /**
   * Explorers open during a second half-rate step, run right after the first (0: no such step;
   * `--no-explorers` or `--explorers 0`).
   */
  explorers: number;
  /** Fixed rate to run instead of the search (with --rate). */
  fixedRate: number | null;
  /** After the search, keep ordering at half rate until this many orders were placed (RSS check). */
  soakOrders: number;
  stores: number;
  products: number;
  ceilingSeconds: number;
  storeSeconds: number;
  /** Each append workload runs this many times per store, alternating stores; the best round counts. */
  storeRounds: number;
  replayOrders: number;
}

function numberFlag(args: string[], name: string): number | null {
  const index = args.indexOf(`--${name}`);
  if (index < 0) return null;
  const value = Number(args[index + 1]);
  if (!Number.isFinite(value)) throw new Error(`--${name} needs a number`);
  return value;
}

function busesFlag(args: string[]): Bus[] {
  const index = args.indexOf('--bus');
  if (index < 0) return [...BUSES];
  const value = args[index + 1] ?? '';
  const names = value === 'both' ? [...BUSES] : value.split(',').filter(Boolean);
  const unknown = names.filter((name) => !(BUSES as readonly string[]).includes(name));
  if (names.length === 0 || unknown.length > 0) {
    throw new Error(`--bus takes ${BUSES.join(', ')}, a comma list of them, or both; not "${value}"`);
  }
  // Always in the same order, each once, so that runs compare column for column.
  return BUSES.filter((bus) => names.includes(bus));
}

export function parseOptions(args: string[]): BenchOptions {
  const quick = args.includes('--quick');
  const onlyIndex = args.indexOf('--only');
  const only = onlyIndex >= 0 ? (args[onlyIndex + 1] ?? '').split(',').filter(Boolean) : [];
  const base: BenchOptions = {
    quick,
    profile: args.includes('--profile'),
    only,
    buses: busesFlag(args),
    adminUrl: process.env.BENCH_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
    redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    stepSeconds: quick ? 2 : 8,
    halfRateSeconds: quick ? 2 : 15,
    startRate: quick ? 50 : 100,
    rateFactor: quick ? 2 : 1.5,
    maxRate: quick ? 100 : 3_000,
    maxSteps: quick ? 2 : 9,
    drainGraceMs: quick ? 3_000 : 2_000,
    maxDrainMs: quick ? 5_000 : 60_000,
    p99BoundMs: 1_000,
    explorers: args.includes('--no-explorers') ? 0 : 10,
    fixedRate: null,
    soakOrders: 0,
    stores: quick ? 3 : 8,
    products: quick ? 20 : 60,
    ceilingSeconds: quick ? 1.5 : 5,
    storeSeconds: quick ? 0.5 : 2,
    storeRounds: quick ? 1 : 3,
    replayOrders: quick ? 500 : 5_000,
  };
  const overrides: [keyof BenchOptions, string][] = [
    ['stepSeconds', 'step-seconds'],
    ['halfRateSeconds', 'half-seconds'],
    ['startRate', 'start-rate'],
    ['maxRate', 'max-rate'],
    ['maxSteps', 'max-steps'],
    ['explorers', 'explorers'],
    ['fixedRate', 'rate'],
    ['soakOrders', 'soak-orders'],
    ['ceilingSeconds', 'ceiling-seconds'],
    ['storeSeconds', 'store-seconds'],
    ['storeRounds', 'store-rounds'],
    ['replayOrders', 'replay-orders'],
  ];
  const options: Record<string, unknown> = { ...base };
  for (const [key, flag] of overrides) {
    const value = numberFlag(args, flag);
    if (value !== null) options[key] = value;
  }
  return options as unknown as BenchOptions;
}

export function runs(options: BenchOptions, section: string): boolean {
  return options.only.length === 0 || options.only.includes(section);
}
