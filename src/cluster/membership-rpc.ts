// The internal Membership service every node serves beside the public API: `Probe` tells who a
// node is and the newest cluster map it knows (founders ask it of each other before they
// bootstrap; nodes outside the metadata group poll it for changes), and `Join` adds a node to
// the map, or takes back a node that lost its state (on the metadata group's leader; others
// redirect). JSON over gRPC: it is small, rare and for our nodes only. Every request is
// bounded and checked field by field before a handler sees it (membership-limits.ts): a bad
// one is answered INVALID_ARGUMENT, never stored.

import * as grpc from '@grpc/grpc-js';
import { type ClusterMap, checkClusterMap } from './cluster-map.ts';
import {
  type LeadershipReport,
  MEMBERSHIP_REQUEST_BYTES,
  MembershipRequestError,
  type NodeIntro,
  readIntro,
  readReport,
} from './membership-limits.ts';

const SERVICE = 'raftcache.membership.v1.Membership';

/** The last known leader of a shard. */
export interface LeaderOfShard {
  readonly shardId: number;
  readonly node: string;
}

/** How a founder was told to shape the new cluster: all founders must agree. */
export interface FoundingPlan {
  readonly dataShards: number;
  readonly replicationFactor: number;
}

export interface ProbeReply {
  readonly node: NodeIntro;
  readonly plan: FoundingPlan;
  readonly map: ClusterMap | null;
  /** The founders' introductions this node has recorded while founding. */
  readonly introduced: readonly NodeIntro[];
  readonly leaders: readonly LeaderOfShard[];
}

/** Where to ask instead: the metadata group's leader, or a member that may know it. */
export interface Redirect {
  readonly redirect: string;
}

/** Either the map with the node in it, or where to ask instead. */
export type JoinReply = { readonly map: ClusterMap } | Redirect;

/**
 * The service's handlers. Each gets a request already checked; one that refuses it throws a
 * `MembershipRefusedError` (answered with its status), and any other failure is UNAVAILABLE.
 */
export interface MembershipHandlers {
  probe(): ProbeReply;
  join(node: NodeIntro): Promise<JoinReply>;
  /** Records which shards a node leads (the cluster map's leader hints). */
  reportLeaders(report: LeadershipReport): Promise<{ readonly recorded: true } | Redirect>;
}

/** A request a handler will not take: who asks or what it asks for is not allowed. */
export class MembershipRefusedError extends Error {
  override name = 'MembershipRefusedError';
  readonly status: grpc.status;

  constructor(status: grpc.status, message: string) {
    super(message);
    this.status = status;
  }
}

/** What a handler gets for a request that is too large or not JSON. */
class UnreadRequest {
  readonly problem: string;

  constructor(problem: string) {
    this.problem = problem;
  }
}

const json = {
  serialize: (value: unknown) => Buffer.from(JSON.stringify(value)),
  deserialize: (bytes: Buffer) => JSON.parse(bytes.toString('utf8')) as unknown,
  // Never throws: grpc-js would answer a deserializer's exception INTERNAL.
  deserializeRequest: (bytes: Buffer): unknown => {
    if (bytes.length > MEMBERSHIP_REQUEST_BYTES)
      return new UnreadRequest(
        `a membership request is at most ${MEMBERSHIP_REQUEST_BYTES} bytes; this one is ${bytes.length}`,
      );
    try {
      return json.deserialize(bytes);
    } catch {
      return new UnreadRequest('a membership request is JSON');
    }
  },
};

function unary(name: string): grpc.MethodDefinition<unknown, unknown> {
  return {
    path: `/${SERVICE}/${name}`,
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserializeRequest,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  };
}

const definition = {
  probe: unary('Probe'),
  join: unary('Join'),
  reportLeaders: unary('ReportLeaders'),
};

export function addMembershipService(server: grpc.Server, handlers: MembershipHandlers): void {
  server.addService(definition, {
    probe: (_call: grpc.ServerUnaryCall<unknown, unknown>, done: grpc.sendUnaryData<unknown>) =>
      done(null, handlers.probe()),
    join: checked(readIntro, (intro) => handlers.join(intro)),
    reportLeaders: checked(readReport, (report) => handlers.reportLeaders(report)),
  });
}

/** A unary handler that answers only requests `read` accepts, with `handle`'s reply. */
function checked<T>(read: (request: unknown) => T, handle: (request: T) => Promise<unknown>) {
  return (call: grpc.ServerUnaryCall<unknown, unknown>, done: grpc.sendUnaryData<unknown>) => {
    const refuse = (details: string) => done({ code: grpc.status.INVALID_ARGUMENT, details });
    if (call.request instanceof UnreadRequest) return refuse(call.request.problem);
    let request: T;
    try {
      request = read(call.request);
    } catch (error) {
      if (error instanceof MembershipRequestError) return refuse(error.message);
      throw error;
    }
    handle(request).then(
      (reply) => done(null, reply),
      (error: Error) =>
        done({
          code: error instanceof MembershipRefusedError ? error.status : grpc.status.UNAVAILABLE,
          details: error.message,
        }),
    );
  };
}

const Client = grpc.makeGenericClientConstructor(definition, SERVICE);

/** Calls the Membership service of the node at `address`; each call has its own deadline. */
export class MembershipClient {
  readonly #client: grpc.Client;

  constructor(address: string) {
    this.#client = new Client(address, grpc.credentials.createInsecure());
  }

  async probe(timeoutMs = 1_000): Promise<ProbeReply> {
    const reply = (await this.#call('probe', {}, timeoutMs)) as ProbeReply;
    return {
      ...reply,
      node: readIntro(reply.node),
      introduced: reply.introduced.map(readIntro),
      map: reply.map === null ? null : checkClusterMap(reply.map),
    };
  }

  async join(node: NodeIntro, timeoutMs = 5_000): Promise<JoinReply> {
    const reply = (await this.#call('join', node, timeoutMs)) as JoinReply;
    return 'map' in reply ? { map: checkClusterMap(reply.map) } : reply;
  }

  async reportLeaders(report: LeadershipReport, timeoutMs = 2_000): Promise<Redirect | undefined> {
    const reply = (await this.#call('reportLeaders', report, timeoutMs)) as Partial<Redirect>;
    return reply.redirect === undefined ? undefined : { redirect: reply.redirect };
  }

  close(): void {
    this.#client.close();
  }

  #call(method: keyof typeof definition, request: unknown, timeoutMs: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      // biome-ignore lint/suspicious/noExplicitAny: a generic client's methods are untyped
      (this.#client as any)[method](
        request,
        { deadline: Date.now() + timeoutMs },
        (error: grpc.ServiceError | null, reply: unknown) =>
          error ? reject(error) : resolve(reply),
      );
    });
  }
}
