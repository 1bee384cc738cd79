/**
 * The per-statement NOTIFY trigger made every appending transaction take PostgreSQL's notification lock
 * at commit, which serializes those commits (no group commit). Processes now wake their own readers after
 * committing, and tell the others with one coalesced NOTIFY outside the appending transactions
 * (EventStoreNotifier).
 */
export const notifyAfterCommitMigration = {
  version: 3,
  name: 'notify-after-commit',
  sql: `
DROP TRIGGER IF EXISTS events_appended ON events;
DROP FUNCTION IF EXISTS events_notify_appended();
`,
};
