import { MemoryLogStorage } from '../../src/raft/log-storage.ts';
import type { Entry, Message, MessageType, NodeId } from '../../src/raft/types.ts';
import { type HostOptions, type ReadyReport, ReplicaHost } from './replica-host.ts';

/** The group's ids, and the host options every replica shares (defaults filled in). */
export interface ClusterOptions extends Partial<Omit<HostOptions, 'voters'>> {
  readonly ids: readonly NodeId[];
  /** Logs to start from, by node: the term of each entry from index 1, and the hard state term. */
  readonly logs?: ReadonlyMap<NodeId, { readonly terms: readonly number[]; readonly term: number }>;
}

/**
 * A deterministic in-memory group for unit and scenario tests, after etcd's test network:
 * messages are delivered in the order sent, synchronously, until the group is quiet, through
 * filters that `cut`, `isolate` and `ignore` can set.
 */
export class Cluster {
  readonly hosts = new Map<NodeId, ReplicaHost>();
  readonly #down = new Set<NodeId>();
  readonly #cut = new Set<string>();
  readonly #ignored = new Set<MessageType>();
  /** Every message delivered, for tests that inspect traffic. */
  readonly delivered: Message[] = [];
  /** Read states and failed reads, as the nodes handed them out, oldest first. */
  readonly reads: {
    readonly id: NodeId;
    readonly context: number;
    readonly index: number | 'failed';
  }[] = [];
  /** While set, `snap` messages wait in `heldSnapshots`, as transfers still streaming. */
  holdSnapshots = false;
  readonly heldSnapshots: Message[] = [];
  /** Called on each delivered message; a test may record or rewrite traffic. */
  onDeliver?: (m: Message) => Message | undefined;

  readonly #options: ClusterOptions;

  constructor(options: ClusterOptions) {
    this.#options = options;
    for (const id of options.ids) {
      const storage = new MemoryLogStorage();
      const preset = options.logs?.get(id);
      if (preset) {
        storage.append(
          preset.terms.map(
            (term, i): Entry => ({ term, index: i + 1, type: 'normal', data: new Uint8Array(0) }),
          ),
        );
        storage.setHardState({ term: preset.term, vote: 0, commit: 0 });
      }
      this.hosts.set(id, this.#newHost(id, options.ids, storage));
    }
  }

  /**
   * A new replica joining the group: empty, knowing no configuration, so it neither votes nor
   * campaigns until the leader's log or snapshot makes it a member.
   */
  join(id: NodeId): ReplicaHost {
    const host = this.#newHost(id, [], new MemoryLogStorage());
    this.hosts.set(id, host);
    return host;
  }

  /** A replica gone for good (its process and disk): messages to it go nowhere. */
  remove(id: NodeId): void {
    this.hosts.delete(id);
  }

  #newHost(id: NodeId, voters: readonly NodeId[], storage: MemoryLogStorage): ReplicaHost {
    const { ids: _ids, logs: _logs, ...shared } = this.#options;
    const options: HostOptions = {
      ...shared,
      voters,
      electionTicks: shared.electionTicks ?? 10,
      heartbeatTicks: shared.heartbeatTicks ?? 1,
      seed: shared.seed ?? 1,
    };
    return new ReplicaHost(id, options, storage);
  }

  node(id: NodeId) {
    return this.host(id).node;
  }

  host(id: NodeId): ReplicaHost {
    const host = this.hosts.get(id);
    if (!host) throw new Error(`no node ${id}`);
    return host;
  }

