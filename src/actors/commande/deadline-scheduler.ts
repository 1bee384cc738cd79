import type { Logger } from 'pino';
import { z } from 'zod';
import { TransitionRefusedError, VersionConflictError } from '../../domain/errors.js';
import { type Pool, withTransaction } from '../../persistence/database.js';
import { CommandeSession, commandeAccepts, statutOfCommande } from './commande-stream.js';

export const DEADLINE_SOURCE = 'commande-saga';
export const EXPIRY_REASON = 'delai_depasse';

const dueRowSchema = z.object({ commande_id: z.string() });

export interface DeadlineSchedulerOptions {
  pool: Pool;
  logger: Logger;
  deadlineMs: number;
  /** How often due deadlines are looked for. */
  tickMs?: number;
  onExpired?: (commandeId: string, statut: string) => void;
}

/**
 * Turns due deadline rows into CommandeExpiree events. Deadlines live in the sagas table, so they survive
 * restarts; several processes may run this (SKIP LOCKED and the commande's version make one win).
 */
export class DeadlineScheduler {
  private timer: NodeJS.Timeout | null = null;
  private tick: Promise<void> = Promise.resolve();
  private ticking = false;
  private running = false;
  private stopping = false;

  constructor(private readonly options: DeadlineSchedulerOptions) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    const tickMs =
      this.options.tickMs ?? Math.min(1_000, Math.max(50, Math.floor(this.options.deadlineMs / 4)));
    this.timer = setInterval(() => {
      // A tick that outlasts the interval (a slow or locked database) is not queued behind: the next one
      // due after it looks for every deadline passed meanwhile, so skipped ticks lose nothing.
      if (this.ticking) return;
      this.ticking = true;
      this.tick = this.expireDue()
        .then(
          () => {},
          (error: unknown) => {
            this.options.logger.warn({ err: error }, 'deadline scheduler tick failed');
          },
        )
        .finally(() => {
          this.ticking = false;
        });
    }, tickMs);
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    await this.tick;
  }

  /** Expires every commande whose deadline has passed; returns how many it expired. */
  async expireDue(limit = 100): Promise<number> {
    const due = await this.options.pool.query(
      'SELECT commande_id FROM sagas WHERE deadline_at <= now() ORDER BY deadline_at LIMIT $1',
      [limit],
    );
    let expired = 0;
    for (const row of due.rows) {
      if (this.stopping) break;
      const { commande_id } = dueRowSchema.parse(row);
      if (await this.expire(commande_id)) expired += 1;
    }
    return expired;
  }

  private async expire(commandeId: string): Promise<boolean> {
    let expiredFrom: string | null;
    try {
      expiredFrom = await withTransaction(this.options.pool, async (tx) => {
        const locked = await tx.query(
          'SELECT 1 FROM sagas WHERE commande_id = $1 AND deadline_at <= now() FOR UPDATE SKIP LOCKED',
          [commandeId],
        );
        if (locked.rowCount === 0) return null;
        // The saga actor will set the next deadline, if any, when it sees the commande's next event.
        await tx.query('UPDATE sagas SET deadline_at = NULL WHERE commande_id = $1', [commandeId]);
        const session = new CommandeSession(tx);
        const commande = await session.load(commandeId);
        if (!commandeAccepts(commande, 'CommandeExpiree')) return null;
        const statut = statutOfCommande(commande) ?? 'inexistante';
        session.append(commande, {
          event_type: 'CommandeExpiree',
          source: DEADLINE_SOURCE,
          causation_id: commande.events.at(-1)?.event_id ?? null,
          data: { raison: EXPIRY_REASON, etat: statut, delai_ms: this.options.deadlineMs },
        });
        session.flush();
        return statut;
      });
    } catch (error) {
      // A service appended the commande's next event first: it made progress, so it did not expire.
      if (error instanceof VersionConflictError || error instanceof TransitionRefusedError) return false;
      throw error;
    }
    // Only once committed: the append goes with the COMMIT, where a lost race shows.
    if (expiredFrom === null) return false;
    this.options.onExpired?.(commandeId, expiredFrom);
    return true;
  }
}
