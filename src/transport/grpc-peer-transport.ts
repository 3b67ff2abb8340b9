import * as grpc from '@grpc/grpc-js';
import { decodeFrame, encodeFrame } from './peer-codec.ts';
import type { NodeName, PeerTransport, ShardMessage, SnapshotTransfer } from './transport.ts';

export interface GrpcPeerTransportOptions {
  /** This node's name. */
  readonly node: NodeName;
  /**
   * The cluster's id: peers refuse links from another cluster. A node that joins learns it
   * later (`setClusterId`); until then it refuses every link and opens none.
   */
  readonly clusterId?: string;
  /** Each peer's address (more come with `setPeerAddresses`). */
  readonly peers?: ReadonlyMap<NodeName, string>;
  /** Per-link address overrides that win over what the cluster map says (a proxy per link). */
  readonly overrides?: ReadonlyMap<NodeName, string>;
  /** Frames queued per link while its stream is busy; past this, batches are dropped. */
  readonly maxQueuedFrames?: number;
}

const PEER_SERVICE = 'raftcache.peer.v1.Peer';
const RAFT_PATH = `/${PEER_SERVICE}/Raft`;
const SNAPSHOT_PATH = `/${PEER_SERVICE}/Snapshot`;
const NODE_KEY = 'raftcache-node';
const CLUSTER_KEY = 'raftcache-cluster';

const identity = (bytes: Buffer) => bytes;

/** A client-streaming method whose messages are raw bytes (frames this module encodes itself). */
function clientStreamOfBytes(path: string): grpc.MethodDefinition<Buffer, Buffer> {
  return {
    path,
    requestStream: true,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  };
}
const noBytes = () => Buffer.alloc(0);

// grpc-js's defaults wait up to 120 s to reconnect and never probe an idle link: a healed
// partition would stay dead for minutes, a hung peer unnoticed. Both sides agree on pings.
const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.min_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 1000,
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.keepalive_permit_without_calls': 1,
  // Snapshot chunks and large batches stay well under this; the default 4 MB is too tight.
  'grpc.max_receive_message_length': 64 << 20,
  'grpc.max_send_message_length': 64 << 20,
};
/** Options for the node's gRPC server, which the peer service shares with the public API. */
export const SERVER_OPTIONS: grpc.ServerOptions = {
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.http2.min_ping_interval_without_data_ms': 5_000,
  'grpc.max_receive_message_length': 64 << 20,
  'grpc.max_send_message_length': 64 << 20,
};

/**
 * One outgoing link: a client stream of raft frames to one peer, opened lazily and again after
 * it breaks. A write the stream cannot take at once waits in a bounded queue until `drain`.
 */
class PeerLink {
  readonly #client: grpc.Client;
  readonly #metadata: grpc.Metadata;
  readonly #maxQueued: number;
  readonly #onDrop: (batch: readonly ShardMessage[]) => void;
  #stream: grpc.ClientWritableStream<Buffer> | undefined;
  #waiting: { frame: Buffer; batch: readonly ShardMessage[] }[] = [];
  #blocked = false;

  constructor(
    address: string,
    metadata: grpc.Metadata,
    maxQueued: number,
    onDrop: (batch: readonly ShardMessage[]) => void,
  ) {
    this.#client = new grpc.Client(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
    this.#metadata = metadata;
    this.#maxQueued = maxQueued;
    this.#onDrop = onDrop;
  }

  get client(): grpc.Client {
    return this.#client;
  }