  /** The one node that believes it leads the highest term, if any. */
  leader(): NodeId | undefined {
    let best: ReplicaHost | undefined;
    for (const host of this.hosts.values()) {
      if (this.#down.has(host.id) || host.node.role !== 'leader') continue;
      if (!best || host.node.term > best.node.term) best = host;
    }
    return best?.id;
  }

  /** Drops all traffic between `a` and `b`, both ways. */
  cut(a: NodeId, b: NodeId): void {
    this.#cut.add(`${a}>${b}`);
    this.#cut.add(`${b}>${a}`);
  }

  /** Drops traffic from `from` to `to` only. */
  cutOneWay(from: NodeId, to: NodeId): void {
    this.#cut.add(`${from}>${to}`);
  }

  isolate(id: NodeId): void {
    for (const other of this.hosts.keys()) if (other !== id) this.cut(id, other);
  }

  ignore(type: MessageType): void {
    this.#ignored.add(type);
  }

  /** Heals every cut and ignore. */
  recover(): void {
    this.#cut.clear();
    this.#ignored.clear();
  }

  crash(id: NodeId): void {
    this.#down.add(id);
  }

  restart(id: NodeId): void {
    this.#down.delete(id);
    this.host(id).restart();
  }

  tick(id: NodeId, times = 1): void {
    for (let i = 0; i < times; i++) this.node(id).tick();
  }

  campaign(id: NodeId): void {
    this.node(id).campaign();
    this.stabilize();
  }

  propose(id: NodeId, text: string) {
    const result = this.node(id).propose([new TextEncoder().encode(text)]);
    this.stabilize();
    return result;
  }

  /** Runs every node's `Ready` and delivers messages until nothing moves. */
  stabilize(): void {
    for (let rounds = 0; rounds < 10_000; rounds++) {
      const outbox: Message[] = [];
      for (const host of this.hosts.values()) {
        if (!this.#down.has(host.id))
          outbox.push(...host.processReady((report) => this.#recordReads(report)));
      }
      if (outbox.length === 0) return;
      for (const m of outbox) this.deliver(m);
    }
    throw new Error('cluster did not stabilize');
  }

  #recordReads({ id, ready }: ReadyReport): void {
    for (const { context, index } of ready.readStates) this.reads.push({ id, context, index });
    for (const context of ready.failedReads) this.reads.push({ id, context, index: 'failed' });
  }

  /**
   * Delivers one message now, unless a filter drops it. A `snap` message goes the way a host
   * sends one: the snapshot's data first, then the message, then the outcome reported back.
   */
  deliver(m: Message): void {
    if (m.type === 'snap' && this.holdSnapshots) {
      this.heldSnapshots.push(m);
      return;
    }
    const message = this.#passes(m) ? (this.onDeliver ? this.onDeliver(m) : m) : undefined;
    if (m.type === 'snap' && !this.#down.has(m.from)) {
      this.node(m.from).reportSnapshot(m.to, message ? 'done' : 'failed');
    }
    if (!message) return;
    this.delivered.push(message);
    if (message.type === 'snap' && message.snapshot) {
      const index = message.snapshot.index;
      this.host(message.to).receiveSnapshot(
        index,
        this.host(message.from).snapshotData(index) as number,
      );
    }
    this.node(message.to).step(message);
  }

  /** Finishes the snapshot transfers held so far. */
  releaseSnapshots(): void {
    this.holdSnapshots = false;
    for (const m of this.heldSnapshots.splice(0)) this.deliver(m);
    this.stabilize();
  }

  #passes(m: Message): boolean {
    if (!this.hosts.has(m.to) || this.#down.has(m.to) || this.#down.has(m.from)) return false;
    return !this.#cut.has(`${m.from}>${m.to}`) && !this.#ignored.has(m.type);
  }

  /** The applied data of `id`, as text, in order. */
  appliedText(id: NodeId): string[] {
    const decoder = new TextDecoder();
    return this.host(id)
      .applied.filter((entry) => entry.type === 'normal' && entry.data.length > 0)
      .map((entry) => decoder.decode(entry.data));
  }

  /** The terms of `id`'s log from index 1. */
  logTerms(id: NodeId): number[] {
    const log = this.node(id).log;
    const terms: number[] = [];
    for (let i = log.firstIndex(); i <= log.lastIndex(); i++) terms.push(log.term(i) ?? -1);
    return terms;
  }
}
