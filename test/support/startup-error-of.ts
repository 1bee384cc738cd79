import { expect } from 'vitest';
import { StartupError } from '../../src/startup/startup-error.js';

/** The StartupError an attempt to start ends with (the test fails if it ends any other way). */
export async function startupErrorOf(attempt: Promise<unknown>): Promise<StartupError> {
  const error = await attempt.then(
    () => null,
    (failure: unknown) => failure,
  );
  expect(error).toBeInstanceOf(StartupError);
  return error as StartupError;
}
