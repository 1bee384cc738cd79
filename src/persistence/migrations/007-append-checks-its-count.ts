/**
 * The append checks that it inserted every event it was given, instead of looking up each stream's head a
 * second time to find the stale one (migration 006): that second look made PostgreSQL's plan for the
 * append twice as slow to run, and with its default plan cache mode it planned the append anew at every
 * call. A stale stream still fails the whole statement, with serialization_failure.
 */
export const appendChecksItsCountMigration = {
  version: 7,
  name: 'append-checks-its-count',
  sql: `
CREATE FUNCTION stale_append(appended bigint, planned integer) RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% of % events appended: a stream was not at its expected version', appended, planned
    USING ERRCODE = 'serialization_failure';
END $$;
DROP FUNCTION IF EXISTS version_conflict(text, integer, integer);
`,
};
