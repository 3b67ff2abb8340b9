// Warnings that a peer can cause (bad frames, refused links, dropped messages) come in floods
// when a peer is broken: each kind is logged at most once per interval, and the next one
// logged says how many were left out in between.
import type { Logger } from 'pino';

/** Warnings are logged at most this often per kind (default). */
const INTERVAL_MS = 10_000;

export class ThrottledWarnings {
  readonly logger: Logger;
  readonly #intervalMs: number;
  readonly #clock: () => number;
  #lastAt = Number.NEGATIVE_INFINITY;
  #suppressed = 0;
  /** Warnings asked for, logged or not. */
  total = 0;

  constructor(logger: Logger, intervalMs = INTERVAL_MS, clock = () => performance.now()) {
    this.logger = logger;
    this.#intervalMs = intervalMs;
    this.#clock = clock;
  }

  /** Logs at warn, unless one was logged less than an interval ago (then it is counted). */
  warn(fields: Record<string, unknown>, message: string): void {
    this.total++;
    const now = this.#clock();
    if (now - this.#lastAt < this.#intervalMs) {
      this.#suppressed++;
      return;
    }
    this.#lastAt = now;
    this.logger.warn({ ...fields, suppressedSinceLast: this.#suppressed }, message);
    this.#suppressed = 0;
  }
}
