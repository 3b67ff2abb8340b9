// One call to one shard, from start to answer: sent to the shard's leader, not-leader answers
// followed (a bounded number of times), retried with backoff through cockatiel until the
// deadline. Once an attempt of a write may have applied, every later attempt carries the
// same write id, so however often it is sent it applies at most once; if no later answer
// tells, the call ends with `OutcomeUnknownError`, never with a plain failure. (While every
// attempt was refused outright, a retry takes a fresh id: the cluster remembers a client's
// last 32 ids per shard, and a fresh one cannot fall out of that window.)
import type { ClusterMapSource } from './cluster-map.ts';
import {
  CircuitOpenError,
  ClientClosedError,
  DeadlineExceededError,
  NotLeaderError,
  OutcomeUnknownError,
  type RaftcacheError,
  UnavailableError,
} from './errors.ts';
import type { ClientMetrics } from './metrics.ts';
import type { NodePool } from './node-pool.ts';
import { isWrite, type OpKind, type WireReply } from './operations.ts';
import { type Resilience, RetriableAttempt } from './resilience.ts';
import { isNodeFailure } from './status-errors.ts';
import { WriteIds } from './write-ids.ts';

/** An attempt with less time than this before the deadline is not started (after a first). */
const MIN_ATTEMPT_MS = 25;

export interface ShardCall {
  readonly op: OpKind;
  readonly shardId: number;
  /** The request as the wire wants it, but for a write's `write_id`, which the runner adds. */
  readonly request: object;
  /** `performance.now()` time by which the call must be over. */
  readonly deadline: number;
}

export interface CallRunnerOptions {
  /** Not-leader answers followed in a row at most, before a backoff (default 5). */
  readonly maxRedirects: number;
  /** One attempt's timeout, ms, when the deadline leaves more (default 2000). */
  readonly attemptTimeoutMs: number;
}

interface CallState {
  readonly call: ShardCall;
  attempts: number;
  /** An attempt of this write may have applied, and no answer since has told. */
  maybeApplied: boolean;
  /** The write's request with its current write id. */
  written: object | undefined;
  lastError: RaftcacheError | undefined;
}

export class CallRunner {
  readonly #maps: ClusterMapSource;
  readonly #nodes: NodePool;
  readonly #resilience: Resilience;
  readonly #metrics: ClientMetrics;
  readonly #options: CallRunnerOptions;
  readonly #writeIds = new WriteIds();
  #closed = false;

  constructor(
    maps: ClusterMapSource,
    nodes: NodePool,
    resilience: Resilience,
    metrics: ClientMetrics,
    options: CallRunnerOptions,
  ) {
    this.#maps = maps;
    this.#nodes = nodes;
    this.#resilience = resilience;
    this.#metrics = metrics;
    this.#options = options;
  }

  /** Runs the call; resolves with the node's reply or rejects with the call's final error. */
  async run(call: ShardCall): Promise<WireReply> {
    this.#metrics.calls++;
    const state: CallState = {
      call,
      attempts: 0,
      maybeApplied: false,
      written: undefined,
      lastError: undefined,
    };
    try {
      return await this.#resilience.run(() => this.#attempt(state));
    } catch (error) {
      throw finalError(state, error as RaftcacheError);
    }
  }

  close(): void {
    this.#closed = true;
  }

  async #attempt(state: CallState): Promise<WireReply> {
    const { call } = state;
    if (state.attempts++ > 0) {
      this.#metrics.retries++;
      if (state.maybeApplied) this.#metrics.ambiguousRetries++;
    }
    if (this.#closed) throw new ClientClosedError();
    const table = await this.#maps.load(call.deadline);
    const stale = (call.request as { consistency?: string }).consistency === 'STALE';
    let address = table.target(call.shardId, state.attempts, stale);
    let hops = 0;
    for (;;) {
      const left = call.deadline - performance.now();
      // Too little time left for an answer: the last error says more than a timeout would.
      if (left < (state.lastError ? MIN_ATTEMPT_MS : 1))
        throw state.lastError ?? new DeadlineExceededError(`${call.op} waited past its deadline`);
      try {
        const timeout = Math.min(left, this.#options.attemptTimeoutMs);
        const request = this.#request(state);
        return await this.#resilience.throughBreaker(address, () =>
          this.#nodes.transport(address).send(call.op, request, timeout),
        );
      } catch (thrown) {
        const error = thrown as RaftcacheError;
        state.lastError = error;
        if (error instanceof OutcomeUnknownError) state.maybeApplied = true;
        if (
          error instanceof NotLeaderError &&
          error.leader &&
          error.leader !== address &&
          hops < this.#options.maxRedirects
        ) {
          // Straight to the leader it names, no backoff.
          hops++;
          table.noteLeader(call.shardId, error.leader);
          this.#metrics.redirects++;
          address = error.leader;
          continue;
        }
        // A hint that cannot be followed (none, itself, too many hops) waits out a backoff.
        if (!isRetriable(error)) throw error;
        // The leader may have moved: ask around next time, with a fresh map.
        if (isNodeFailure(error) || error instanceof CircuitOpenError)
          table.forgetLeader(call.shardId, address);
        void this.#maps.refresh().catch(() => {});
        throw new RetriableAttempt(error, call.deadline);
      }
    }
  }

  /** The request to send now: a write keeps its id once it may have applied. */
  #request(state: CallState): object {
    const { call } = state;
    if (!isWrite(call.op)) return call.request;
    if (!state.written || !state.maybeApplied)
      state.written = { ...call.request, write_id: this.#writeIds.next(call.shardId) };
    return state.written;
  }
}

/** Errors that another attempt may not meet. */
function isRetriable(error: RaftcacheError): boolean {
  return (
    error instanceof UnavailableError ||
    error instanceof DeadlineExceededError ||
    error instanceof CircuitOpenError ||
    error instanceof NotLeaderError ||
    // A write's: its retry carries the same write id, so it applies at most once.
    error instanceof OutcomeUnknownError
  );
}

/** What the caller is told: a write that may have applied is never reported as failed. */
function finalError(state: CallState, error: RaftcacheError): RaftcacheError {
  if (!state.maybeApplied || error instanceof OutcomeUnknownError) return error;
  return new OutcomeUnknownError(
    `${state.call.op} may or may not have applied: an attempt got no answer, and the last said: ${error.message}`,
    { cause: error },
  );
}
