// Multi-raft hosts on real TCP peer links over loopback, and a forger: a hand-written peer
// connection that says it is one of the nodes and sends whatever frames a test makes, as a
// buggy or hostile peer would.
import { Buffer } from 'node:buffer';
import net from 'node:net';
import { newPackr } from '../../src/codec/msgpack.ts';
import { SeededRandom } from '../../src/raft/random.ts';
import { MultiRaftHost, type MultiRaftHostOptions } from '../../src/shard/multi-raft-host.ts';
import { PEER_FRAME_VERSION } from '../../src/transport/peer-codec.ts';
import { FrameKind, frameHeader, PEER_PREFACE } from '../../src/transport/peer-wire.ts';
import { TcpPeerTransport } from '../../src/transport/tcp-peer-transport.ts';
import { LogCapture } from './log-capture.ts';
import { until } from './until.ts';

export const TCP_NODES = ['n1', 'n2', 'n3'] as const;
export const TCP_SHARDS = [1, 2, 3] as const;
const CLUSTER = 'forged';

export type TcpHostOverrides = Partial<
  Omit<MultiRaftHostOptions, 'node' | 'transport' | 'placement' | 'clock' | 'random'>
>;

export class TcpHosts {
  readonly hosts = new Map<string, MultiRaftHost>();
  readonly transports = new Map<string, TcpPeerTransport>();
  readonly #sockets = new Set<net.Socket>();

  readonly log = new LogCapture();

  static async start(overrides: TcpHostOverrides = {}, seed = 1): Promise<TcpHosts> {
    const cluster = new TcpHosts();
    const addresses = new Map<string, string>();
    const logger = cluster.log.logger;
    for (const node of TCP_NODES) {
      const transport = await TcpPeerTransport.listen('127.0.0.1:0', {
        node,
        clusterId: CLUSTER,
        logger: logger.child({ node }),
      });
      cluster.transports.set(node, transport);
      addresses.set(node, `127.0.0.1:${transport.port}`);
    }
    for (const transport of cluster.transports.values()) transport.setPeerAddresses(addresses);
    TCP_NODES.forEach((node, i) => {
      cluster.hosts.set(
        node,
        new MultiRaftHost({
          node,
          transport: cluster.transports.get(node) as TcpPeerTransport,
          placement: TCP_SHARDS.map((shardId) => ({
            shardId,
            replicas: TCP_NODES.map((n, r) => ({ replicaId: r + 1, node: n })),
          })),
          capacityBytes: 1 << 20,
          clock: { now: () => Date.now(), monotonic: () => performance.now() },
          random: new SeededRandom(seed * 31 + i),
          logger,
          ...overrides,
        }),
      );
    });
    return cluster;
  }

  host(node: string): MultiRaftHost {
    return this.hosts.get(node) as MultiRaftHost;
  }

  portOf(node: string): number {
    return (this.transports.get(node) as TcpPeerTransport).port;
  }

  /** The node whose replica of `shardId` leads, if one does. */
  leaderOf(shardId: number): string | undefined {
    return TCP_NODES.find((node) => this.host(node).stats(shardId).role === 'leader');
  }

  async waitForLeaders(shardIds: readonly number[] = TCP_SHARDS): Promise<void> {
    await until(() => (shardIds.every((id) => this.leaderOf(id)) ? true : undefined), 10_000);
  }

  /** A raw peer link into `target` whose hello says it comes from `as`. */
  forge(target: string, as: string, purpose: 'raft' | 'snapshot' = 'raft'): ForgedLink {
    const socket = net.connect(this.portOf(target), '127.0.0.1');
    this.#sockets.add(socket);
    socket.on('error', () => {});
    const link = new ForgedLink(socket);
    socket.write(PEER_PREFACE);
    link.frame(
      FrameKind.hello,
      Buffer.from(JSON.stringify({ cluster: CLUSTER, node: as, purpose })),
    );
    return link;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await Promise.all([...this.hosts.values()].map((host) => host.close()));
  }
}

const packr = newPackr();

/** A message as the wire's tuple; any field may be given any value. */
export type RawMessage = unknown[];

/** The wire tuple of a message, with its fields in the codec's order (type as its code). */
export function rawMessage(fields: {
  shardId: unknown;
  type: unknown;
  from: unknown;
  to: unknown;
  term?: unknown;
  logTerm?: unknown;
  index?: unknown;
  commit?: unknown;
  reject?: unknown;
  rejectHint?: unknown;
  context?: unknown;
  entries?: unknown;
  snapshot?: unknown;
}): RawMessage {
  return [
    fields.shardId,
    fields.type,
    fields.from,
    fields.to,
    fields.term ?? 0,
    fields.logTerm ?? 0,
    fields.index ?? 0,
    fields.commit ?? 0,
    fields.reject ?? false,
    fields.rejectHint ?? 0,
    fields.context ?? 0,
    fields.entries ?? [],
    fields.snapshot ?? null,
  ];
}

/** Message type codes on the wire (peer-codec's order). */
export const TYPE_CODE = {
  app: 3,
  appResp: 4,
  heartbeat: 5,
  heartbeatResp: 6,
  vote: 7,
  voteResp: 8,
  snap: 15,
} as const;

export class ForgedLink {
  readonly socket: net.Socket;
  closed = false;
  /** Bytes the other side sent (its pongs, or why it refused). */
  receivedBytes = 0;
  #pings = 0;

  constructor(socket: net.Socket) {
    this.socket = socket;
    // Pongs and refusals are counted and dropped: an unread stream never sees its end.
    socket.on('data', (chunk: Buffer) => {
      this.receivedBytes += chunk.length;
    });
    socket.once('close', () => {
      this.closed = true;
    });
  }

  /**
   * Sends a ping and waits for the pong, or for the link to close: frames are read in
   * order, so then every frame sent before it has been handled.
   */
  async settled(): Promise<void> {
    this.#pings++;
    this.frame(FrameKind.ping, new Uint8Array(0));
    // A pong is 5 bytes; the hello's came first.
    const expected = 5 * (1 + this.#pings);
    await until(() => (this.closed || this.receivedBytes >= expected ? true : undefined));
  }

  frame(kind: FrameKind, payload: Uint8Array): void {
    this.socket.write(Buffer.concat([frameHeader(kind, payload.length), payload]));
  }

  /** A raft batch frame holding `messages` (or any value) as the codec would pack it. */
  batch(messages: unknown): void {
    const body = packr.pack(messages);
    const payload = Buffer.alloc(body.length + 1);
    payload[0] = PEER_FRAME_VERSION;
    payload.set(body, 1);
    this.frame(FrameKind.batch, payload);
  }
}
