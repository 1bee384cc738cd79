/** Errors the system raises on purpose, each with a code that the HTTP layer maps in one place. */
export abstract class DomainError extends Error {
  abstract readonly code: string;
}

export class NotFoundError extends DomainError {
  readonly code = 'NOT_FOUND';
}

export class ConflictError extends DomainError {
  readonly code = 'CONFLICT';
}

export class ValidationError extends DomainError {
  readonly code = 'VALIDATION';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/** Another writer appended to the same stream first; the whole unit of work may be retried. */
export class VersionConflictError extends DomainError {
  readonly code = 'VERSION_CONFLICT';
  constructor(
    readonly aggregateId: string,
    readonly expectedVersion: number,
  ) {
    super(`stream ${aggregateId} is no longer at version ${expectedVersion}`);
  }
}

/** The order machine does not accept this event in the commande's current state. */
export class TransitionRefusedError extends DomainError {
  readonly code = 'TRANSITION_REFUSED';
  constructor(
    readonly aggregateId: string,
    readonly eventType: string,
    readonly statut: string,
  ) {
    super(`commande ${aggregateId} in state ${statut} does not accept ${eventType}`);
  }
}

/** A server this process depends on does not answer; the message names it and its setting. */
export class UnavailableError extends DomainError {
  readonly code = 'UNAVAILABLE';
}
