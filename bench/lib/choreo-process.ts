import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { type ProcessSample, sampleProcess } from './proc-stats.js';

export interface ChoreoProcessOptions {
  databaseUrl: string;
  redisUrl: string;
  streamPrefix: string;
  profileDir?: string | undefined;
  /** Where choreo's log goes, under bench/results/ (one file per choreo a run starts). */
  logName?: string;
  env?: Record<string, string>;
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolvePort(address.port);
        else reject(new Error('no port'));
      });
    });
  });
}

/**
 * `npm start`'s command, `node [node flags] <entry>` or `tsx [node flags] <entry>`, taken apart so that the
 * bench runs choreo exactly as a user does (plus --cpu-prof when profiling) and follows any change to it.
 */
function npmStartCommand(): { nodeFlags: string[]; entry: string } {
  const packageJson = JSON.parse(
    readFileSync(resolve(import.meta.dirname, '../../package.json'), 'utf8'),
  ) as {
    scripts?: Record<string, string>;
  };
  const [runner, ...rest] = (packageJson.scripts?.start ?? '').trim().split(/\s+/);
  const entry = rest.at(-1);
  if ((runner !== 'tsx' && runner !== 'node') || !entry || entry.startsWith('-')) {
    throw new Error(
      `the bench expects npm start to be "node [node flags] <entry>" or "tsx [node flags] <entry>", not "${packageJson.scripts?.start}"`,
    );
  }
  const nodeFlags = rest.slice(0, -1);
  // tsx <entry> is node with tsx's loader.
  if (runner === 'tsx' && !nodeFlags.includes('tsx')) nodeFlags.push('--import', 'tsx');
  return { nodeFlags, entry };
}

/** choreo as a user runs it: `npm start`'s command with its environment variables, ACTORS=all. */
export class ChoreoProcess {
  private exited: Promise<number | null>;
  private stderrTail: string[] = [];

  private constructor(
    private readonly child: ChildProcess,
    readonly baseUrl: string,
    /** Its staff token (CHOREO_ADMIN_TOKEN), for every request the bench sends it. */
    readonly token: string,
    logName: string,
  ) {
    this.exited = new Promise((resolveExit) => child.once('exit', (code) => resolveExit(code)));
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      this.stderrTail.push(chunk);
      if (this.stderrTail.length > 50) this.stderrTail.shift();
    });
    // Everything choreo logs (warnings and errors at the bench's LOG_LEVEL) is kept for the run's reader.
    mkdirSync(resolve(import.meta.dirname, '../results'), { recursive: true });
    const log = createWriteStream(resolve(import.meta.dirname, '../results', logName));
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
  }

  static async start(options: ChoreoProcessOptions): Promise<ChoreoProcess> {
    const port = await freePort();
    const { nodeFlags, entry } = npmStartCommand();
    const nodeArgs = [...nodeFlags];
    if (options.profileDir) {
      mkdirSync(options.profileDir, { recursive: true });
      nodeArgs.push('--cpu-prof', '--cpu-prof-dir', resolve(options.profileDir));
    }
    const token = options.env?.CHOREO_ADMIN_TOKEN ?? `bench-staff-${randomBytes(24).toString('base64url')}`;
    const child = spawn(process.execPath, [...nodeArgs, entry], {
      cwd: resolve(import.meta.dirname, '../..'),
      env: {
        ...process.env,
        DATABASE_URL: options.databaseUrl,
        REDIS_URL: options.redisUrl,
        PORT: String(port),
        HOST: '127.0.0.1',
        ACTORS: 'all',
        STREAM_PREFIX: options.streamPrefix,
        LOG_LEVEL: process.env.BENCH_CHOREO_LOG_LEVEL ?? 'warn',
        CHOREO_ADMIN_TOKEN: token,
        ...options.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const choreo = new ChoreoProcess(
      child,
      `http://127.0.0.1:${port}`,
      token,
      options.logName ?? 'choreo.log',
    );
    await choreo.waitReady(30_000);
    return choreo;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  sample(): ProcessSample | null {
    return sampleProcess(this.pid);
  }

  private async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let exitCode: number | null | undefined;
    void this.exited.then((code) => {
      exitCode = code;
    });
    while (Date.now() < deadline) {
      if (exitCode !== undefined) {
        throw new Error(`choreo exited with ${exitCode} before it was ready:\n${this.stderrTail.join('')}`);
      }
      try {
        const response = await fetch(`${this.baseUrl}/ready`);
        if (response.ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((resolveWait) => setTimeout(resolveWait, 100));
    }
    throw new Error(`choreo was not ready after ${timeoutMs} ms:\n${this.stderrTail.join('')}`);
  }

  /** SIGTERM, as a user stopping it would; choreo drains, and writes its CPU profile when profiling. */
  async stop(): Promise<number | null> {
    if (this.child.exitCode !== null) return this.child.exitCode;
    this.child.kill('SIGTERM');
    const timeout = setTimeout(() => this.child.kill('SIGKILL'), 20_000);
    const code = await this.exited;
    clearTimeout(timeout);
    return code;
  }

  get logTail(): string {
    return this.stderrTail.join('');
  }
}
