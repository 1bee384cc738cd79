export const eventStoreMigration = {
  version: 1,
  name: 'event-store',
  sql: `
CREATE TABLE events (
  position       bigserial PRIMARY KEY,
  event_id       uuid        NOT NULL UNIQUE,
  event_type     text        NOT NULL,
  aggregate_id   text        NOT NULL,
  version        integer     NOT NULL CHECK (version >= 1),
  occurred_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
  source         text        NOT NULL,
  correlation_id text        NOT NULL,
  causation_id   uuid,
  data           jsonb       NOT NULL,
  -- Readers that checkpoint go in (transaction_id, position) order and stop below the oldest transaction
  -- still in flight: positions are taken at insert but become visible at commit, so position order alone
  -- would skip a row whose transaction commits after a later one.
  transaction_id xid8        NOT NULL DEFAULT pg_current_xact_id(),
  UNIQUE (aggregate_id, version)
);
CREATE INDEX events_commit_order ON events (transaction_id, position);
CREATE INDEX events_event_type ON events (event_type);

CREATE FUNCTION events_are_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the event store is append-only: % on events is forbidden', TG_OP;
END $$;
CREATE TRIGGER events_no_update BEFORE UPDATE OR DELETE ON events
  FOR EACH ROW EXECUTE FUNCTION events_are_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
  FOR EACH STATEMENT EXECUTE FUNCTION events_are_append_only();

-- Wakes the outbox relay and the projections as soon as new events commit (they also poll, slowly).
CREATE FUNCTION events_notify_appended() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('choreo_events', '');
  RETURN NULL;
END $$;
CREATE TRIGGER events_appended AFTER INSERT ON events
  FOR EACH STATEMENT EXECUTE FUNCTION events_notify_appended();

-- Readers of the event store (outbox relay, projections) remember how far they got.
CREATE TABLE checkpoints (
  name           text   PRIMARY KEY,
  transaction_id xid8   NOT NULL DEFAULT '0',
  position       bigint NOT NULL DEFAULT 0
);

-- Which incoming events each consumer has already applied: the record that makes redelivery harmless.
CREATE TABLE inbox (
  consumer     text        NOT NULL,
  event_id     uuid        NOT NULL,
  processed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer, event_id)
);
`,
};
