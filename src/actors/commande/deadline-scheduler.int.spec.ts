import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { capturingLogger } from '../../../test/support/capturing-logger.js';
import { eventsOf, eventTypesOf } from '../../../test/support/commande-events.js';
import { eventually } from '../../../test/support/eventually.js';
import { NEW_EVENTS } from '../../../test/support/new-events.js';
import { createTestDatabase, type TestDatabase } from '../../../test/support/test-database.js';
import type { NewEvent } from '../../domain/events.js';
import { createPool, type Pool } from '../../persistence/database.js';
import { appendToStream } from '../../persistence/event-store.js';
import { migrate } from '../../persistence/migrate.js';
import { DeadlineScheduler, type DeadlineSchedulerOptions } from './deadline-scheduler.js';

const DEADLINE_MS = 400;

const {
  CommandeCreee: creee,
  StockReserve: reserve,
  PaiementAccepte: accepte,
  StockIndisponible: indisponible,
} = NEW_EVENTS;

describe('the deadline scheduler', () => {
  let database: TestDatabase;
  let pool: Pool;

  beforeAll(async () => {
    database = await createTestDatabase('deadline_scheduler');
    pool = createPool(database.url);
    await migrate(pool);
  });
  afterAll(async () => {
    await pool?.end();
    await database?.drop();
  });
  // expireDue looks at every saga row: each test sees only the deadlines it set.
  beforeEach(async () => {
    await pool.query('DELETE FROM sagas');
  });

  function scheduler(options: Partial<DeadlineSchedulerOptions> = {}): DeadlineScheduler {
    return new DeadlineScheduler({
      pool,
      logger: capturingLogger().logger,
      deadlineMs: DEADLINE_MS,
      ...options,
    });
  }

  /** A commande with these events whose saga has a deadline that many seconds from now (past when negative). */
  async function commandeWith(events: NewEvent[], deadlineInSeconds = -1): Promise<string> {
    const commandeId = `cmd-${randomUUID()}`;
    if (events.length > 0) await appendToStream(pool, commandeId, 0, events);
    await pool.query(
      `INSERT INTO sagas (commande_id, statut, version, final, started_at, updated_at, deadline_at)
       VALUES ($1, 'en_attente_stock', $2, false, now(), now(), now() + make_interval(secs => $3))`,
      [commandeId, events.length, deadlineInSeconds],
    );
    return commandeId;
  }

  async function deadlineOf(commandeId: string): Promise<Date | null> {
    const result = await pool.query<{ deadline_at: Date | null }>(
      'SELECT deadline_at FROM sagas WHERE commande_id = $1',
      [commandeId],
    );
    return result.rows[0]?.deadline_at ?? null;
  }

  async function sessionsWaitingOnALock(): Promise<number> {
    const result = await pool.query<{ waiting: number }>(
      `SELECT count(*)::int AS waiting FROM pg_stat_activity
       WHERE datname = current_database() AND wait_event_type = 'Lock'`,
    );
    return result.rows[0]?.waiting ?? 0;
  }

  describe('expiring what is due', () => {
    it('expires a commande past its deadline, from the state it was waiting in, after its last event', async () => {
      const commandeId = await commandeWith([creee, reserve, accepte]);
      const told: [string, string][] = [];
      const seenWhenTold: Promise<string[]>[] = [];
      const deadlines = scheduler({
        onExpired: (id, statut) => {
          told.push([id, statut]);
          seenWhenTold.push(eventTypesOf(pool, id));
        },
      });

      expect(await deadlines.expireDue()).toBe(1);

      const events = await eventsOf(pool, commandeId);
      const expiree = events.at(-1);
      expect(events.map((event) => event.event_type)).toEqual([
        'CommandeCreee',
        'StockReserve',
        'PaiementAccepte',
        'CommandeExpiree',
      ]);
      expect(expiree?.data).toEqual({
        raison: 'delai_depasse',
        etat: 'paiement_accepte',
        delai_ms: DEADLINE_MS,
      });
      expect(expiree?.source).toBe('commande-saga');
      expect(expiree?.causation_id).toBe(events[2]?.event_id);
      expect(await deadlineOf(commandeId)).toBeNull();
      expect(told).toEqual([[commandeId, 'paiement_accepte']]);
      // told once committed: anyone reading the store then sees the expiry
      expect(await Promise.all(seenWhenTold)).toEqual([
        ['CommandeCreee', 'StockReserve', 'PaiementAccepte', 'CommandeExpiree'],
      ]);
    });

    it('expires a commande even when nobody is to be told', async () => {
      const commandeId = await commandeWith([creee]);

      expect(await scheduler().expireDue()).toBe(1);
      expect(await eventTypesOf(pool, commandeId)).toEqual(['CommandeCreee', 'CommandeExpiree']);
    });

    it('leaves alone a commande whose deadline is still ahead', async () => {
      const commandeId = await commandeWith([creee], 3_600);

      expect(await scheduler().expireDue()).toBe(0);
      expect(await eventTypesOf(pool, commandeId)).toEqual(['CommandeCreee']);
      expect(await deadlineOf(commandeId)).not.toBeNull();
    });

    it('clears the deadline of a commande that no longer takes an expiry, without expiring it', async () => {
      const finished = await commandeWith([creee, indisponible]);
      const unknown = await commandeWith([]);
      const told: string[] = [];

      expect(await scheduler({ onExpired: (id) => told.push(id) }).expireDue()).toBe(0);

      expect(await eventTypesOf(pool, finished)).toEqual(['CommandeCreee', 'StockIndisponible']);
      expect(await eventTypesOf(pool, unknown)).toEqual([]);
      expect(await deadlineOf(finished)).toBeNull();
      expect(await deadlineOf(unknown)).toBeNull();
      expect(told).toEqual([]);
    });

    it('skips a commande whose deadline another process is handling, and expires it once that one lets go', async () => {
      const commandeId = await commandeWith([creee]);
      const deadlines = scheduler();
      const other = await pool.connect();
      try {
        await other.query('BEGIN');
        await other.query('SELECT 1 FROM sagas WHERE commande_id = $1 FOR UPDATE', [commandeId]);
        // Bounded, so that a scheduler that waited for the lock instead of skipping fails rather than hangs.
        await other.query("SET LOCAL idle_in_transaction_session_timeout = '3s'");

        expect(await deadlines.expireDue()).toBe(0);
        expect(await eventTypesOf(pool, commandeId)).toEqual(['CommandeCreee']);
        await other.query('ROLLBACK');
      } finally {
        other.release(true);
      }

      expect(await deadlines.expireDue()).toBe(1);
    });

    it('counts as not expired a commande whose next event another writer appended first', async () => {
      const commandeId = await commandeWith([creee]);
      const told: string[] = [];
      const deadlines = scheduler({ onExpired: (id) => told.push(id) });
      const rival = await pool.connect();
      try {
        await rival.query('BEGIN');
        await appendToStream(rival, commandeId, 1, [reserve]);
        // The scheduler reads the commande at version 1, then its expiry waits for the rival's version 2.
        const expiring = deadlines.expireDue();
        await eventually(sessionsWaitingOnALock, (waiting) => waiting > 0, {
          description: 'the expiry waiting for the rival append',
        });
        await rival.query('COMMIT');

        expect(await expiring).toBe(0);
      } finally {
        rival.release(true);
      }
      expect(await eventTypesOf(pool, commandeId)).toEqual(['CommandeCreee', 'StockReserve']);
      expect(told).toEqual([]);
    });

    it('fails with the error of a commande it cannot read', async () => {
      const commandeId = await commandeWith([]);
      // A stored creation that does not have the shape of one (data from a bug or an older version).
      await pool.query(
        `INSERT INTO events (event_id, event_type, aggregate_id, version, source, correlation_id, data)
         VALUES ($1, 'CommandeCreee', $2, 1, 'panier-service', $2, '{}')`,
        [randomUUID(), commandeId],
      );

      await expect(scheduler().expireDue()).rejects.toThrow(/client_id/);
      expect(await deadlineOf(commandeId)).not.toBeNull();
    });

    it('expires no more commandes once it is stopping', async () => {
      const first = await commandeWith([creee], -3);
      const others = [await commandeWith([creee], -2), await commandeWith([creee], -1)];
      const deadlines: DeadlineScheduler = scheduler({
        onExpired: () => {
          void deadlines.stop();
        },
      });

      expect(await deadlines.expireDue()).toBe(1);

      expect(await eventTypesOf(pool, first)).toEqual(['CommandeCreee', 'CommandeExpiree']);
      for (const commandeId of others) {
        expect(await eventTypesOf(pool, commandeId)).toEqual(['CommandeCreee']);
        expect(await deadlineOf(commandeId)).not.toBeNull();
      }
    });
  });

  describe('its timer', () => {
    beforeEach(() => {
      // Only the interval is simulated: the database, and the polls of `eventually`, keep real time.
      vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    });
    afterEach(() => {
      vi.useRealTimers();
    });

    it('keeps a single timer when started twice, and none once stopped', async () => {
      const deadlines = scheduler();

      deadlines.start();
      deadlines.start();
      expect(vi.getTimerCount()).toBe(1);

      await deadlines.stop();
      expect(vi.getTimerCount()).toBe(0);
    });

    it.each([
      {
        when: 'every quarter of the deadline when given no interval',
        options: { deadlineMs: 400 },
        interval: 100,
      },
      { when: 'at the interval it is given', options: { deadlineMs: 400, tickMs: 1_000 }, interval: 1_000 },
    ])('looks for due deadlines $when', async ({ options, interval }) => {
      const deadlines = scheduler(options);
      const ticks = vi.spyOn(deadlines, 'expireDue');
      deadlines.start();

      vi.advanceTimersByTime(interval - 1);
      expect(ticks).not.toHaveBeenCalled();
      vi.advanceTimersByTime(1);
      expect(ticks).toHaveBeenCalledTimes(1);

      await deadlines.stop();
    });

    it('looks again once a look is done', async () => {
      const first = await commandeWith([creee]);
      const expired: string[] = [];
      const deadlines = scheduler({ tickMs: 100, onExpired: (id) => expired.push(id) });
      deadlines.start();
      await eventually(
        async () => {
          vi.advanceTimersByTime(100);
          return expired;
        },
        (ids) => ids.length === 1,
      );

      const second = await commandeWith([creee]);
      await eventually(
        async () => {
          vi.advanceTimersByTime(100);
          return expired;
        },
        (ids) => ids.length === 2,
        { timeoutMs: 5_000, description: 'the second commande expired by a later tick' },
      );

      expect(expired).toEqual([first, second]);
      await deadlines.stop();
    });

    it('starts no look while the previous one is still going', async () => {
      const deadlines = scheduler({ tickMs: 100 });
      const ticks = vi.spyOn(deadlines, 'expireDue');
      const blocker = await pool.connect();
      try {
        await blocker.query('BEGIN');
        await blocker.query('LOCK TABLE sagas IN ACCESS EXCLUSIVE MODE');
        deadlines.start();
        vi.advanceTimersByTime(100);
        await eventually(sessionsWaitingOnALock, (waiting) => waiting > 0, {
          description: 'the look for due deadlines waiting for the table',
        });

        vi.advanceTimersByTime(300);
        expect(ticks).toHaveBeenCalledTimes(1);

        await blocker.query('COMMIT');
        await deadlines.stop();
      } finally {
        blocker.release(true);
      }
    });

    it('stops only once the look in progress is done', async () => {
      const deadlines = scheduler({ tickMs: 100 });
      const blocker = await pool.connect();
      let stopped = false;
      try {
        await blocker.query('BEGIN');
        await blocker.query('LOCK TABLE sagas IN ACCESS EXCLUSIVE MODE');
        deadlines.start();
        vi.advanceTimersByTime(100);
        await eventually(sessionsWaitingOnALock, (waiting) => waiting > 0, {
          description: 'the look for due deadlines waiting for the table',
        });

        const stopping = deadlines.stop().then(() => {
          stopped = true;
        });
        // stop had every chance to settle: a round trip to the database went by since
        await sessionsWaitingOnALock();
        expect(stopped).toBe(false);

        await blocker.query('COMMIT');
        await stopping;
        expect(stopped).toBe(true);
      } finally {
        blocker.release(true);
      }
    });
  });

  it('says when a look for due deadlines fails, and looks again', async () => {
    const commandeId = await commandeWith([creee]);
    const { logger, lines } = capturingLogger();
    const deadlines = scheduler({ logger, tickMs: 10 });
    try {
      // Without its table, a look fails as it would with the database away.
      await pool.query('ALTER TABLE sagas RENAME TO sagas_away');
      try {
        deadlines.start();
        const failure = await eventually(
          async () => lines.find((line) => line.msg === 'deadline scheduler tick failed'),
          (line) => line !== undefined,
          { timeoutMs: 5_000, description: 'the failed look to be logged' },
        );
        expect(failure?.level).toBe(40);
        expect(failure?.err).toMatchObject({ message: expect.stringContaining('sagas') });
      } finally {
        await pool.query('ALTER TABLE sagas_away RENAME TO sagas');
      }

      await eventually(
        () => eventTypesOf(pool, commandeId),
        (types) => types.includes('CommandeExpiree'),
        { timeoutMs: 5_000, description: 'the commande expired by a look after the failed one' },
      );
    } finally {
      await deadlines.stop();
    }
  });
});
