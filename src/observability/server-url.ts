/** A server's URL as it may be shown in a banner or an error: the password replaced by `***`. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    // Not a URL at all: showing it could show a secret, and the variable's name says where to look.
    return '(an unparsable URL)';
  }
}

/** The short reason of a network error, e.g. `connect ECONNREFUSED 127.0.0.1:5999`, never a stack. */
export function reasonOf(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return reasonOf(error.errors[0]);
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}
