/**
 * What the PostgreSQL bus needs beside the event store it reads (each consumer group's checkpoint is a
 * row of `checkpoints`, named `bus:<group>`): the dead letters of its groups, and the settings that every
 * process sharing this database must agree on (which bus carries its events).
 */
export const postgresBusMigration = {
  version: 9,
  name: 'postgres-bus',
  sql: `
CREATE TABLE bus_dead_letters (
  id             bigserial   PRIMARY KEY,
  consumer_group text        NOT NULL,
  position       bigint      NOT NULL,
  event_id       uuid,
  stream         text        NOT NULL,
  reason         text        NOT NULL,
  deliveries     integer     NOT NULL,
  failed_at      timestamptz NOT NULL DEFAULT now(),
  -- Set by a re-drive: the group applies the event again, then removes the row.
  redrive_requested_at timestamptz
);
CREATE INDEX bus_dead_letters_redrive ON bus_dead_letters (consumer_group) WHERE redrive_requested_at IS NOT NULL;

CREATE TABLE choreo_settings (
  key    text        PRIMARY KEY,
  value  text        NOT NULL,
  set_at timestamptz NOT NULL DEFAULT now()
);
`,
};
