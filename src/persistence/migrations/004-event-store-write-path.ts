/**
 * Lighter appends.
 *
 * The per-statement NOTIFY trigger made every appending transaction take PostgreSQL's notification lock
 * at commit, which serializes those commits (no group commit). Processes now wake their own readers after
 * committing, and tell the others with one coalesced NOTIFY outside the appending transactions
 * (EventStoreNotifier).
 *
 * Readers by position no longer go in transaction_id order (readAllGapSafe waits at holes instead), so its
 * index is only a cost on every insert, and checkpoints need no transaction id. The events column stays:
 * appendToStream still fills it, before taking positions, which is what the hole rule relies on.
 */
export const eventStoreWritePathMigration = {
  version: 4,
  name: 'event-store-write-path',
  sql: `
DROP TRIGGER IF EXISTS events_appended ON events;
DROP FUNCTION IF EXISTS events_notify_appended();
DROP INDEX IF EXISTS events_commit_order;
ALTER TABLE checkpoints DROP COLUMN IF EXISTS transaction_id;
`,
};
