/**
 * Each client's bearer token, as its SHA-256 only: the token is shown once (when the client is created, or
 * a new one is issued) and never stored. One row per client, so a new token replaces the old one.
 */
export const clientTokensMigration = {
  version: 11,
  name: 'client-tokens',
  sql: `
CREATE TABLE client_tokens (
  client_id    integer     PRIMARY KEY REFERENCES clients (id),
  token_sha256 bytea       NOT NULL CHECK (octet_length(token_sha256) = 32),
  issued_at    timestamptz NOT NULL DEFAULT now()
);
`,
};
