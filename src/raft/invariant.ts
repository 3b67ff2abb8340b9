/** Thrown when the core finds its own state broken: continuing would corrupt data. */
export class RaftInvariantError extends Error {
  override name = 'RaftInvariantError';
}

export function invariant(condition: boolean, message: string | (() => string)): asserts condition {
  if (!condition) {
    throw new RaftInvariantError(typeof message === 'string' ? message : message());
  }
}
