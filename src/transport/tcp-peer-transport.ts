// The peer transport over plain TCP on the node's shared port: a link per directed pair of
// nodes carrying frames of raft messages for all shards, and a connection per snapshot
// transfer. Not gRPC, on purpose: a frame through a grpc-js stream cost ~68 µs of CPU on
// the two sides against ~22 µs through a socket (README: "Peer links"), and a write touches
// every peer link several times.

import { Buffer } from 'node:buffer';
import net from 'node:net';
import { Readable } from 'node:stream';
import { type Logger, pino } from 'pino';
import { messageProblem } from '../raft/message-validation.ts';
import { decodeFrame, encodeFrame, PeerFrameError, splitBatch } from './peer-codec.ts';
import {
  FrameKind,
  type FrameLimits,
  FrameReader,
  type Hello,
  LINK_FRAME_LIMITS,
  type LinkPurpose,
  MAX_BATCH_FRAME_BYTES,
  PeerWireError,
  parseHello,
  ReadBudget,
  writeFrame,
  writeHello,
} from './peer-wire.ts';
import { type PeerAcceptor, parseAddress, SharedPort } from './shared-port.ts';
import { ThrottledWarnings } from './throttled-warnings.ts';
import type { NodeName, PeerTransport, ShardMessage, SnapshotTransfer } from './transport.ts';

export interface TcpPeerTransportOptions {
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
  /** Frames queued per link while its socket is busy; past this, batches are dropped. */
  readonly maxQueuedFrames?: number;
  /** How often every link is pinged (default 2 s). */
  readonly keepaliveMs?: number;
  /** A link whose pong is this late is cut and reopened: its peer hangs (default 5 s). */
  readonly keepaliveTimeoutMs?: number;
  /** Refused links, bad frames and failed transfers at warn; routine reconnects at debug. */
  readonly logger?: Logger;
  readonly limits?: Partial<PeerConnectionLimits>;
}

/** What the accepting side allows (README, "Peer links"). */
export interface PeerConnectionLimits {
  /** Connections from peers at once, all kinds and all peers (default 64). */
  readonly maxConnections: number;
  /** Raft links from one peer at once (default 2: one, and one replacing it). */
  readonly maxRaftLinksPerPeer: number;
  /** Snapshot transfers from one peer at once (default 8); more are refused, and retried. */
  readonly maxSnapshotLinksPerPeer: number;
  /** A connection must send its hello within this (default 5 s). */
  readonly helloTimeoutMs: number;
  /** Bytes of frames being read at once, over all connections (default 128 MiB). */
  readonly maxReadingBytes: number;
}

const DEFAULT_LIMITS: PeerConnectionLimits = {
  maxConnections: 64,
  maxRaftLinksPerPeer: 2,
  maxSnapshotLinksPerPeer: 8,
  helloTimeoutMs: 5_000,
  maxReadingBytes: 128 << 20,
};

/** A batch is cut into frames of about this many bytes at most. */
const BATCH_FRAME_TARGET_BYTES = 4 << 20;

/** A broken link waits this long before it reconnects, doubling up to the maximum. */
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 1_000;
/**
 * The connecting side pings every link this often and cuts one whose pong is this late (a
 * hung or vanished peer); the accepting side cuts a connection silent for both together.
 */
const KEEPALIVE_MS = 2_000;
const KEEPALIVE_TIMEOUT_MS = 5_000;
/** Snapshot chunks buffered on the receiving side before its socket is paused. */
const SNAPSHOT_CHUNKS_BUFFERED = 8;
/** Pongs are not queued behind this much unread output (a peer that pings but never reads). */
const MAX_UNREAD_PONGS_BYTES = 64 << 10;
const NOTHING = Buffer.alloc(0);

function connect(address: string): net.Socket {
  const socket = net.connect(parseAddress(address));
  socket.setNoDelay(true);
  return socket;
}

/** A peer's logger, made once, and its throttled warnings. */
interface PeerLog {
  readonly logger: Logger;
  readonly warnings: ThrottledWarnings;
}

/** Whether `error` says a peer broke the wire's rules, rather than that a socket failed. */
function isPeerFault(error: Error): boolean {
  return error instanceof PeerWireError || error instanceof PeerFrameError;
}

/**
 * Calls `onFrame` for each frame on `socket`; a frame that breaks the wire closes it, and
 * the reason is logged (at warn: a peer sent it), as are socket errors (at debug: routine).
 * Returns the reader, fed from `data` events (and by the caller with bytes read before).
 */
