/**
 * What the explorer (/explorer) reads beside the event store: each running process's heartbeat (which
 * actors it hosts, which of them are paused, where its API answers), and the orders newest first.
 */
export const explorerMigration = {
  version: 10,
  name: 'explorer',
  sql: `
CREATE TABLE choreo_processes (
  process_id   text        PRIMARY KEY,
  hostname     text        NOT NULL,
  pid          integer     NOT NULL,
  bus          text        NOT NULL,
  actors       text[]      NOT NULL,
  -- The actors that read the bus (and can be paused), among those hosted.
  consumers    text[]      NOT NULL,
  paused       text[]      NOT NULL,
  api_url      text,
  started_at   timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX commandes_vue_newest ON commandes_vue (created_at DESC, commande_id);
`,
};
