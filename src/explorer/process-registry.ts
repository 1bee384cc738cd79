import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { ActorName, BusKind } from '../config.js';
import type { Pool } from '../persistence/database.js';

const HEARTBEAT_INTERVAL_MS = 2_000;
/** A process whose heartbeat is older than this is shown as gone. */
export const ALIVE_WITHIN_MS = 10_000;
/** Rows of processes gone this long are removed by whichever process beats next. */
const FORGET_AFTER_MS = 60 * 60_000;

export interface ActorState {
  actor: ActorName;
  group: string | null;
  paused: boolean;
}

/** A process as the explorer shows it (GET /api/processes). */
export const processSchema = z.object({
  process_id: z.string(),
  hostname: z.string(),
  pid: z.number().int(),
  bus: z.string(),
  actors: z.array(z.string()),
  /** The actors that read the bus, which can be paused. */
  consumers: z.array(z.string()),
  paused: z.array(z.string()),
  api_url: z.string().nullable(),
  started_at: z.string(),
  heartbeat_at: z.string(),
  alive: z.boolean(),
  /** The process that answered this request. */
  self: z.boolean(),
});
export type ProcessRow = z.infer<typeof processSchema>;

/** Its row in choreo_processes, as pg reads it back. */
const rowSchema = processSchema.omit({ self: true }).extend({ started_at: z.date(), heartbeat_at: z.date() });

/**
 * Each process says it is alive every 2 s in `choreo_processes` (migration 010), with the actors it hosts
 * and which of them are paused, so that any process's explorer can show them all.
 */
export class ProcessRegistry {
  private timer: NodeJS.Timeout | null = null;
  private apiUrl: string | null = null;
  private beating: Promise<void> = Promise.resolve();

  constructor(
    readonly processId: string,
    private readonly options: {
      pool: Pool;
      bus: BusKind;
      logger: Logger;
      actorStates: () => ActorState[];
    },
  ) {}

  start(): void {
    if (this.timer) return;
    this.beatNow();
    this.timer = setInterval(() => this.beatNow(), HEARTBEAT_INTERVAL_MS);
    this.timer.unref();
  }

  /** Where this process's API answers, once it listens. */
  announce(apiUrl: string): void {
    this.apiUrl = apiUrl;
    this.beatNow();
  }

  /** Writes this process's row now (after a pause or a resume, so that every explorer sees it at once). */
  beatNow(): void {
    this.beating = this.beating.then(() =>
      this.beat().catch((error: unknown) =>
        this.options.logger.debug({ err: error }, 'process heartbeat failed; retried in 2 s'),
      ),
    );
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.beating;
    await this.options.pool
      .query('DELETE FROM choreo_processes WHERE process_id = $1', [this.processId])
      .catch(() => {});
  }

  async list(): Promise<ProcessRow[]> {
    const result = await this.options.pool.query(
      `SELECT process_id, hostname, pid, bus, actors, consumers, paused, api_url, started_at, heartbeat_at,
              heartbeat_at > now() - make_interval(secs => $1) AS alive
         FROM choreo_processes ORDER BY started_at, process_id`,
      [ALIVE_WITHIN_MS / 1_000],
    );
    return result.rows.map((raw) => {
      const row = rowSchema.parse(raw);
      return {
        ...row,
        started_at: row.started_at.toISOString(),
        heartbeat_at: row.heartbeat_at.toISOString(),
        self: row.process_id === this.processId,
      };
    });
  }

  private async beat(): Promise<void> {
    const states = this.options.actorStates();
    await this.options.pool.query(
      `WITH forgotten AS (
         DELETE FROM choreo_processes WHERE heartbeat_at < now() - make_interval(secs => $8)
       )
       INSERT INTO choreo_processes (process_id, hostname, pid, bus, actors, consumers, paused, api_url)
       VALUES ($1, $2, $3, $4, $5, $9, $6, $7)
       ON CONFLICT (process_id) DO UPDATE
         SET actors = EXCLUDED.actors, consumers = EXCLUDED.consumers, paused = EXCLUDED.paused,
             api_url = EXCLUDED.api_url,
             heartbeat_at = now()`,
      [
        this.processId,
        hostname(),
        process.pid,
        this.options.bus,
        states.map((state) => state.actor),
        states.filter((state) => state.paused).map((state) => state.actor),
        this.apiUrl,
        FORGET_AFTER_MS / 1_000,
        states.filter((state) => state.group !== null).map((state) => state.actor),
      ],
    );
  }
}
