import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';
import { onEventsCommitted, type Pool } from './database.js';

type Listener = () => void;

const CHANNEL = 'choreo_events';

/** Other processes hear of this one's appends at most this long after the commit. */
const REMOTE_NOTIFY_DELAY_MS = 5;

/**
 * One LISTEN connection per process, fanned out to the readers of the event store. LISTEN needs a
 * dedicated client; after a lost connection it reconnects and listens again, and readers keep a slow
 * poll meanwhile.
 *
 * Appends are not announced by a trigger (NOTIFY inside the appending transaction serializes commits):
 * given the process's pool, the notifier wakes local readers as soon as an appending transaction
 * commits, and sends one NOTIFY for all the appends of the last few milliseconds to other processes.
 * That NOTIFY carries this notifier's id, so that it does not wake this process's readers a second time.
 */
export class EventStoreNotifier {
  private client: pg.Client | null = null;
  private readonly listeners = new Set<Listener>();
  private closed = false;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private remoteNotify: NodeJS.Timeout | null = null;
  private stopWatchingCommits: (() => void) | null = null;
  private readonly id = randomUUID();

  constructor(
    private readonly databaseUrl: string,
    private readonly logger: Logger,
    private readonly pool: Pool | null = null,
  ) {}

  subscribe(listener: Listener): void {
    this.listeners.add(listener);
  }

  unsubscribe(listener: Listener): void {
    this.listeners.delete(listener);
  }

  async start(): Promise<void> {
    if (this.pool && !this.stopWatchingCommits) {
      this.stopWatchingCommits = onEventsCommitted(this.pool, this.onLocalCommit);
    }
    await this.connect().catch((error: unknown) => {
      this.logger.warn({ err: error }, 'LISTEN connection failed, readers fall back to polling');
      this.scheduleReconnect();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stopWatchingCommits?.();
    this.stopWatchingCommits = null;
    if (this.remoteNotify) clearTimeout(this.remoteNotify);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => {});
  }

  private readonly onLocalCommit = (): void => {
    for (const listener of this.listeners) listener();
    if (this.remoteNotify || this.closed) return;
    this.remoteNotify = setTimeout(() => {
      this.remoteNotify = null;
      this.pool?.query('SELECT pg_notify($1, $2)', [CHANNEL, this.id]).catch((error: unknown) => {
        this.logger.warn({ err: error }, 'NOTIFY failed; other processes fall back to polling');
      });
    }, REMOTE_NOTIFY_DELAY_MS);
  };

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.databaseUrl });
    client.on('notification', (notification) => {
      if (notification.payload === this.id) return;
      for (const listener of this.listeners) listener();
    });
    client.on('error', (error) => {
      this.logger.warn({ err: error }, 'LISTEN connection lost');
      if (this.client === client) this.client = null;
      client.end().catch(() => {});
      this.scheduleReconnect();
    });
    await client.connect();
    await client.query(`LISTEN ${CHANNEL}`);
    if (this.closed) {
      await client.end();
      return;
    }
    this.client = client;
    // Anything appended while we were not listening is picked up now.
    for (const listener of this.listeners) listener();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (this.closed) return;
      this.connect().catch(() => this.scheduleReconnect());
    }, 1_000);
  }
}
