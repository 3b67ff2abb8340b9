// The in-memory twin of the gRPC peer transport, for tests that run many nodes in one
// process. It keeps the properties the host relies on: delivery is asynchronous (a batch
// sent during a Ready pass arrives on a later turn, never re-entrantly), each directed link
// has a bounded queue that drops and reports the peer unreachable rather than grow, and
// snapshots travel apart, chunk by chunk. Tests cut and heal links and set a drop rate.

import { setImmediate as nextTurn } from 'node:timers/promises';
import type { NodeName, PeerTransport, ShardMessage, SnapshotTransfer } from './transport.ts';

export interface InMemoryNetworkOptions {
  /** Batches queued on one directed link before further sends are dropped (default 1024). */
  readonly maxQueuedBatches?: number;
  /** Uniform in [0, 1), for the drop rate: injected, so a seeded run replays. */
  readonly random?: () => number;
}

/** The queue of one directed link; flushed on a later turn of the event loop. */
interface Link {
  queue: (readonly ShardMessage[])[];
  scheduled: boolean;
}

export class LinkDownError extends Error {
  readonly code = 'LINK_DOWN';

  constructor(from: NodeName, to: NodeName) {
    super(`the link from ${from} to ${to} is down`);
    this.name = 'LinkDownError';
  }
}

/** The network: one endpoint per node name, and the knobs tests turn. */
export class InMemoryNetwork {
  readonly #endpoints = new Map<NodeName, InMemoryTransport>();
  readonly #links = new Map<string, Link>();
  readonly #cut = new Set<string>();
  readonly #maxQueuedBatches: number;
  readonly #random: () => number;
  #dropRate = 0;
  #snapshotChunkDelayMs = 0;

  constructor(options: InMemoryNetworkOptions = {}) {
    this.#maxQueuedBatches = options.maxQueuedBatches ?? 1024;
    this.#random = options.random ?? (() => 0.5);
  }

  /** The transport of node `name`; a closed endpoint may be connected again (a restart). */
  connect(name: NodeName): InMemoryTransport {
    const transport = new InMemoryTransport(this, name);
    this.#endpoints.set(name, transport);
    return transport;
  }

  /** Cuts both directions between `a` and `b`. */
  partition(a: NodeName, b: NodeName): void {
    this.cut(a, b);
    this.cut(b, a);
  }

  /** Cuts one direction: what `from` sends to `to` is lost. */
  cut(from: NodeName, to: NodeName): void {
    this.#cut.add(linkKey(from, to));
  }

