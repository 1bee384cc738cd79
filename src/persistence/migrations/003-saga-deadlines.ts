export const sagaDeadlinesMigration = {
  version: 3,
  name: 'saga-deadlines',
  sql: `
-- When a commande that is waiting on a service expires, as a row: it survives restarts, unlike a timer.
ALTER TABLE sagas ADD COLUMN deadline_at timestamptz;
CREATE INDEX sagas_deadline ON sagas (deadline_at) WHERE deadline_at IS NOT NULL;
`,
};
