/**
 * One index less on every append.
 *
 * The index on events.event_type served only the conservation audit, an occasional query that reads
 * most of the store anyway; every append paid for it on the hot path.
 */
export const eventsWithoutTypeIndexMigration = {
  version: 5,
  name: 'events-without-type-index',
  sql: 'DROP INDEX IF EXISTS events_event_type;',
};
