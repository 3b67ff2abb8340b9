// A node's one port serves two protocols: gRPC (the public API, membership) and the peer links.
// Each connection's first bytes tell which: peer links open with their own preface, HTTP/2
// with `PRI * HT`. gRPC connections go to grpc-js through its connection injector.

import { Buffer } from 'node:buffer';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { type Logger, pino } from 'pino';
import { PEER_PREFACE } from './peer-wire.ts';
import { ThrottledWarnings } from './throttled-warnings.ts';

/** Takes a peer connection whose preface has been read; `head` is what came after it. */
export interface PeerAcceptor {
  accept(socket: net.Socket, head: Buffer): void;
}

/** Options for the node's gRPC server. */
export const GRPC_SERVER_OPTIONS: grpc.ServerOptions = {
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.http2.min_ping_interval_without_data_ms': 5_000,
  'grpc.max_receive_message_length': 64 << 20,
  'grpc.max_send_message_length': 64 << 20,
};

/** A connection that has not sent its first bytes by then is closed (default). */
const PREFACE_TIMEOUT_MS = 5_000;
/** Connections not yet told apart, at most (default); more are closed at once. */
const MAX_UNDECIDED = 64;

export interface SharedPortOptions {
  /** How long a connection may take to send its first 8 bytes before it is closed. */
  readonly prefaceTimeoutMs?: number;
  /** Connections that have not sent their first 8 bytes yet, at most; more are closed at once. */
  readonly maxUndecided?: number;
  /** Connections closed over the limit, at warn (throttled); silent if none. */
  readonly logger?: Logger;
}

/** `host:port`, `[v6]:port` → its parts. */
export function parseAddress(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  const digits = address.slice(colon + 1);
  const port = Number(digits);
  // Decimal digits only: Number() reads '' as 0 (any free port) and also takes `0x10`, `1e3`.
  if (colon < 0 || !/^\d{1,5}$/.test(digits) || port > 65_535) {
    throw new Error(`${address} is not host:port`);
  }
  return { host: address.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), port };
}

/** Whether `address` is `host:port` with a port in range. */
export function isHostPort(address: string): boolean {
  try {
    return parseAddress(address).host !== '';
  } catch {
    return false;
  }
}

export class SharedPort {
  readonly #listener: net.Server;
  readonly #injector: grpc.ConnectionInjector | undefined;
  readonly #peers: PeerAcceptor | undefined;
  readonly #prefaceTimeoutMs: number;
  readonly #maxUndecided: number;
  readonly #warnings: ThrottledWarnings;
  /** Connections still being told apart. */
  readonly #undecided = new Set<net.Socket>();

  private constructor(
    grpcServer: grpc.Server | undefined,
    peers: PeerAcceptor | undefined,
    options: SharedPortOptions,
  ) {
    this.#injector = grpcServer?.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    this.#peers = peers;
    this.#prefaceTimeoutMs = options.prefaceTimeoutMs ?? PREFACE_TIMEOUT_MS;
    this.#maxUndecided = options.maxUndecided ?? MAX_UNDECIDED;
    const logger = (options.logger ?? pino({ level: 'silent' })).child({ component: 'port' });
    this.#warnings = new ThrottledWarnings(logger);
    this.#listener = net.createServer((socket) => this.#sort(socket));
  }

  /** Listens at `address` (`host:0` for any free port), for gRPC, peers, or both. */
  static async listen(
    address: string,
    serve: { grpc?: grpc.Server; peers?: PeerAcceptor },
    options: SharedPortOptions = {},
  ): Promise<SharedPort> {
    const port = new SharedPort(serve.grpc, serve.peers, options);
    const { host, port: number } = parseAddress(address);
    await new Promise<void>((resolve, reject) => {
      port.#listener.once('error', reject);
      port.#listener.listen(number, host, () => {
        port.#listener.off('error', reject);
        resolve();
      });
    });
    return port;
  }

  /** Connections that have not sent their first 8 bytes yet. */
  get undecidedConnections(): number {
    return this.#undecided.size;
  }

  get port(): number {
    return (this.#listener.address() as net.AddressInfo).port;
  }

  /** Stops listening and drops the gRPC connections (peer links belong to the transport). */
  close(): void {
    this.#listener.close();
    for (const socket of this.#undecided) socket.destroy();
    this.#injector?.destroy();
  }

  #sort(socket: net.Socket): void {
    if (this.#undecided.size >= this.#maxUndecided) {
      socket.on('error', () => {});
      socket.destroy();
      this.#warnings.warn(
        { limit: this.#maxUndecided },
        'connection closed: too many have not sent their first bytes yet',
      );
      return;
    }
    this.#undecided.add(socket);
    socket.setNoDelay(true);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(), this.#prefaceTimeoutMs);
    const decided = () => {
      clearTimeout(timer);
      this.#undecided.delete(socket);
      socket.off('data', onData);
      socket.pause();
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      const bytes = chunks.length === 1 ? chunk : Buffer.concat(chunks);
      if (bytes.length < PEER_PREFACE.length) return;
      decided();
      if (bytes.subarray(0, PEER_PREFACE.length).equals(PEER_PREFACE)) {
        if (this.#peers) this.#peers.accept(socket, bytes.subarray(PEER_PREFACE.length));
        else socket.destroy();
      } else if (this.#injector) {
        socket.unshift(bytes);
        this.#injector.injectConnection(socket);
      } else {
        socket.destroy();
      }
    };
    socket.on('data', onData);
    socket.on('error', () => {});
    socket.once('close', () => {
      clearTimeout(timer);
      this.#undecided.delete(socket);
    });
  }
}