function readFrames(
  socket: net.Socket,
  onFrame: (kind: number, payload: Buffer) => void,
  limits: FrameLimits,
  log: () => PeerLog,
  budget?: ReadBudget,
): { feed: (bytes: Buffer) => void; reader: FrameReader } {
  const reader = new FrameReader(onFrame, limits, budget);
  const feed = (bytes: Buffer) => {
    try {
      reader.push(bytes);
    } catch (error) {
      socket.destroy(error as Error);
    }
  };
  socket.on('data', feed);
  // 'close' follows every error; the owners act there.
  socket.on('error', (error) => {
    const { logger, warnings } = log();
    if (isPeerFault(error)) warnings.warn({ reason: error.message }, 'peer connection closed');
    else logger.debug({ reason: error.message }, 'peer connection failed');
  });
  socket.once('close', () => reader.clear());
  return { feed, reader };
}

function answerPing(socket: net.Socket): void {
  if (socket.writableLength < MAX_UNREAD_PONGS_BYTES) writeFrame(socket, FrameKind.pong, NOTHING);
}

/** Pings a connection whose peer answers pongs, and cuts it when a pong is too late. */
class Pinger {
  readonly #socket: net.Socket;
  readonly #timeoutMs: number;
  /** When the unanswered ping left; the hello counts as one. */
  #sentAt: number | undefined = performance.now();

  constructor(socket: net.Socket, timeoutMs: number) {
    this.#socket = socket;
    this.#timeoutMs = timeoutMs;
  }

  pong(): void {
    this.#sentAt = undefined;
  }

  check(now: number): void {
    if (this.#sentAt === undefined) {
      this.#sentAt = now;
      writeFrame(this.#socket, FrameKind.ping, NOTHING);
    } else if (now - this.#sentAt > this.#timeoutMs) {
      this.#socket.destroy(new Error('no pong from the peer'));
    }
  }
}

/**
 * One outgoing link: raft frames to one peer, connected lazily and again after it breaks
 * (after a backoff, during which batches are dropped and reported). A write the socket cannot
 * take at once waits in a bounded queue until `drain`.
 */
class PeerLink {
  readonly #address: string;
  readonly #hello: Hello;
  readonly #maxQueued: number;
  readonly #keepaliveTimeoutMs: number;
  readonly #onDrop: (batch: readonly ShardMessage[]) => void;
  readonly #log: PeerLog;
  #socket: net.Socket | undefined;
  #pinger: Pinger | undefined;
  #waiting: { frame: Uint8Array; batch: readonly ShardMessage[] }[] = [];
  #blocked = false;
  #retryAt = 0;
  #backoffMs = BACKOFF_MIN_MS;

  constructor(
    address: string,
    hello: Hello,
    maxQueued: number,
    keepaliveTimeoutMs: number,
    onDrop: (batch: readonly ShardMessage[]) => void,
    log: PeerLog,
  ) {
    this.#log = log;
    this.#address = address;
    this.#hello = hello;
    this.#maxQueued = maxQueued;
    this.#keepaliveTimeoutMs = keepaliveTimeoutMs;
    this.#onDrop = onDrop;
  }

  send(batch: readonly ShardMessage[]): void {
    const socket = this.#socket ?? this.#open();
    if (!socket) {
      this.#onDrop(batch);
      return;
    }
    for (const part of splitBatch(batch, BATCH_FRAME_TARGET_BYTES)) this.#sendFrame(socket, part);
  }

  #sendFrame(socket: net.Socket, batch: readonly ShardMessage[]): void {
    const frame = encodeFrame(batch);
    if (frame.length > MAX_BATCH_FRAME_BYTES) {
      // One message past what the peer takes: a bug here, dropped (raft resends or probes).
      this.#log.warnings.warn({ bytes: frame.length }, 'a raft message too large to send');
      this.#onDrop(batch);
      return;
    }
    if (this.#blocked) {
      if (this.#waiting.length >= this.#maxQueued) this.#onDrop(batch);
      else this.#waiting.push({ frame, batch });
      return;
    }
    if (!writeFrame(socket, FrameKind.batch, frame)) this.#blocked = true;
  }

  keepalive(now: number): void {
    this.#pinger?.check(now);
  }

  close(): void {
    this.#socket?.destroy();
  }

