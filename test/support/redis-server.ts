import { type ChildProcess, spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import { eventually } from './eventually.js';

/** A private, throw-away redis-server on its own port: a test may kill it without touching anyone else's. */
export class RedisServer {
  private child: ChildProcess | null = null;

  constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.child = spawn(
      process.env.REDIS_SERVER_BIN ?? 'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
    const probe = new Redis(this.url, {
      lazyConnect: true,
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
    });
    probe.on('error', () => {});
    try {
      await eventually(
        async () => {
          if (probe.status !== 'ready') await probe.connect().catch(() => {});
          return probe.ping();
        },
        (pong) => pong === 'PONG',
        { timeoutMs: 10_000, description: `redis-server on port ${this.port} to answer` },
      );
    } finally {
      probe.disconnect();
    }
  }

  /** SIGKILL: the data is gone, as after a crash of a Redis that keeps nothing on disk. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }
}
