import { parseSagaEnvelope, type SagaEnvelope } from '../../src/domain/events.js';
import type { Pool } from '../../src/persistence/database.js';
import { readStream } from '../../src/persistence/event-store.js';

/** A commande's events, in version order, as the services receive them. */
export async function eventsOf(pool: Pool, commandeId: string): Promise<SagaEnvelope[]> {
  return (await readStream(pool, commandeId)).map(parseSagaEnvelope);
}

export async function eventTypesOf(pool: Pool, commandeId: string): Promise<string[]> {
  return (await eventsOf(pool, commandeId)).map((event) => event.event_type);
}

/** The commande's event of this type; fails when it has none. */
export async function eventOf(pool: Pool, commandeId: string, eventType: string): Promise<SagaEnvelope> {
  const event = (await eventsOf(pool, commandeId)).find((candidate) => candidate.event_type === eventType);
  if (!event) throw new Error(`commande ${commandeId} has no ${eventType}`);
  return event;
}