  /** Connects, unless the backoff says not yet or the address cannot be dialled. */
  #open(): net.Socket | undefined {
    if (performance.now() < this.#retryAt) return undefined;
    let socket: net.Socket;
    try {
      socket = connect(this.#address);
    } catch {
      this.#backOff();
      return undefined;
    }
    const pinger = new Pinger(socket, this.#keepaliveTimeoutMs);
    writeHello(socket, this.#hello);
    readFrames(
      socket,
      (kind, payload) => {
        if (kind === FrameKind.pong) {
          // The peer took the hello: the link works, so the next break retries soon again.
          pinger.pong();
          this.#backoffMs = BACKOFF_MIN_MS;
        } else if (kind === FrameKind.refused) {
          socket.destroy(new PeerWireError(`refused: ${payload.toString('utf8')}`));
        } else {
          throw new PeerWireError(`frame kind ${kind} on an outgoing raft link`);
        }
      },
      LINK_FRAME_LIMITS.out,
      () => this.#log,
    );
    // Until connected, batches wait in the bounded queue, so a peer that cannot be reached
    // has every one of them reported.
    socket.once('connect', () => this.#flush(socket));
    socket.on('drain', () => this.#flush(socket));
    socket.on('close', () => this.#broken(socket));
    this.#socket = socket;
    this.#pinger = pinger;
    this.#blocked = true;
    return socket;
  }

  /** The socket closed: what waited is lost (raft resends); reconnect after the backoff. */
  #broken(socket: net.Socket): void {
    if (this.#socket !== socket) return;
    this.#socket = undefined;
    this.#pinger = undefined;
    this.#blocked = false;
    this.#backOff();
    for (const { batch } of this.#waiting.splice(0)) this.#onDrop(batch);
  }

  #backOff(): void {
    this.#retryAt = performance.now() + this.#backoffMs * (0.8 + 0.4 * Math.random());
    this.#backoffMs = Math.min(this.#backoffMs * 2, BACKOFF_MAX_MS);
  }

  #flush(socket: net.Socket): void {
    this.#blocked = false;
    while (this.#waiting.length > 0 && !this.#blocked) {
      const next = this.#waiting.shift() as { frame: Uint8Array };
      if (!writeFrame(socket, FrameKind.batch, next.frame)) this.#blocked = true;
    }
  }
}

/** Raft links and snapshot transfers from one peer, open now. */
interface LinksFrom {
  raft: number;
  snapshot: number;
}

export class TcpPeerTransport implements PeerTransport, PeerAcceptor {
  readonly #options: TcpPeerTransportOptions;
  readonly #limits: PeerConnectionLimits;
  readonly #links = new Map<NodeName, PeerLink>();
  readonly #peers: Map<NodeName, string>;
  /** Connections from peers, and snapshot transfers to them: closed with the transport. */
  readonly #sockets = new Set<net.Socket>();
  /** Connections from peers, counted against `maxConnections`. */
  #accepted = 0;
  readonly #linksFrom = new Map<NodeName, LinksFrom>();
  readonly #reading: ReadBudget;
  /** The snapshot transfers under way, pinged like the links. */
  readonly #transfers = new Set<Pinger>();
  readonly #keepalive: NodeJS.Timeout;
  readonly #logger: Logger;
  /** Per known peer: its child logger, made once. */
  readonly #peerLogs = new Map<NodeName, PeerLog>();
  /** For connections that have not (credibly) said who they are. */
  readonly #strangers: PeerLog;
  /** The port this transport listens on, when it has one of its own (`listen`). */
  #ownPort: SharedPort | undefined;
  #clusterId: string | undefined;
  #closed = false;
  readonly #keepaliveMs: number;
  readonly #keepaliveTimeoutMs: number;
  #onReceive: (from: NodeName, batch: readonly ShardMessage[]) => void = () => {};
  #onSnapshot: (from: NodeName, transfer: SnapshotTransfer) => Promise<void> = async () => {
    throw new Error('no snapshot handler');
  };
  #onUnreachable: (peer: NodeName, shardIds: readonly number[]) => void = () => {};

  /** A transport that takes peer connections from the node's `SharedPort`. */
  constructor(options: TcpPeerTransportOptions) {
    this.#options = options;
    this.#limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.#reading = new ReadBudget(this.#limits.maxReadingBytes);
    this.#peers = new Map(options.peers);
    for (const [node, address] of options.overrides ?? []) this.#peers.set(node, address);
    this.#clusterId = options.clusterId;
    this.#keepaliveMs = options.keepaliveMs ?? KEEPALIVE_MS;
    this.#keepaliveTimeoutMs = options.keepaliveTimeoutMs ?? KEEPALIVE_TIMEOUT_MS;
    this.#logger = (options.logger ?? pino({ level: 'silent' })).child({ component: 'peers' });
    const strangers = this.#logger.child({ peer: '(before hello)' });
    this.#strangers = { logger: strangers, warnings: new ThrottledWarnings(strangers) };
    this.#keepalive = setInterval(() => {
      const now = performance.now();
      for (const link of this.#links.values()) link.keepalive(now);
      for (const transfer of this.#transfers) transfer.check(now);
    }, this.#keepaliveMs);
    this.#keepalive.unref();
  }

  /** A transport on a port of its own, at `listen` (`host:0` for any free port). */
  static async listen(listen: string, options: TcpPeerTransportOptions): Promise<TcpPeerTransport> {
    const transport = new TcpPeerTransport(options);
    transport.#ownPort = await SharedPort.listen(listen, { peers: transport });
    return transport;
  }

  /** The port of a transport made by `listen`. */
  get port(): number {
    return this.#ownPort?.port ?? 0;
  }

  /** Bytes held now for frames still arriving, over all connections from peers. */
  get readingBytes(): number {
    return this.#reading.usedBytes;
  }

  /** Messages from peers dropped as bad, and connections closed or refused for a fault. */
  get faults(): number {
    let total = this.#strangers.warnings.total;
    for (const log of this.#peerLogs.values()) total += log.warnings.total;
    return total;
  }

  /** Connections from peers open now. */
  get acceptedConnections(): number {
    return this.#accepted;
  }

  /** Joins the transport to its cluster: from now on it opens links and accepts the cluster's. */
  setClusterId(clusterId: string): void {
    this.#clusterId = clusterId;
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

  send(to: NodeName, batch: readonly ShardMessage[]): void {
    if (batch.length === 0) return;
    this.#link(to)?.send(batch);
  }

  async sendSnapshot(to: NodeName, transfer: SnapshotTransfer): Promise<void> {
    const address = this.#peers.get(to);
    if (this.#closed) throw new Error('the transport is closed');
    if (!address || this.#clusterId === undefined) throw new Error(`no address for peer ${to}`);
    const socket = connect(address);
    const pinger = new Pinger(socket, this.#keepaliveTimeoutMs);
    this.#sockets.add(socket);
    this.#transfers.add(pinger);
    writeHello(socket, this.#hello('snapshot'));
    const outcome = new Promise<void>((resolve, reject) => {
      readFrames(
        socket,
        (kind, payload) => {
          if (kind === FrameKind.ok) resolve();
          else if (kind === FrameKind.pong) pinger.pong();
          else if (kind === FrameKind.refused)
            reject(new Error(`snapshot refused: ${payload.toString('utf8')}`));
        },
        LINK_FRAME_LIMITS.out,
        () => this.#peerLog(to),
      );
      socket.on('close', () => reject(new Error(`the snapshot link to ${to} closed`)));
    });
    outcome.catch(() => {}); // awaited below; a failure while still writing ends the writes
    const write = async (kind: FrameKind, bytes: Uint8Array) => {
      if (!writeFrame(socket, kind, bytes)) {
        await Promise.race([new Promise((resolve) => socket.once('drain', resolve)), outcome]);
      }
    };
    try {
      // The first frame is the `snap` message itself; its `snapshot` says which one.
      await write(
        FrameKind.batch,
        encodeFrame([{ shardId: transfer.shardId, message: transfer.message }]),
      );
      for await (const chunk of transfer.chunks) await write(FrameKind.chunk, chunk);
      writeFrame(socket, FrameKind.end, NOTHING);
      await outcome;
    } finally {
      this.#transfers.delete(pinger);
      this.#sockets.delete(socket);
      socket.destroy();
    }
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
    this.#closed = true;
    clearInterval(this.#keepalive);
    for (const link of this.#links.values()) link.close();
    this.#links.clear();
    for (const socket of this.#sockets) socket.destroy();
    this.#ownPort?.close();
  }

  /**
   * A connection from a peer (its preface read): a hello, then raft frames or a snapshot.
   * Until the hello says it is a peer of this cluster it may send only a hello, within
   * `helloTimeoutMs`; once it is, a connection silent longer than a keepalive round is cut.
   * Connections past the limits are closed at once, or refused with the reason.
   */
  accept(socket: net.Socket, head: Buffer): void {
    if (this.#closed) {
      socket.destroy();
      return;
    }
    if (this.#accepted >= this.#limits.maxConnections) {
      this.#strangers.warnings.warn(
        { limit: this.#limits.maxConnections },
        'peer connection closed: too many at once',
      );
      socket.destroy();
      return;
    }
    this.#accepted++;
    this.#sockets.add(socket);
    socket.once('close', () => {
      this.#accepted--;
      this.#sockets.delete(socket);
    });
    const helloTimer = setTimeout(
      () => socket.destroy(new PeerWireError('no hello in time')),
      this.#limits.helloTimeoutMs,
    );
    socket.once('close', () => clearTimeout(helloTimer));
    socket.setTimeout(this.#keepaliveMs + this.#keepaliveTimeoutMs, () => socket.destroy());
    let serve: ((kind: number, payload: Buffer) => void) | undefined;
    let log = this.#strangers;
    const { feed, reader } = readFrames(
      socket,
      (kind, payload) => {
        if (serve) return serve(kind, payload);
        clearTimeout(helloTimer);
        const hello = parseHello(payload);
        const refusal = this.#refusal(hello);
        if (refusal !== undefined) {
          this.#peerLog(hello.node).warnings.warn({ reason: refusal }, 'refused a peer link');
          writeFrame(socket, FrameKind.refused, Buffer.from(refusal));
          socket.end();
          serve = () => {};
          return;
        }
        log = this.#peerLog(hello.node);
        this.#countLink(hello, socket);
        reader.limits =
          hello.purpose === 'raft' ? LINK_FRAME_LIMITS.raftIn : LINK_FRAME_LIMITS.snapshotIn;
        answerPing(socket);
        this.#pongWhileReading(socket);
        serve =
          hello.purpose === 'raft'
            ? this.#raftFrames(hello.node, socket, log)
            : this.#snapshotFrames(hello.node, socket, log);
      },
      LINK_FRAME_LIMITS.beforeHello,
      () => log,
      this.#reading,
    );
    if (head.length > 0) feed(head);
    socket.resume();
  }

  /** Why a link with this hello is refused; undefined when it is taken. */
  #refusal(hello: Hello): string | undefined {
    if (hello.cluster !== this.#clusterId) {
      return this.#clusterId === undefined
        ? 'this node has not joined a cluster yet'
        : `not a peer of cluster ${this.#clusterId}`;
    }
    const open = this.#linksFrom.get(hello.node);
    if (hello.purpose === 'raft' && (open?.raft ?? 0) >= this.#limits.maxRaftLinksPerPeer)
      return `already ${open?.raft} raft links from ${hello.node}`;
    if (
      hello.purpose === 'snapshot' &&
      (open?.snapshot ?? 0) >= this.#limits.maxSnapshotLinksPerPeer
    )
      return `already ${open?.snapshot} snapshot transfers from ${hello.node}; retry later`;
    return undefined;
  }

  #countLink(hello: Hello, socket: net.Socket): void {
    let open = this.#linksFrom.get(hello.node);
    if (open === undefined) {
      open = { raft: 0, snapshot: 0 };
      this.#linksFrom.set(hello.node, open);
    }
    const links = open;
    links[hello.purpose]++;
    socket.once('close', () => {
      links[hello.purpose]--;
      if (links.raft === 0 && links.snapshot === 0) this.#linksFrom.delete(hello.node);
    });
  }

  /** The logger of a peer this node knows; one shared by the names it does not know. */
  #peerLog(node: NodeName): PeerLog {
    let log = this.#peerLogs.get(node);
    if (log !== undefined) return log;
    if (!this.#peers.has(node)) return this.#strangers;
    const logger = this.#logger.child({ peer: node });
    log = { logger, warnings: new ThrottledWarnings(logger) };
    this.#peerLogs.set(node, log);
    return log;
  }

  /**
   * While bytes come in, the sender hears a pong each keepalive round: on a slow link, or
   * behind a large backlog, its pings wait behind megabytes of frames, and it must not take
   * that for a hung peer.
   */
  #pongWhileReading(socket: net.Socket): void {
    let lastPong = performance.now();
    socket.on('data', () => {
      const now = performance.now();
      if (now - lastPong < this.#keepaliveMs) return;
      lastPong = now;
      answerPing(socket);
    });
  }

  /**
   * Raft batches from a peer. A frame that does not decode closes the link; a message in it
   * that no correct peer sends is dropped (and logged), the others delivered. A `snap` never
   * travels here: it comes after its data, on a snapshot transfer.
   */
  #raftFrames(from: NodeName, socket: net.Socket, log: PeerLog) {
    return (kind: number, payload: Buffer) => {
      if (kind === FrameKind.ping) {
        answerPing(socket);
        return;
      }
      const batch = decodeFrame(payload);
      const good: ShardMessage[] = [];
      for (const item of batch) {
        const problem =
          item.message.type === 'snap'
            ? 'a snap on a raft link, without its data'
            : shardMessageProblem(item);
        if (problem === undefined) good.push(item);
        else log.warnings.warn({ shardId: item.shardId, problem }, 'dropped a bad raft message');
      }
      if (good.length > 0) this.#onReceive(from, good);
    };
  }

  /**
   * Serves one snapshot transfer: the `snap` message, chunks (with back-pressure), the end;
   * then `ok` or `refused` once the handler settles. Whatever the handler did not read is
   * dropped with the connection.
   */
  #snapshotFrames(from: NodeName, socket: net.Socket, log: PeerLog) {
    const chunks = new Readable({
      objectMode: true,
      highWaterMark: SNAPSHOT_CHUNKS_BUFFERED,
      read: () => socket.resume(),
    });
    // The handler learns of a failure from its iteration; none may escape as an event.
    chunks.on('error', () => {});
    let state: 'header' | 'chunks' | 'ended' | 'settled' = 'header';
    socket.once('close', () => {
      if (state === 'header' || state === 'chunks')
        chunks.destroy(new Error(`the snapshot link from ${from} closed`));
    });
    const settle = (kind: FrameKind, payload: Uint8Array) => {
      state = 'settled';
      chunks.destroy();
      writeFrame(socket, kind, payload);
      socket.end();
      socket.resume();
    };
    return (kind: number, payload: Buffer) => {
      if (kind === FrameKind.ping) return answerPing(socket);
      if (state === 'settled') return;
      if (state === 'header') {
        const batch = kind === FrameKind.batch ? decodeFrame(payload) : [];
        const header = batch[0];
        if (batch.length !== 1 || header?.message.type !== 'snap' || !header.message.snapshot)
          throw new PeerWireError('a snapshot transfer starts with its snap message, alone');
        const problem = shardMessageProblem(header);
        if (problem !== undefined) throw new PeerWireError(`a bad snap message: ${problem}`);
        state = 'chunks';
        this.#onSnapshot(from, {
          shardId: header.shardId,
          message: header.message,
          snapshot: header.message.snapshot,
          chunks,
        }).then(
          () => settle(FrameKind.ok, NOTHING),
          (error: Error) => {
            log.warnings.warn(
              { shardId: header.shardId, reason: error.message },
              'refused a snapshot',
            );
            settle(FrameKind.refused, Buffer.from(error.message.slice(0, 1_000)));
          },
        );
      } else if (state === 'chunks' && kind === FrameKind.chunk) {
        if (!chunks.push(payload)) socket.pause();
      } else if (state === 'chunks' && kind === FrameKind.end) {
        state = 'ended';
        chunks.push(null);
      } else {
        throw new PeerWireError(`frame kind ${kind} out of place in a snapshot transfer`);
      }
    };
  }

  #hello(purpose: LinkPurpose): Hello {
    return { cluster: this.#clusterId as string, node: this.#options.node, purpose };
  }

  #link(to: NodeName): PeerLink | undefined {
    if (this.#closed) return undefined;
    let link = this.#links.get(to);
    if (link) return link;
    const address = this.#peers.get(to);
    if (!address || this.#clusterId === undefined) return undefined;
    link = new PeerLink(
      address,
      this.#hello('raft'),
      this.#options.maxQueuedFrames ?? 256,
      this.#keepaliveTimeoutMs,
      (batch) => this.#onUnreachable(to, [...new Set(batch.map((m) => m.shardId))]),
      this.#peerLog(to),
    );
    this.#links.set(to, link);
    return link;
  }
}

/** Why a shard's message from a peer is refused; undefined when it may be delivered. */
function shardMessageProblem({ shardId, message }: ShardMessage): string | undefined {
  if (!Number.isSafeInteger(shardId) || shardId < 0) return `shard id ${String(shardId)}`;
  return messageProblem(message);
}