  send(batch: readonly ShardMessage[]): void {
    const frame = Buffer.from(encodeFrame(batch));
    if (this.#blocked) {
      if (this.#waiting.length >= this.#maxQueued) {
        this.#onDrop(batch);
        return;
      }
      this.#waiting.push({ frame, batch });
      return;
    }
    if (!this.#open().write(frame)) this.#blocked = true;
  }

  close(): void {
    this.#stream?.end();
    this.#client.close();
  }

  #open(): grpc.ClientWritableStream<Buffer> {
    if (this.#stream) return this.#stream;
    const stream = this.#client.makeClientStreamRequest<Buffer, Buffer>(
      RAFT_PATH,
      identity,
      identity,
      this.#metadata,
      {},
      () => this.#broken(stream),
    );
    stream.on('drain', () => this.#flush());
    this.#stream = stream;
    return stream;
  }

  /** The stream ended or failed: what waited is lost (raft resends), the next send reopens. */
  #broken(stream: grpc.ClientWritableStream<Buffer>): void {
    if (this.#stream !== stream) return;
    this.#stream = undefined;
    this.#blocked = false;
    for (const { batch } of this.#waiting.splice(0)) this.#onDrop(batch);
  }

  #flush(): void {
    this.#blocked = false;
    while (this.#waiting.length > 0 && !this.#blocked) {
      const next = this.#waiting.shift() as { frame: Buffer };
      if (!this.#open().write(next.frame)) this.#blocked = true;
    }
  }
}

/**
 * The peer transport over gRPC: a client stream per directed link carrying frames of raft
 * messages for all shards, and a client stream per snapshot transfer carrying a header frame
 * then the data in chunks. Both sides send the cluster id and the sender's node name in the
 * call metadata; a call from another cluster is refused.
 */
export class GrpcPeerTransport implements PeerTransport {
  readonly #options: GrpcPeerTransportOptions;
  readonly #server: grpc.Server;
  /** Whether this transport made the server (and so shuts it down). */
  readonly #ownsServer: boolean;
  readonly #links = new Map<NodeName, PeerLink>();
  readonly #peers: Map<NodeName, string>;
  readonly #metadata: grpc.Metadata;
  #clusterId: string | undefined;
  #port = 0;
  #onReceive: (from: NodeName, batch: readonly ShardMessage[]) => void = () => {};
  #onSnapshot: (from: NodeName, transfer: SnapshotTransfer) => Promise<void> = async () => {
    throw new Error('no snapshot handler');
  };
  #onUnreachable: (peer: NodeName, shardIds: readonly number[]) => void = () => {};

  /**
   * Adds the peer service to `server`, the node's gRPC server (the public API shares it, so a
   * node has one port). The server's owner binds and shuts it down.
   */
  constructor(server: grpc.Server, options: GrpcPeerTransportOptions, ownsServer = false) {
    this.#server = server;
    this.#ownsServer = ownsServer;
    this.#options = options;
    this.#metadata = new grpc.Metadata();
    this.#metadata.set(NODE_KEY, options.node);
    this.#peers = new Map(options.peers);
    for (const [node, address] of options.overrides ?? []) this.#peers.set(node, address);
    if (options.clusterId !== undefined) this.setClusterId(options.clusterId);
    this.#server.addService(
      { raft: clientStreamOfBytes(RAFT_PATH), snapshot: clientStreamOfBytes(SNAPSHOT_PATH) },
      {
        raft: (call: grpc.ServerReadableStream<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) =>
          this.#serveRaft(call, done),
        snapshot: (
          call: grpc.ServerReadableStream<Buffer, Buffer>,
          done: grpc.sendUnaryData<Buffer>,
        ) => this.#serveSnapshot(call, done),
      },
    );
  }

  /** A transport on a server of its own, listening at `listen` (`host:0` for any free port). */
  static async listen(
    listen: string,
    options: GrpcPeerTransportOptions,
  ): Promise<GrpcPeerTransport> {
    const server = new grpc.Server(SERVER_OPTIONS);
    const transport = new GrpcPeerTransport(server, options, true);
    transport.#port = await bind(server, listen);
    return transport;
  }

  /** Joins the transport to its cluster: from now on it opens links and accepts the cluster's. */
  setClusterId(clusterId: string): void {
    this.#clusterId = clusterId;
    this.#metadata.set(CLUSTER_KEY, clusterId);
  }

