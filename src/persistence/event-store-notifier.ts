import pg from 'pg';
import type { Logger } from 'pino';

type Listener = () => void;

/**
 * One LISTEN connection per process, fanned out to the readers of the event store. LISTEN needs a
 * dedicated client; after a lost connection it reconnects and listens again, and readers keep a slow
 * poll meanwhile.
 */
export class EventStoreNotifier {
  private client: pg.Client | null = null;
  private readonly listeners = new Set<Listener>();
  private closed = false;
  private reconnectTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly databaseUrl: string,
    private readonly logger: Logger,
  ) {}

  subscribe(listener: Listener): void {
    this.listeners.add(listener);
  }

  unsubscribe(listener: Listener): void {
    this.listeners.delete(listener);
  }

  async start(): Promise<void> {
    await this.connect().catch((error: unknown) => {
      this.logger.warn({ err: error }, 'LISTEN connection failed, readers fall back to polling');
      this.scheduleReconnect();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => {});
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.databaseUrl });
    client.on('notification', () => {
      for (const listener of this.listeners) listener();
    });
    client.on('error', (error) => {
      this.logger.warn({ err: error }, 'LISTEN connection lost');
      if (this.client === client) this.client = null;
      client.end().catch(() => {});
      this.scheduleReconnect();
    });
    await client.connect();
    await client.query('LISTEN choreo_events');
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
