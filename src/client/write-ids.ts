// Write ids of one client: a session per shard (opened lazily, by its first write there, and
// shared by the writes issued while it opens), numbered writes, and the lowest number still
// awaiting its reply, which lets the shard drop the outcomes the client no longer needs.
import { randomUUID } from 'node:crypto';
import { DeadlineExceededError } from './errors.ts';

/** A write's identity on the wire (`WriteId` in the `.proto`). */
export interface WireWriteId {
  readonly client_id: string;
  readonly session_id: number;
  readonly sequence: number;
  readonly lowest_pending: number;
}

/** What opening a session on a shard answers. */
export interface OpenedSession {
  readonly sessionId: number;
  /** A write's sequence must stay below the lowest pending one plus this. */
  readonly maxPendingSpan: number;
}

/** Opens a session for `clientId` on `shardId` before `deadline` (a `performance.now()` time). */
export type SessionOpener = (
  shardId: number,
  clientId: string,
  deadline: number,
) => Promise<OpenedSession>;

/** One session on one shard, as the client sees it: its numbers, and the writes pending. */
export class ShardSession {
  readonly id: number;
  readonly #maxSpan: number;
  #next = 1;
  #lowest = 1;
  readonly #pending = new Set<number>();
  /** Writes waiting for room, woken as pending ones settle. */
  #waiting: (() => void)[] = [];

  constructor(opened: OpenedSession) {
    this.id = opened.sessionId;
    this.#maxSpan = opened.maxPendingSpan;
  }

  /** The lowest sequence still awaiting its reply (the next one when none is). */
  get lowestPending(): number {
    return this.#lowest;
  }

  get #full(): boolean {
    return this.#next - this.#lowest >= this.#maxSpan;
  }

  /**
   * A sequence number for a new write, pending until `settle`. While the session spans its
   * limit (the oldest pending write holds the window open), waits for room until `deadline`.
   */
  async take(deadline: number): Promise<number> {
    while (this.#full) await this.#room(deadline);
    const seq = this.#next++;
    this.#pending.add(seq);
    return seq;
  }

  /** The write numbered `seq` is over (answered, or given up): the shard may forget it. */
  settle(seq: number): void {
    if (!this.#pending.delete(seq)) return;
    while (this.#lowest < this.#next && !this.#pending.has(this.#lowest)) this.#lowest++;
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const wake of waiting) wake();
  }

  wire(clientId: string, seq: number): WireWriteId {
    return {
      client_id: clientId,
      session_id: this.id,
      sequence: seq,
      lowest_pending: this.#lowest,
    };
  }

  #room(deadline: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => {
          this.#waiting = this.#waiting.filter((wake) => wake !== done);
          reject(
            new DeadlineExceededError(
              `the write waited past its deadline for one of the ${this.#maxSpan} places of its session (the oldest pending write holds them)`,
            ),
          );
        },
        Math.max(0, deadline - performance.now()),
      );
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.#waiting.push(done);
    });
  }
}

/** A write's place in a session. */
export interface WriteSlot {
  readonly session: ShardSession;
  readonly seq: number;
}

/** A shard's current session: being opened, then open. */
interface CurrentSession {
  readonly opening: Promise<ShardSession>;
  open: ShardSession | undefined;
}

export class WriteIds {
  readonly clientId: string;
  readonly #open: SessionOpener;
  /** The session new writes to each shard use. */
  readonly #sessions = new Map<number, CurrentSession>();

  constructor(open: SessionOpener, clientId: string = `sdk-${randomUUID()}`) {
    this.#open = open;
    this.clientId = clientId;
  }

  /** A place for a new write to `shardId`, opening the shard's session first if need be. */
  async take(shardId: number, deadline: number): Promise<WriteSlot> {
    let current = this.#sessions.get(shardId);
    if (current === undefined) {
      const opening = this.#open(shardId, this.clientId, deadline).then(
        (opened) => new ShardSession(opened),
      );
      const started: CurrentSession = { opening, open: undefined };
      current = started;
      this.#sessions.set(shardId, started);
      opening.then(
        (session) => {
          started.open = session;
        },
        // A failed opening is not kept: the next write tries again.
        () => {
          if (this.#sessions.get(shardId) === started) this.#sessions.delete(shardId);
        },
      );
    }
    const session = await current.opening;
    return { session, seq: await session.take(deadline) };
  }

  /** The shard no longer holds `session`: later writes open a new one. */
  expired(shardId: number, session: ShardSession): void {
    if (this.#sessions.get(shardId)?.open === session) this.#sessions.delete(shardId);
  }
}
