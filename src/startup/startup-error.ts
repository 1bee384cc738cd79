/**
 * A start-up failure the user can act on (a server that does not answer, a database bound to another
 * bus): its message is the whole text to show, so main.ts prints it without a stack trace.
 */
export class StartupError extends Error {
  override readonly name = 'StartupError';
}
