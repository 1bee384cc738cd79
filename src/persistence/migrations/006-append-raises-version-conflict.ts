/**
 * An append to a stream that is not at the expected version fails with an error instead of inserting
 * nothing: the append can then travel with the COMMIT (one round trip), since a conflict aborts the
 * transaction on its own rather than waiting for the caller to count the rows inserted.
 * serialization_failure, like the unique-index violation a concurrent writer of the same version gets.
 */
export const appendRaisesVersionConflictMigration = {
  version: 6,
  name: 'append-raises-version-conflict',
  sql: `
CREATE FUNCTION version_conflict(aggregate_id text, expected integer, actual integer) RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'stream % is at version %, not at the expected version %', aggregate_id, actual, expected
    USING ERRCODE = 'serialization_failure';
END $$;
`,
};
