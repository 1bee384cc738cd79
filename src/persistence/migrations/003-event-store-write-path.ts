/**
 * Lighter appends.
 *
 * The per-statement NOTIFY trigger made every appending transaction take PostgreSQL's notification lock
 * at commit, which serializes those commits (no group commit). Processes now wake their own readers after
 * committing, and tell the others with one coalesced NOTIFY outside the appending transactions
 * (EventStoreNotifier).
 *
 * Readers by position no longer filter on transaction_id (readAllGapSafe waits at holes instead), so its
 * index is only a cost on every insert. The column stays: appendToStream still fills it.
 */
export const eventStoreWritePathMigration = {
  version: 3,
  name: 'event-store-write-path',
  sql: `
DROP TRIGGER IF EXISTS events_appended ON events;
DROP FUNCTION IF EXISTS events_notify_appended();
DROP INDEX IF EXISTS events_transaction_id;
`,
};