  /** Cuts every link to and from `name`. */
  isolate(name: NodeName): void {
    for (const other of this.#endpoints.keys()) if (other !== name) this.partition(name, other);
  }

  heal(a: NodeName, b: NodeName): void {
    this.#cut.delete(linkKey(a, b));
    this.#cut.delete(linkKey(b, a));
  }

  healAll(): void {
    this.#cut.clear();
  }

  /** Each snapshot chunk takes this long to cross: a slow link, or a large store. */
  setSnapshotChunkDelay(ms: number): void {
    this.#snapshotChunkDelayMs = ms;
  }

  /** Each batch is lost with probability `rate` (silently, as a lossy network would). */
  setDropRate(rate: number): void {
    this.#dropRate = rate;
  }

  isUp(from: NodeName, to: NodeName): boolean {
    const peer = this.#endpoints.get(to);
    return peer !== undefined && !peer.closed && !this.#cut.has(linkKey(from, to));
  }

  /** Called by an endpoint's `send`. */
  enqueue(from: InMemoryTransport, to: NodeName, batch: readonly ShardMessage[]): void {
    if (batch.length === 0) return;
    const key = linkKey(from.name, to);
    let link = this.#links.get(key);
    if (link === undefined) {
      link = { queue: [], scheduled: false };
      this.#links.set(key, link);
    }
    if (!this.isUp(from.name, to) || link.queue.length >= this.#maxQueuedBatches) {
      from.reportUnreachable(to, batch);
      return;
    }
    link.queue.push(batch);
    if (!link.scheduled) {
      link.scheduled = true;
      setImmediate(() => this.#flush(from.name, to, link));
    }
  }

  /** Called by an endpoint's `sendSnapshot`: relays chunks one turn at a time. */
  async transferSnapshot(from: NodeName, to: NodeName, transfer: SnapshotTransfer): Promise<void> {
    await nextTurn();
    const peer = this.#endpoints.get(to);
    if (peer === undefined || !this.isUp(from, to)) throw new LinkDownError(from, to);
    const network = this;
    async function* relay(): AsyncGenerator<Uint8Array> {
      for await (const chunk of transfer.chunks) {
        await nextTurn();
        if (network.#snapshotChunkDelayMs > 0)
          await new Promise((resolve) => setTimeout(resolve, network.#snapshotChunkDelayMs));
        if (!network.isUp(from, to)) throw new LinkDownError(from, to);
        yield chunk;
      }
    }
    await peer.receiveSnapshot(from, { ...transfer, chunks: relay() });
  }

  #flush(from: NodeName, to: NodeName, link: Link): void {
    link.scheduled = false;
    const batches = link.queue;
    link.queue = [];
    const peer = this.#endpoints.get(to);
    for (const batch of batches) {
      // A link cut while batches were queued loses them, as a broken connection would.
      if (peer === undefined || !this.isUp(from, to)) return;
      if (this.#dropRate > 0 && this.#random() < this.#dropRate) continue;
      peer.receive(from, batch);
    }
  }
}

/** One node's endpoint on an `InMemoryNetwork`. */
export class InMemoryTransport implements PeerTransport {
  readonly name: NodeName;
  closed = false;
  readonly #network: InMemoryNetwork;
  #onReceive: (from: NodeName, batch: readonly ShardMessage[]) => void = () => {};
  #onSnapshot: (from: NodeName, transfer: SnapshotTransfer) => Promise<void> = async () => {
    throw new Error('no snapshot handler');
  };
  #onUnreachable: (peer: NodeName, shardIds: readonly number[]) => void = () => {};

  constructor(network: InMemoryNetwork, name: NodeName) {
    this.#network = network;
    this.name = name;
  }

  send(to: NodeName, batch: readonly ShardMessage[]): void {
    if (!this.closed) this.#network.enqueue(this, to, batch);
  }

  sendSnapshot(to: NodeName, transfer: SnapshotTransfer): Promise<void> {
    if (this.closed) return Promise.reject(new LinkDownError(this.name, to));
    return this.#network.transferSnapshot(this.name, to, transfer);
  }

  onReceive(handler: (from: NodeName, batch: readonly ShardMessage[]) => void): void {
    this.#onReceive = handler;
  }

  onSnapshot(handler: (from: NodeName, transfer: SnapshotTransfer) => Promise<void>): void {
    this.#onSnapshot = handler;
  }

  onUnreachable(handler: (peer: NodeName, shardIds: readonly number[]) => void): void {
    this.#onUnreachable = handler;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** From the network: a batch arrived. */
  receive(from: NodeName, batch: readonly ShardMessage[]): void {
    if (!this.closed) this.#onReceive(from, batch);
  }

  /** From the network: a snapshot is streaming in. */
  receiveSnapshot(from: NodeName, transfer: SnapshotTransfer): Promise<void> {
    if (this.closed) return Promise.reject(new LinkDownError(from, this.name));
    return this.#onSnapshot(from, transfer);
  }

  /** From the network: a batch for `peer` was dropped. Reported on a later turn, never inside `send`. */
  reportUnreachable(peer: NodeName, batch: readonly ShardMessage[]): void {
    const shardIds = [...new Set(batch.map((m) => m.shardId))];
    setImmediate(() => {
      if (!this.closed) this.#onUnreachable(peer, shardIds);
    });
  }
}

function linkKey(from: NodeName, to: NodeName): string {
  return `${from}\u0000${to}`;
}
