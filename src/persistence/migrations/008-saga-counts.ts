/**
 * How many commandes are in each state, kept by the saga actors with the rows they write (the same
 * statement), so that a scrape of /metrics reads a few rows instead of grouping every saga ever run, a
 * cost that grew with history. The sagas already there are counted here.
 */
export const sagaCountsMigration = {
  version: 8,
  name: 'saga-counts',
  sql: `
CREATE TABLE saga_counts (
  statut text PRIMARY KEY,
  commandes bigint NOT NULL
);

-- Writers wait until the count is made, so that none is counted twice or missed.
LOCK TABLE sagas IN SHARE MODE;
INSERT INTO saga_counts (statut, commandes) SELECT statut, count(*) FROM sagas GROUP BY statut;
`,
};
