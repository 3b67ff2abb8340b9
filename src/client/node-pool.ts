// The client's connections, one set per node address: the transport for per-key requests (a
// Pipeline stream, or unary calls in debug mode), and plain grpc-js clients for the Admin
// service and Stats. Opened on first use, closed together.
import * as grpc from '@grpc/grpc-js';
import { LEADER_METADATA_KEY } from '../protocol/metadata.ts';
import { publicApi } from '../protocol/proto.ts';
import type { RaftcacheError } from './errors.ts';
import type { ClientMetrics } from './metrics.ts';
import { type OpKind, type Transport, UNARY_METHOD, type WireReply } from './operations.ts';
import { PipelineConnection } from './pipeline-connection.ts';
import { errorFromStatus, noAnswer } from './status-errors.ts';

export type TransportMode = 'pipeline' | 'unary';

const CHANNEL_OPTIONS = { 'grpc.max_receive_message_length': 64 << 20 };

interface NodeConnections {
  transport?: Transport;
  cache?: grpc.Client;
  admin?: grpc.Client;
}

export class NodePool {
  readonly #mode: TransportMode;
  readonly #addressMap: Readonly<Record<string, string>>;
  readonly #metrics: ClientMetrics;
  readonly #nodes = new Map<string, NodeConnections>();

  constructor(
    mode: TransportMode,
    addressMap: Readonly<Record<string, string>>,
    metrics: ClientMetrics,
  ) {
    this.#mode = mode;
    this.#addressMap = addressMap;
    this.#metrics = metrics;
  }

  /** What carries per-key requests to the node at `address` (as the cluster names it). */
  transport(address: string): Transport {
    const node = this.#node(address);
    node.transport ??=
      this.#mode === 'pipeline'
        ? new PipelineConnection(this.#dial(address), this.#metrics)
        : new UnaryTransport(this.cacheClient(address), address);
    return node.transport;
  }

  /**
   * A unary call of the Admin service (`ClusterMap`, `GetStats`) or of `Cache.Stats`. It waits
   * for the connection (a node starting, or a reconnection after a failure) up to `timeoutMs`.
   */
  call(
    address: string,
    service: 'Admin' | 'Cache',
    method: string,
    request: object,
    timeoutMs: number,
  ): Promise<WireReply> {
    const client = service === 'Admin' ? this.#adminClient(address) : this.cacheClient(address);
    return unaryCall(client, method, request, timeoutMs, true).catch((error: grpc.ServiceError) => {
      throw unaryError(undefined, address, error);
    });
  }

  cacheClient(address: string): grpc.Client {
    const node = this.#node(address);
    node.cache ??= new publicApi.Cache(
      this.#dial(address),
      grpc.credentials.createInsecure(),
      CHANNEL_OPTIONS,
    );
    return node.cache;
  }

  close(): void {
    for (const node of this.#nodes.values()) {
      node.transport?.close();
      node.cache?.close();
      node.admin?.close();
    }
    this.#nodes.clear();
  }

  #adminClient(address: string): grpc.Client {
    const node = this.#node(address);
    node.admin ??= new publicApi.Admin(
      this.#dial(address),
      grpc.credentials.createInsecure(),
      CHANNEL_OPTIONS,
    );
    return node.admin;
  }

  #node(address: string): NodeConnections {
    let node = this.#nodes.get(address);
    if (!node) {
      node = {};
      this.#nodes.set(address, node);
    }
    return node;
  }

  #dial(address: string): string {
    return this.#addressMap[address] ?? address;
  }
}

/** Per-key requests as plain unary calls, one HTTP/2 stream each: for debugging. */
class UnaryTransport implements Transport {
  readonly #client: grpc.Client;
  readonly #address: string;

  constructor(client: grpc.Client, address: string) {
    this.#client = client;
    this.#address = address;
  }

  send(op: OpKind, request: object, timeoutMs: number): Promise<WireReply> {
    return unaryCall(this.#client, UNARY_METHOD[op], request, timeoutMs, false).catch(
      (error: grpc.ServiceError) => {
        throw unaryError(op, this.#address, error);
      },
    );
  }

  close(): void {}
}

function unaryCall(
  client: grpc.Client,
  method: string,
  request: object,
  timeoutMs: number,
  waitForReady: boolean,
): Promise<WireReply> {
  const generated = client as unknown as Record<
    string,
    (
      request: object,
      metadata: grpc.Metadata,
      options: grpc.CallOptions,
      done: (error: grpc.ServiceError | null, reply: WireReply) => void,
    ) => void
  >;
  return new Promise((resolve, reject) =>
    generated[method](
      request,
      new grpc.Metadata({ waitForReady }),
      { deadline: Date.now() + timeoutMs },
      (error, reply) => (error ? reject(error) : resolve(reply)),
    ),
  );
}

/**
 * A failed unary call as a typed error. grpc-js answers UNAVAILABLE both when the node said
 * so and when the connection broke after the request left, so for a request it is taken as
 * a lost answer (a write's outcome is then unknown until a retry tells), and counted
 * against the node.
 */
function unaryError(
  op: OpKind | undefined,
  address: string,
  error: grpc.ServiceError,
): RaftcacheError {
  const lost = [grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED, grpc.status.CANCELLED];
  if (op && lost.includes(error.code))
    return noAnswer(
      op,
      address,
      error.code === grpc.status.DEADLINE_EXCEEDED ? 'timed out' : error.details,
    );
  const leader = error.metadata?.get(LEADER_METADATA_KEY)[0];
  return errorFromStatus(
    error.code,
    `${error.details} (${address})`,
    typeof leader === 'string' ? leader : undefined,
  );
}
