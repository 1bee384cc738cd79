import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../test/support/eventually.js';
import { freePort } from '../../test/support/free-port.js';
import {
  embeddedPostgresFiles,
  runningServer,
  runningWatchdog,
  startEmbeddedPostgres,
} from './embedded-postgres.js';
import { probePostgres } from './probe.js';
import { readPid } from './watchdog-protocol.js';

const EMBEDDED_POSTGRES_MODULE = fileURLToPath(new URL('./embedded-postgres.ts', import.meta.url));

async function query(url: string, sql: string): Promise<unknown[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

async function answers(url: string): Promise<boolean> {
  return (await probePostgres(url, 1_000)).outcome === 'answers';
}

/** Another process that starts the embedded server, says `ready`, and waits to be killed. */
async function startOwnerProcess(dataDir: string, port: number): Promise<ChildProcess> {
  const script = `
    const { startEmbeddedPostgres } = await import(${JSON.stringify(EMBEDDED_POSTGRES_MODULE)});
    await startEmbeddedPostgres({ dataDir: ${JSON.stringify(dataDir)}, port: ${port} });
    console.log('ready');
    setInterval(() => {}, 1_000);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`the owner process exited (${code}) before it was ready`)));
  });
  return child;
}

async function killHard(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

describe('the embedded PostgreSQL', () => {
  let directory: string;
  let dataDir: string;
  let port: number;

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'choreo-embedded-'));
    // As root the server runs as the user postgres, which must be able to enter the folder.
    await chmod(directory, 0o755);
    dataDir = join(directory, 'postgres');
    port = await freePort();
  });
  afterAll(async () => {
    const left = await runningServer(dataDir);
    if (left) process.kill(left.pid, 'SIGQUIT');
    await rm(directory, { recursive: true, force: true });
  });

  it('is a real PostgreSQL server whose data survives a restart', async () => {
    // given a server started in an empty folder, with a row written
    const first = await startEmbeddedPostgres({ dataDir, port });
    expect(first.shared).toBe(false);
    await query(first.url, 'CREATE TABLE survivors (name text); INSERT INTO survivors VALUES ($$kept$$)');
    expect(await query(first.url, 'SHOW server_version_num')).toEqual([
      { server_version_num: expect.stringMatching(/^18/) },
    ]);

    // when it is stopped, and started again
    await first.stop();
    expect(await answers(first.url)).toBe(false);
    expect(await runningServer(dataDir)).toBeNull();
    const second = await startEmbeddedPostgres({ dataDir, port });

    // then the row is there
    expect(await query(second.url, 'SELECT name FROM survivors')).toEqual([{ name: 'kept' }]);
    await second.stop();
  });

  it('is shared with a second process, which leaves it running when it stops', async () => {
    // given a server started by one process
    const owner = await startOwnerProcess(dataDir, port);
    try {
      // when another starts, then stops
      const joined = await startEmbeddedPostgres({ dataDir, port });
      expect(joined.shared).toBe(true);
      await joined.stop();

      // then the server still runs, for its owner
      expect(await answers(joined.url)).toBe(true);
    } finally {
      await killHard(owner);
    }
  });

  it('stops when the process that started it is killed with SIGKILL', async () => {
    // given a server started by a process
    const owner = await startOwnerProcess(dataDir, port);
    const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    expect(await answers(url)).toBe(true);

    // when that process is killed without a chance to stop anything
    await killHard(owner);

    // then the watchdog stops the server, and exits
    await eventually(
      async () => ({
        answers: await answers(url),
        server: await runningServer(dataDir),
        watchdog: await runningWatchdog(dataDir),
      }),
      (state) => !state.answers && state.server === null && state.watchdog === null,
      { timeoutMs: 15_000, intervalMs: 100, description: 'the embedded server to stop after its owner died' },
    );
  });

  it('stops a server left without a watchdog, and runs it again under its own', async () => {
    // given a server whose owner and watchdog were both killed with SIGKILL
    const owner = await startOwnerProcess(dataDir, port);
    const watchdog = readPid(embeddedPostgresFiles(dataDir).watchdogPidFile);
    expect(watchdog).not.toBeNull();
    process.kill(watchdog ?? 0, 'SIGKILL');
    await killHard(owner);
    const orphan = await runningServer(dataDir);
    expect(orphan).not.toBeNull();

    // when choreo starts again
    const restarted = await startEmbeddedPostgres({ dataDir, port });

    // then it runs a server of its own, under a watchdog of its own
    expect(restarted.shared).toBe(false);
    expect((await runningServer(dataDir))?.pid).not.toBe(orphan?.pid);
    expect(await runningWatchdog(dataDir)).not.toBe(watchdog);
    expect(await query(restarted.url, 'SELECT name FROM survivors')).toEqual([{ name: 'kept' }]);
    await restarted.stop();
  });
});
