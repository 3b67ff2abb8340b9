import type { Message, SnapshotMeta } from '../raft/types.ts';

/** Node ids are the operator's names for processes (`NodeConfig.node_id`), like `n1`. */
export type NodeName = string;

/** A raft message of one shard's group: peers exchange batches of these for all shards. */
export interface ShardMessage {
  readonly shardId: number;
  readonly message: Message;
}

/** A snapshot being streamed to a peer: which one, and its data in chunks. */
export interface SnapshotTransfer {
  readonly shardId: number;
  /** The `snap` message to deliver once every chunk has arrived. */
  readonly message: Message;
  readonly snapshot: SnapshotMeta;
  readonly chunks: AsyncIterable<Uint8Array>;
}

/**
 * How a node's multi-raft host talks to its peers. Raft messages of every shard travel in
 * batches on one link per directed pair of nodes; snapshots travel apart, in chunks, so
 * heartbeats and appends never wait behind them. Both the TCP transport and the in-memory
 * twin used by tests implement it.
 */
export interface PeerTransport {
  /**
   * Queues a batch for `to`. Never blocks and never grows without bound: when the link's
   * queue is full the batch is dropped and its shards reported through `onUnreachable`.
   */
  send(to: NodeName, batch: readonly ShardMessage[]): void;
  /** Streams a snapshot to `to`; resolves when the peer has installed the data, rejects on failure. */
  sendSnapshot(to: NodeName, transfer: SnapshotTransfer): Promise<void>;
  /** Handlers: batches from peers; snapshots from peers (resolve once installed); links that dropped messages. */
  onReceive(handler: (from: NodeName, batch: readonly ShardMessage[]) => void): void;
  onSnapshot(handler: (from: NodeName, transfer: SnapshotTransfer) => Promise<void>): void;
  onUnreachable(handler: (peer: NodeName, shardIds: readonly number[]) => void): void;
  close(): Promise<void>;
}
