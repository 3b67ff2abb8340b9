// One call to one shard, from start to answer: sent to the shard's leader, not-leader answers
// followed (a bounded number of times), retried with backoff through cockatiel until the
// deadline. A write takes a place in its shard's client session before it enters the
// bulkhead (write-ids.ts; so writes waiting for a session to open hold no place the opening
// needs), and every attempt carries that write id, so however often it is sent it applies
// at most once; if no later answer tells, the call ends with `OutcomeUnknownError`, never
// with a plain failure. A write refused because its session expired did not apply: it
// takes a place in a new session and goes again, unless an earlier attempt may have applied
// (then its outcome is unknown).
import type { ClusterMapSource } from './cluster-map.ts';
import {
  CircuitOpenError,
  ClientClosedError,
  DeadlineExceededError,
  InternalError,
  NotLeaderError,
  OutcomeUnknownError,
  type RaftcacheError,
  SessionExpiredError,
  UnavailableError,
} from './errors.ts';
import type { ClientMetrics } from './metrics.ts';
import type { NodePool } from './node-pool.ts';
import { isWrite, type OpKind, type WireReply } from './operations.ts';
import { type Resilience, RetriableAttempt } from './resilience.ts';
import { isNodeFailure } from './status-errors.ts';
import { type OpenedSession, WriteIds, type WriteSlot } from './write-ids.ts';

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
  /** A write's place in its shard's session. */
  slot: WriteSlot | undefined;
  lastError: RaftcacheError | undefined;
}

export class CallRunner {
  readonly #maps: ClusterMapSource;
  readonly #nodes: NodePool;
  readonly #resilience: Resilience;
  readonly #metrics: ClientMetrics;
  readonly #options: CallRunnerOptions;
  readonly #writeIds = new WriteIds((shardId, clientId, deadline) =>
    this.#openSession(shardId, clientId, deadline),
  );
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
      slot: undefined,
      lastError: undefined,
    };
    for (;;) {
      try {
        if (isWrite(call.op)) state.slot = await this.#writeIds.take(call.shardId, call.deadline);
        return await this.#resilience.run(() => this.#attempt(state));
      } catch (error) {
        const slot = state.slot;
        if (error instanceof SessionExpiredError && slot !== undefined) {
          this.#writeIds.expired(call.shardId, slot.session);
          // This attempt did not apply; unless an earlier one may have, again in a new session.
          if (!state.maybeApplied && call.deadline - performance.now() >= MIN_ATTEMPT_MS) {
            slot.session.settle(slot.seq);
            state.slot = undefined;
            continue;
          }
        }
        throw finalError(state, error as RaftcacheError);
      } finally {
        // Over, whatever the answer: the shard may forget the write from now on.
        if (state.slot !== undefined) state.slot.session.settle(state.slot.seq);
      }
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

  /** The request to send now: a write with its write id, the lowest pending seq as it is now. */
  #request(state: CallState): object {
    const { call, slot } = state;
    if (slot === undefined) return call.request;
    return { ...call.request, write_id: slot.session.wire(this.#writeIds.clientId, slot.seq) };
  }

  /** Opens a session on the shard's leader: a call of its own, safe to retry. */
  async #openSession(shardId: number, clientId: string, deadline: number): Promise<OpenedSession> {
    let reply: WireReply;
    try {
      reply = await this.run({
        op: 'open_session',
        shardId,
        request: { shard_id: shardId, client_id: clientId },
        deadline,
      });
    } catch (error) {
      if (!isRetriable(error as RaftcacheError)) throw error;
      throw new UnavailableError(
        `a write to shard ${shardId} was not sent, so it did not apply: no session could be opened there (${(error as Error).message})`,
        { cause: error },
      );
    }
    const sessionId = Number(reply.session_id);
    const maxPendingSpan = Number(reply.max_pending_span);
    if (!Number.isSafeInteger(sessionId) || sessionId < 1 || !(maxPendingSpan >= 1))
      throw new InternalError(`OpenSession answered ${JSON.stringify(reply)}`);
    return { sessionId, maxPendingSpan };
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
