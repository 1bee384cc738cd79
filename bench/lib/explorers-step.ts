import type pg from 'pg';
import { SAGA_EVENT_TYPES } from '../../src/domain/events.js';
import { type ExplorerCounts, ExplorerCrowd } from './explorer-clients.js';
import { FINAL_EVENTS, lastPosition, runStep, type StepContext, type StepResult } from './saga-step.js';
import type { PlannedOrder } from './shop-seed.js';

/** What open explorers cost and received over one step, beside the same step without them. */
export interface ExplorersResult {
  explorers: number;
  /** The step with the explorers open (also in the run's steps); the one without is the run's half rate. */
  step: StepResult;
  /** Seconds the pushed bytes and messages were counted over: the step's load and drain. */
  seconds: number;
  /** Mean over the explorers, per second of that window. */
  bytesPerExplorerPerSecond: number;
  messagesPerExplorerPerSecond: number;
  changesPerExplorerPerSecond: number;
  /**
   * What each should have been told: every saga event committed after they were counting (one change
   * each), and every commande that reached its final event then (the step's completed orders).
   */
  expectedChanges: number;
  expectedFinals: number;
  /** Explorers told of every change and every final event (waited for up to 10 s after the step). */
  explorersThatSawAll: number;
  /** Each explorer's counts, changes and finals once delivered, bytes and messages over the window. */
  perExplorer: ExplorerCounts[];
}

const DELIVERY_TIMEOUT_MS = 10_000;

/**
 * Runs one step with `count` explorers open: they subscribe once the step's clients and carts are ready,
 * just before the first checkout, count from there, and are closed after the step's orders are final and
 * delivered (or the deadline passed). Their first overview starts the feed's conservation audit, which
 * then runs every 15 s while an overview is open: once or twice in a full run's 15 s step.
 */
export async function runStepWithExplorers(
  context: StepContext,
  baseUrl: string,
  count: number,
  label: string,
  rate: number,
  seconds: number,
  orders: readonly PlannedOrder[],
): Promise<ExplorersResult> {
  const crowd = await ExplorerCrowd.open(baseUrl, count, FINAL_EVENTS, undefined, context.choreo.token);
  try {
    const start = await lastPosition(context.pool);
    crowd.startCounting(start);
    const step = await runStep(context, label, rate, seconds, orders);
    const window = crowd.snapshot();
    const expected = await expectedFor(context.pool, start);
    context.progress.update(`${label}: waiting for the explorers to be told of every change`);
    const delivered = await crowd.waitFor(expected.changes, expected.finals, DELIVERY_TIMEOUT_MS);
    const perExplorer = delivered.map((counts, index) => ({
      ...counts,
      bytes: window.counts[index]?.bytes ?? 0,
      messages: window.counts[index]?.messages ?? 0,
    }));
    const mean = (value: (counts: ExplorerCounts) => number) =>
      perExplorer.reduce((sum, counts) => sum + value(counts), 0) /
      Math.max(1, perExplorer.length) /
      Math.max(0.001, window.seconds);
    const result: ExplorersResult = {
      explorers: count,
      step,
      seconds: window.seconds,
      bytesPerExplorerPerSecond: mean((counts) => counts.bytes),
      messagesPerExplorerPerSecond: mean((counts) => counts.messages),
      changesPerExplorerPerSecond: mean((counts) => counts.changes),
      expectedChanges: expected.changes,
      expectedFinals: expected.finals,
      explorersThatSawAll: perExplorer.filter(
        (counts) => counts.changes >= expected.changes && counts.finals >= expected.finals,
      ).length,
      perExplorer,
    };
    const short = perExplorer.map((counts) => counts.changes).sort((a, b) => a - b);
    context.progress.done(
      `${label}: ${result.explorersThatSawAll}/${count} explorers told of every change ` +
        `(${short[0] ?? 0}-${short.at(-1) ?? 0} of ${expected.changes} changes, ` +
        `${Math.min(...perExplorer.map((counts) => counts.finals))} of ${expected.finals} final events), ` +
        `${Math.round(result.bytesPerExplorerPerSecond / 1024)} KiB and ` +
        `${result.messagesPerExplorerPerSecond.toFixed(1)} messages per explorer per second, ` +
        `${sum(perExplorer, 'truncatedMessages')} truncated messages, ${sum(perExplorer, 'resets')} resets, ` +
        `${sum(perExplorer, 'reconnects')} reconnects, ${sum(perExplorer, 'invalid')} invalid`,
    );
    return result;
  } finally {
    crowd.close();
  }
}

function sum(all: readonly ExplorerCounts[], key: keyof ExplorerCounts): number {
  return all.reduce((total, counts) => total + counts[key], 0);
}

/** The changes an explorer following every commande must be told of since `start`, and the finals among them. */
async function expectedFor(pool: pg.Pool, start: number): Promise<{ changes: number; finals: number }> {
  const result = await pool.query<{ changes: number; finals: number }>(
    `SELECT count(*)::int AS changes,
            count(DISTINCT aggregate_id) FILTER (WHERE event_type = ANY($3))::int AS finals
     FROM events WHERE position > $1 AND event_type = ANY($2)`,
    [start, SAGA_EVENT_TYPES, FINAL_EVENTS],
  );
  return { changes: result.rows[0]?.changes ?? 0, finals: result.rows[0]?.finals ?? 0 };
}
