/**
 * A leader's lease: until it expires, on the leader's monotonic clock, no other node can have
 * been elected, so reads need no heartbeat round. It starts when a heartbeat round that a
 * majority confirmed was sent, and lasts `durationMs` (less than the followers' stickiness by
 * the drift margin). A leader transfer revokes it for the rest of the term: a `timeoutNow`
 * still in flight may start an election past the stickiness the lease rests on.
 */
export class Lease {
  readonly #durationMs: number;
  #expiresAt = Number.NEGATIVE_INFINITY;
  #revoked = false;

  constructor(durationMs: number) {
    this.#durationMs = durationMs;
  }

  /** A round sent at `sentAt` was confirmed by a majority. */
  extendFrom(sentAt: number): void {
    if (!this.#revoked) this.#expiresAt = Math.max(this.#expiresAt, sentAt + this.#durationMs);
  }

  holds(now: number): boolean {
    return now < this.#expiresAt;
  }

  revoke(): void {
    this.#expiresAt = Number.NEGATIVE_INFINITY;
    this.#revoked = true;
  }

  /** A new term, a new leadership: no lease until a round is confirmed. */
  reset(): void {
    this.#expiresAt = Number.NEGATIVE_INFINITY;
    this.#revoked = false;
  }
}
