/**
 * Thrown where code finds its own state broken: a bug, never bad input, and going on would
 * corrupt replicated data. One class for the raft core and the cache state machine alike
 * (both are a replica's state): whoever drives a replica treats it the same either way.
 */
export class InvariantError extends Error {
  override name = 'InvariantError';
}

export function invariant(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) {
    throw new InvariantError(typeof message === 'string' ? message : message());
  }
}