  /** Where peers are now (the cluster map's addresses); a link whose address moved reopens. */
  setPeerAddresses(addresses: ReadonlyMap<NodeName, string>): void {
    for (const [node, given] of addresses) {
      const address = this.#options.overrides?.get(node) ?? given;
      if (this.#peers.get(node) === address) continue;
      this.#peers.set(node, address);
      this.#links.get(node)?.close();
      this.#links.delete(node);
    }
  }

  /** Where this node reaches `node`: its per-link override, or the cluster map's address. */
  addressOf(node: NodeName): string | undefined {
    return this.#peers.get(node);
  }

  /** The port bound, for a transport on a server of its own. */
  get port(): number {
    return this.#port;
  }

  send(to: NodeName, batch: readonly ShardMessage[]): void {
    if (batch.length === 0) return;
    this.#link(to)?.send(batch);
  }

  async sendSnapshot(to: NodeName, transfer: SnapshotTransfer): Promise<void> {
    const link = this.#link(to);
    if (!link) throw new Error(`no address for peer ${to}`);
    await new Promise<void>((resolve, reject) => {
      const stream = link.client.makeClientStreamRequest<Buffer, Buffer>(
        SNAPSHOT_PATH,
        identity,
        identity,
        this.#metadata,
        {},
        (error) => (error ? reject(error) : resolve()),
      );
      void (async () => {
        try {
          // The header frame is the `snap` message itself; its `snapshot` says which one.
          await write(
            stream,
            Buffer.from(encodeFrame([{ shardId: transfer.shardId, message: transfer.message }])),
          );
          for await (const chunk of transfer.chunks) await write(stream, Buffer.from(chunk));
          stream.end();
        } catch (error) {
          stream.cancel();
          reject(error);
        }
      })();
    });
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
    for (const link of this.#links.values()) link.close();
    this.#links.clear();
    // Peers' streams into this node would hold a graceful shutdown open for good: cut them.
    if (this.#ownsServer) this.#server.forceShutdown();
  }

  #link(to: NodeName): PeerLink | undefined {
    let link = this.#links.get(to);
    if (link) return link;
    const address = this.#peers.get(to);
    if (!address || this.#clusterId === undefined) return undefined;
    link = new PeerLink(address, this.#metadata, this.#options.maxQueuedFrames ?? 256, (batch) =>
      this.#onUnreachable(to, [...new Set(batch.map((m) => m.shardId))]),
    );
    this.#links.set(to, link);
    return link;
  }

  /** The caller's node name, or undefined (and the call refused) when from another cluster. */
  #peerOf(
    call: grpc.ServerReadableStream<Buffer, Buffer>,
    done: grpc.sendUnaryData<Buffer>,
  ): NodeName | undefined {
    const cluster = call.metadata.get(CLUSTER_KEY)[0];
    const from = call.metadata.get(NODE_KEY)[0];
    if (this.#clusterId === undefined || cluster !== this.#clusterId || typeof from !== 'string') {
      done({
        code: grpc.status.PERMISSION_DENIED,
        details:
          this.#clusterId === undefined
            ? 'this node has not joined a cluster yet'
            : `not a peer of cluster ${this.#clusterId}`,
      });
      return undefined;
    }
    return from;
  }

  #serveRaft(
    call: grpc.ServerReadableStream<Buffer, Buffer>,
    done: grpc.sendUnaryData<Buffer>,
  ): void {
    const from = this.#peerOf(call, done);
    if (from === undefined) return;
    call.on('data', (frame: Buffer) => {
      let batch: ShardMessage[];
      try {
        batch = decodeFrame(frame);
      } catch (error) {
        call.destroy(error as Error);
        return;
      }
      this.#onReceive(from, batch);
    });
    call.on('end', () => done(null, noBytes()));
    call.on('error', () => {});
  }

  #serveSnapshot(
    call: grpc.ServerReadableStream<Buffer, Buffer>,
    done: grpc.sendUnaryData<Buffer>,
  ): void {
    const from = this.#peerOf(call, done);
    if (from === undefined) return;
    const frames = call[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    void (async () => {
      try {
        const first = await frames.next();
        if (first.done) throw new Error('snapshot stream without a header');
        const [header] = decodeFrame(first.value);
        if (header?.message.type !== 'snap' || !header.message.snapshot) {
          throw new Error('a snapshot stream starts with its snap message');
        }
        const chunks: AsyncIterable<Uint8Array> = { [Symbol.asyncIterator]: () => frames };
        await this.#onSnapshot(from, {
          shardId: header.shardId,
          message: header.message,
          snapshot: header.message.snapshot,
          chunks,
        });
        done(null, noBytes());
      } catch (error) {
        done({
          code: grpc.status.ABORTED,
          details: `snapshot refused: ${(error as Error).message}`,
        });
      }
    })();
  }
}

/** Binds `server` at `address`; resolves with the port bound. */
export function bind(server: grpc.Server, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error, port) =>
      error ? reject(error) : resolve(port),
    );
  });
}

/** Writes honouring back-pressure: waits for `drain` when the stream says it is full. */
function write(stream: grpc.ClientWritableStream<Buffer>, bytes: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const ok = stream.write(bytes, (error?: Error | null) => (error ? reject(error) : undefined));
    if (ok) resolve();
    else stream.once('drain', () => resolve());
  });
}
