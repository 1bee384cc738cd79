import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { freePort } from './free-port.js';

const PROMETHEUS_BIN = process.env.PROMETHEUS_BIN ?? 'prometheus';

/**
 * Fails, with what to do about it, when the Prometheus binary is missing (a test file that needs it says
 * so with describeNeeding(['prometheus'], …), which skips it, or fails it in CI, before getting here).
 */
export function assertPrometheusInstalled(): void {
  const probe = spawnSync(PROMETHEUS_BIN, ['--version'], { encoding: 'utf8' });
  if (probe.error === undefined && probe.status === 0) return;
  const why = probe.error?.message ?? `exit status ${probe.status}: ${probe.stderr}`;
  throw new Error(
    `Prometheus is needed by this test but "${PROMETHEUS_BIN}" does not run (${why}). ` +
      '.ci/run installs it (apt-get install -y prometheus, the Debian package); run that, ' +
      'or point PROMETHEUS_BIN at a Prometheus 2.x binary.',
  );
}

export interface PromSample {
  labels: Record<string, string>;
  value: number;
}

export type PromQueryResult = { ok: true; samples: PromSample[] } | { ok: false; error: string };

const pointSchema = z.tuple([z.number(), z.string()]);
const responseSchema = z.object({
  status: z.enum(['success', 'error']),
  data: z
    .discriminatedUnion('resultType', [
      z.object({
        resultType: z.literal('vector'),
        result: z.array(z.object({ metric: z.record(z.string(), z.string()), value: pointSchema })),
      }),
      z.object({
        resultType: z.literal('matrix'),
        result: z.array(z.object({ metric: z.record(z.string(), z.string()), values: z.array(pointSchema) })),
      }),
      z.object({ resultType: z.literal('scalar'), result: pointSchema }),
      z.object({ resultType: z.literal('string'), result: pointSchema }),
    ])
    .optional(),
  errorType: z.string().optional(),
  error: z.string().optional(),
});
const labelValuesSchema = z.object({ status: z.literal('success'), data: z.array(z.string()) });

/** Prometheus writes "NaN", "+Inf" and "-Inf" as strings. */
function sampleValue(text: string): number {
  if (text === '+Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  return Number(text);
}

export interface PrometheusServerOptions {
  /** host:port of the process to scrape. */
  target: string;
  job: string;
  scrapeIntervalSeconds: number;
  /** The bearer token Prometheus sends with each scrape (choreo's /metrics wants staff or the metrics token). */
  bearerToken: string;
}

/** A real Prometheus (the Debian binary) in a child process, with its own port and a throwaway TSDB. */
export class PrometheusServer {
  private readonly output: string[] = [];
  private exited: Promise<void>;
  private readonly killOnExit = (): void => {
    this.child.kill('SIGKILL');
  };

  private constructor(
    private readonly child: ChildProcess,
    private readonly directory: string,
    readonly baseUrl: string,
  ) {
    for (const stream of [child.stdout, child.stderr]) {
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        this.output.push(...chunk.split('\n').filter(Boolean));
        this.output.splice(0, Math.max(this.output.length - 40, 0));
      });
    }
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    // A test run that dies without its afterAll must not leave a Prometheus behind.
    process.once('exit', this.killOnExit);
  }

  static async start(options: PrometheusServerOptions): Promise<PrometheusServer> {
    assertPrometheusInstalled();
    const directory = await mkdtemp(join(tmpdir(), 'choreo-prometheus-'));
    // As docker-compose's Prometheus does: the token in a file only its user reads, named by the config.
    const tokenFile = join(directory, 'metrics-token');
    await writeFile(tokenFile, options.bearerToken, { mode: 0o600 });
    const config = [
      'global:',
      `  scrape_interval: ${options.scrapeIntervalSeconds}s`,
      `  scrape_timeout: ${options.scrapeIntervalSeconds}s`,
      'scrape_configs:',
      `  - job_name: ${JSON.stringify(options.job)}`,
      '    authorization:',
      `      credentials_file: ${JSON.stringify(tokenFile)}`,
      '    static_configs:',
      `      - targets: [${JSON.stringify(options.target)}]`,
      '',
    ].join('\n');
    const configFile = join(directory, 'prometheus.yml');
    await writeFile(configFile, config);
    const port = await freePort();
    const child = spawn(
      PROMETHEUS_BIN,
      [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${join(directory, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const server = new PrometheusServer(child, directory, `http://127.0.0.1:${port}`);
    await server.waitUntilReady(60_000);
    return server;
  }

  /** The last lines Prometheus logged, for error messages. */
  get log(): string {
    return this.output.join('\n');
  }

  private async waitUntilReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`Prometheus exited before it was ready:\n${this.log}`);
      }
      const ready = await fetch(`${this.baseUrl}/-/ready`).then(
        (response) => response.ok,
        () => false,
      );
      if (ready) return;
      if (Date.now() > deadline) throw new Error(`Prometheus not ready after ${timeoutMs} ms:\n${this.log}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Evaluates an instant query now; a PromQL error is an answer, not an exception. */
  async query(expr: string): Promise<PromQueryResult> {
    const response = await fetch(`${this.baseUrl}/api/v1/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ query: expr }).toString(),
    });
    const body = responseSchema.parse(await response.json());
    if (body.status === 'error' || !body.data) {
      return { ok: false, error: `${body.errorType ?? 'error'}: ${body.error ?? `HTTP ${response.status}`}` };
    }
    const { data } = body;
    switch (data.resultType) {
      case 'vector':
        return {
          ok: true,
          samples: data.result.map(({ metric, value }) => ({ labels: metric, value: sampleValue(value[1]) })),
        };
      case 'matrix':
        return {
          ok: true,
          samples: data.result.flatMap(({ metric, values }) =>
            values.map(([, value]) => ({ labels: metric, value: sampleValue(value) })),
          ),
        };
      case 'scalar':
      case 'string':
        return { ok: true, samples: [{ labels: {}, value: sampleValue(data.result[1]) }] };
      default: {
        const unreachable: never = data;
        throw new Error(`unexpected Prometheus answer ${JSON.stringify(unreachable)}`);
      }
    }
  }

  /** The single value of a query that aggregates to one sample; null when it has no data (yet). */
  async valueOf(expr: string): Promise<number | null> {
    const result = await this.query(expr);
    if (!result.ok) throw new Error(`${expr}: ${result.error}`);
    return result.samples[0]?.value ?? null;
  }

  /** Every metric name Prometheus has stored. */
  async metricNames(): Promise<string[]> {
    const response = await fetch(`${this.baseUrl}/api/v1/label/__name__/values`);
    return labelValuesSchema.parse(await response.json()).data;
  }

  async stop(): Promise<void> {
    process.removeListener('exit', this.killOnExit);
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
      await this.exited;
      clearTimeout(timer);
    }
    await rm(this.directory, { recursive: true, force: true });
  }
}
