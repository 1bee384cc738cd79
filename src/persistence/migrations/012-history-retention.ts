/**
 * What lets the tables stop growing with history. On Redis Streams, how far each consumer group has
 * handled the event store (a low-water mark, recorded from the group's state in Redis): after Redis loses
 * its data the relay publishes again only from the oldest of them. The inbox rows at or below the oldest
 * group position are pruned, and how far is kept here: nothing may be delivered again at or below it.
 * Idempotency keys of checkouts are kept for a stated time (IDEMPOTENCY_KEY_RETENTION_MS), so they need
 * their creation time.
 */
export const historyRetentionMigration = {
  version: 12,
  name: 'history-retention',
  sql: `
CREATE TABLE consumer_group_positions (
  consumer_group text        PRIMARY KEY,
  -- Every event of the group's streams at or below this position was handled (or dead-lettered and still
  -- waiting, which holds it below): recorded only upwards.
  position       bigint      NOT NULL CHECK (position >= 0),
  recorded_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE inbox_pruned (
  only_row   boolean     PRIMARY KEY DEFAULT true CHECK (only_row),
  position   bigint      NOT NULL DEFAULT 0 CHECK (position >= 0),
  pruned_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO inbox_pruned DEFAULT VALUES;

ALTER TABLE checkouts ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX checkouts_created_at ON checkouts (created_at);
`,
};
