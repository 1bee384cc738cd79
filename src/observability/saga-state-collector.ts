import { Gauge, type Registry } from 'prom-client';
import { z } from 'zod';
import { COMMANDE_STATUTS } from '../machines/commande-replay.js';
import type { Pool } from '../persistence/database.js';
import { METRIC } from './metrics.js';
import type { ScrapeProbe } from './scrape-probe.js';

export interface SagaStates {
  /** Every known state, at 0 when no commande is in it, plus any state found in the table. */
  parEtat: Map<string, number>;
  nonFinales: number;
  bloquees: number;
  /** Age of the oldest commande not in a final state; 0 when there is none. */
  ageMaxSecondes: number;
}

const rowSchema = z.object({
  non_finales: z.number().int(),
  bloquees: z.number().int(),
  age_max: z.number().nullable(),
  etat: z.string().nullable(),
  commandes: z.number().int().nullable(),
});

/**
 * The machine state each commande is in right now: the counts kept with the saga actors' rows (migration
 * 008), and the sagas not final, through their own index. Neither grows with the commandes finished.
 */
export async function readSagaStates(pool: Pool, stuckAfterSeconds: number): Promise<SagaStates> {
  const result = await pool.query(
    `SELECT in_flight.*, c.statut AS etat, c.commandes::int AS commandes
       FROM (
         SELECT count(*)::int AS non_finales,
                count(*) FILTER (WHERE updated_at < now() - make_interval(secs => $1))::int AS bloquees,
                extract(epoch FROM now() - min(started_at))::float8 AS age_max
           FROM sagas
          WHERE NOT final
       ) AS in_flight
       LEFT JOIN saga_counts AS c ON true`,
    [stuckAfterSeconds],
  );
  const states: SagaStates = {
    parEtat: new Map(COMMANDE_STATUTS.map((etat) => [etat, 0])),
    nonFinales: 0,
    bloquees: 0,
    ageMaxSecondes: 0,
  };
  for (const row of result.rows.map((raw) => rowSchema.parse(raw))) {
    if (row.etat !== null) states.parEtat.set(row.etat, row.commandes ?? 0);
    states.nonFinales = row.non_finales;
    states.bloquees = row.bloquees;
    states.ageMaxSecondes = row.age_max ?? 0;
  }
  return states;
}

/** Gauges of the commandes by state, filled from one reading per scrape; absent while it fails. */
export function registerSagaStateMetrics(
  registry: Registry,
  probe: ScrapeProbe<SagaStates>,
  stuckAfterSeconds: number,
): void {
  new Gauge({
    name: METRIC.commandesParEtat,
    help: 'Commandes currently in each state of the order machine',
    labelNames: ['etat'] as const,
    registers: [registry],
    async collect() {
      const states = await probe.sample();
      this.reset();
      for (const [etat, count] of states?.parEtat ?? []) this.set({ etat }, count);
    },
  });
  registerSingleValue(registry, probe, {
    name: METRIC.commandesNonFinales,
    help: 'Commandes not in a final state (in flight or stuck)',
    value: (states) => states.nonFinales,
  });
  registerSingleValue(registry, probe, {
    name: METRIC.commandesBloquees,
    help: `Commandes not in a final state whose last step is older than ${stuckAfterSeconds} s`,
    value: (states) => states.bloquees,
  });
  registerSingleValue(registry, probe, {
    name: METRIC.commandeNonFinaleAgeMax,
    help: 'Age of the oldest commande not in a final state (s); 0 when there is none',
    value: (states) => states.ageMaxSecondes,
  });
}

function registerSingleValue(
  registry: Registry,
  probe: ScrapeProbe<SagaStates>,
  metric: { name: string; help: string; value: (states: SagaStates) => number },
): void {
  new Gauge({
    name: metric.name,
    help: metric.help,
    registers: [registry],
    async collect() {
      const states = await probe.sample();
      if (states) this.set(metric.value(states));
      else this.remove();
    },
  });
}
