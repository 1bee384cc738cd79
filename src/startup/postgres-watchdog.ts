/**
 * The embedded PostgreSQL's keeper, a small process of its own: it runs the server as its child and stops
 * it once the choreo process that started it is gone, however it went (a clean stop, a crash, SIGKILL).
 * It learns that from its standard input, a pipe from that process, which the kernel closes when the
 * process ends. Other choreo processes may share the server meanwhile: it waits for their connections
 * (application_name `choreo`) to end before stopping it.
 *
 * Started detached (a session of its own), so that a Ctrl-C at the terminal reaches choreo, which drains
 * its work on the database, and not the database under it.
 */
import { spawn } from 'node:child_process';
import { openSync, rmSync, writeFileSync } from 'node:fs';
import pg from 'pg';
import { z } from 'zod';
import {
  CHOREO_APPLICATION_NAME,
  HANDED_OVER,
  readPid,
  type WatchdogArguments,
  watchdogArgumentsSchema,
} from './watchdog-protocol.js';

const OTHERS_POLL_MS = 500;
/** A fast shutdown that hangs (it should not) becomes an immediate one. */
const FAST_SHUTDOWN_GRACE_MS = 30_000;

function runWatchdog(args: WatchdogArguments): void {
  const log = openSync(args.logFile, 'a');
  const server = spawn(
    args.postgres,
    [
      '-D',
      args.pgdata,
      '-p',
      String(args.port),
      // Reachable from this machine only, and no Unix socket in a directory that may not exist here.
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      ...args.flags,
    ],
    {
      stdio: ['ignore', log, log],
      env: { ...process.env, LC_MESSAGES: 'C' },
      ...(args.user ? { uid: args.user.uid, gid: args.user.gid } : {}),
    },
  );
  writeFileSync(args.pidFile, String(process.pid));

  let stopping = false;
  const stopServer = () => {
    if (stopping) return;
    stopping = true;
    // SIGINT is PostgreSQL's fast shutdown: clients are disconnected, the data is checkpointed cleanly.
    server.kill('SIGINT');
    setTimeout(() => server.kill('SIGQUIT'), FAST_SHUTDOWN_GRACE_MS).unref();
  };

  server.on('exit', (code, signal) => {
    if (readPid(args.pidFile) === process.pid) rmSync(args.pidFile, { force: true });
    process.exit(stopping ? 0 : (code ?? (signal ? 1 : 0)));
  });
  server.on('error', () => process.exit(1));

  // A Ctrl-C or a closed terminal is for choreo, which tells us by closing the pipe when it is done.
  process.on('SIGINT', () => {});
  process.on('SIGHUP', () => {});
  // `kill <watchdog pid>` stops the server now, shared or not.
  process.on('SIGTERM', stopServer);

  let ownerGone = false;
  const onOwnerGone = () => {
    if (ownerGone) return;
    ownerGone = true;
    void waitForOtherChoreos(args.port).then(stopServer, stopServer);
  };
  process.stdin.on('end', onOwnerGone);
  process.stdin.on('close', onOwnerGone);
  process.stdin.on('error', onOwnerGone);
  process.stdin.resume();
  // The owner may be gone before reading what we write.
  process.stdout.on('error', () => {});
}

/** Resolves once no choreo process is connected to the server (or the server cannot be asked). */
async function waitForOtherChoreos(port: number): Promise<void> {
  let handedOver = false;
  for (;;) {
    const others = await countChoreoConnections(port);
    if (others === 0) return;
    if (!handedOver) {
      handedOver = true;
      process.stdout.write(`${HANDED_OVER}\n`);
    }
    await new Promise((resolve) => setTimeout(resolve, OTHERS_POLL_MS));
  }
}

async function countChoreoConnections(port: number): Promise<number> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port,
    user: 'postgres',
    database: 'postgres',
    application_name: 'choreo-watchdog',
    connectionTimeoutMillis: 2_000,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    const { rows } = await client.query(
      `SELECT count(*)::int AS connections FROM pg_stat_activity
       WHERE application_name = $1 AND pid <> pg_backend_pid()`,
      [CHOREO_APPLICATION_NAME],
    );
    return z.object({ connections: z.number() }).parse(rows[0]).connections;
  } catch {
    return 0;
  } finally {
    await client.end().catch(() => {});
  }
}

runWatchdog(watchdogArgumentsSchema.parse(JSON.parse(process.argv[2] ?? '')));
