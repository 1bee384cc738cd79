/**
 * Polls until `probe` returns a value that satisfies `accept`, or fails with the last value seen once the
 * deadline passes. Tests wait on conditions, never on fixed sleeps.
 */
export async function eventually<T>(
  probe: () => Promise<T>,
  accept: (value: T) => boolean,
  options: { timeoutMs?: number; intervalMs?: number; description?: string } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  const interval = options.intervalMs ?? 25;
  let last: T | undefined;
  let lastError: unknown;
  for (;;) {
    try {
      last = await probe();
      if (accept(last)) return last;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const seen =
        lastError instanceof Error
          ? `error: ${lastError.message}`
          : // A BigInt (a transaction id, a position read as int8) has no JSON form of its own.
            JSON.stringify(last, (_key, value: unknown) => (typeof value === 'bigint' ? `${value}n` : value));
      throw new Error(`timed out waiting for ${options.description ?? 'condition'}; last seen: ${seen}`);
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}
