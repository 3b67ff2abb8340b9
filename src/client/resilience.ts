// The client's resilience policies, from cockatiel: one bulkhead for the whole client (calls
// running at once, and a bounded queue), one retry policy (exponential backoff with
// decorrelated jitter, never waiting past the call's deadline), a circuit breaker per node.
import {
  BrokenCircuitError,
  type BulkheadPolicy,
  BulkheadRejectedError,
  bulkhead,
  type CircuitBreakerPolicy,
  ConsecutiveBreaker,
  circuitBreaker,
  ExponentialBackoff,
  handleType,
  handleWhen,
  type IBackoff,
  type IBackoffFactory,
  type IRetryBackoffContext,
  type RetryPolicy,
  retry,
} from 'cockatiel';
import { BulkheadFullError, CircuitOpenError, type RaftcacheError } from './errors.ts';
import { isNodeFailure } from './status-errors.ts';

export interface ResilienceOptions {
  /** Calls running at once (default 1024). */
  readonly maxConcurrency: number;
  /** Calls waiting for one of those places (default 4096); beyond, `BulkheadFullError`. */
  readonly maxQueued: number;
  /** Attempts of one call at most, the first included (default 50; the deadline comes first). */
  readonly maxAttempts: number;
  /** First retry delay, ms (default 10); grows with jitter up to `maxRetryDelayMs`. */
  readonly initialRetryDelayMs: number;
  readonly maxRetryDelayMs: number;
  /** Consecutive failures to reach a node that open its circuit (default 5). */
  readonly breakerThreshold: number;
  /** How long an open circuit stays open before a trial call, ms (default 500, doubling). */
  readonly halfOpenAfterMs: number;
}

export const DEFAULT_RESILIENCE: ResilienceOptions = {
  maxConcurrency: 1024,
  maxQueued: 4096,
  maxAttempts: 50,
  initialRetryDelayMs: 10,
  maxRetryDelayMs: 500,
  breakerThreshold: 5,
  halfOpenAfterMs: 500,
};

/** An attempt that failed in a way worth retrying; carries the call's deadline to the backoff. */
export class RetriableAttempt extends Error {
  readonly error: RaftcacheError;
  /** `performance.now()` time by which the call must be over. */
  readonly deadline: number;

  constructor(error: RaftcacheError, deadline: number) {
    super(error.message);
    this.error = error;
    this.deadline = deadline;
  }
}

export class Resilience {
  readonly #options: ResilienceOptions;
  readonly #bulkhead: BulkheadPolicy;
  readonly #retry: RetryPolicy;
  readonly #breakers = new Map<string, CircuitBreakerPolicy>();

  constructor(options: ResilienceOptions) {
    this.#options = options;
    this.#bulkhead = bulkhead(options.maxConcurrency, options.maxQueued);
    this.#retry = retry(handleType(RetriableAttempt), {
      maxAttempts: options.maxAttempts - 1,
      backoff: new DeadlineBackoff(
        new ExponentialBackoff({
          initialDelay: options.initialRetryDelayMs,
          maxDelay: options.maxRetryDelayMs,
        }),
      ),
    });
  }

  /**
   * Runs `attempt` within the bulkhead, again after a backoff each time it throws a
   * `RetriableAttempt`. What it finally throws comes out unwrapped.
   */
  async run<T>(attempt: () => Promise<T>): Promise<T> {
    try {
      return await this.#bulkhead.execute(() => this.#retry.execute(attempt));
    } catch (error) {
      if (error instanceof RetriableAttempt) throw error.error;
      if (error instanceof BulkheadRejectedError)
        throw new BulkheadFullError(this.#options.maxConcurrency, this.#options.maxQueued);
      throw error;
    }
  }

  /** Runs `send` through the circuit breaker of the node at `address`. */
  async throughBreaker<T>(address: string, send: () => Promise<T>): Promise<T> {
    try {
      return await this.#breaker(address).execute(send);
    } catch (error) {
      if (error instanceof BrokenCircuitError) throw new CircuitOpenError(address);
      throw error;
    }
  }

  #breaker(address: string): CircuitBreakerPolicy {
    let breaker = this.#breakers.get(address);
    if (!breaker) {
      breaker = circuitBreaker(handleWhen(isNodeFailure), {
        halfOpenAfter: new ExponentialBackoff({
          initialDelay: this.#options.halfOpenAfterMs,
          maxDelay: 30_000,
        }),
        breaker: new ConsecutiveBreaker(this.#options.breakerThreshold),
      });
      this.#breakers.set(address, breaker);
    }
    return breaker;
  }
}

/** A backoff whose delays end by the deadline of the call that failed. */
class DeadlineBackoff implements IBackoffFactory<IRetryBackoffContext<unknown>> {
  readonly #inner: IBackoffFactory<IRetryBackoffContext<unknown>>;

  constructor(inner: IBackoffFactory<IRetryBackoffContext<unknown>>) {
    this.#inner = inner;
  }

  next(context: IRetryBackoffContext<unknown>): IBackoff<IRetryBackoffContext<unknown>> {
    return clipped(this.#inner.next(context), context);
  }
}

function clipped(
  backoff: IBackoff<IRetryBackoffContext<unknown>>,
  context: IRetryBackoffContext<unknown>,
): IBackoff<IRetryBackoffContext<unknown>> {
  const failed = 'error' in context.result ? context.result.error : undefined;
  const left =
    failed instanceof RetriableAttempt ? failed.deadline - performance.now() : backoff.duration;
  return {
    duration: Math.max(0, Math.min(backoff.duration, left)),
    next: (next) => clipped(backoff.next(next), next),
  };
}
