import { eventStoreMigration } from './001-event-store.js';
import { servicesMigration } from './002-services.js';
import { sagaDeadlinesMigration } from './003-saga-deadlines.js';
import { eventStoreWritePathMigration } from './004-event-store-write-path.js';
import { eventsWithoutTypeIndexMigration } from './005-events-without-type-index.js';
import { appendRaisesVersionConflictMigration } from './006-append-raises-version-conflict.js';
import { appendChecksItsCountMigration } from './007-append-checks-its-count.js';
import { sagaCountsMigration } from './008-saga-counts.js';
import { postgresBusMigration } from './009-postgres-bus.js';
import { explorerMigration } from './010-explorer.js';
import { clientTokensMigration } from './011-client-tokens.js';
import { historyRetentionMigration } from './012-history-retention.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** In order. A migration, once released, is never edited: add a new one. */
export const MIGRATIONS: Migration[] = [
  eventStoreMigration,
  servicesMigration,
  sagaDeadlinesMigration,
  eventStoreWritePathMigration,
  eventsWithoutTypeIndexMigration,
  appendRaisesVersionConflictMigration,
  appendChecksItsCountMigration,
  sagaCountsMigration,
  postgresBusMigration,
  explorerMigration,
  clientTokensMigration,
  historyRetentionMigration,
];
