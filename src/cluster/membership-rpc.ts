// The internal Membership service every node serves beside the public API: `Probe` tells who a
// node is and the newest cluster map it knows (founders ask it of each other before they
// bootstrap; nodes outside the metadata group poll it for changes), and `Join` adds a node to
// the map, or takes back a node that lost its state (on the metadata group's leader; others
// redirect). JSON over gRPC: it is small, rare and for our nodes only.

import * as grpc from '@grpc/grpc-js';
import { type ClusterMap, checkClusterMap, type MapNode } from './cluster-map.ts';

const SERVICE = 'raftcache.membership.v1.Membership';

/** A node as it introduces itself: its configuration, before the map gives it an incarnation. */
export type NodeIntro = Omit<MapNode, 'incarnation'>;

export interface ProbeReply {
  readonly node: NodeIntro;
  readonly map: ClusterMap | null;
}

/** Either the map with the node in it, or where to ask instead. */
export type JoinReply = { readonly map: ClusterMap } | { readonly redirect: string };

export interface MembershipHandlers {
  probe(): ProbeReply;
  join(node: NodeIntro): Promise<JoinReply>;
}

const json = {
  serialize: (value: unknown) => Buffer.from(JSON.stringify(value)),
  deserialize: (bytes: Buffer) => JSON.parse(bytes.toString('utf8')) as unknown,
};

function unary(name: string): grpc.MethodDefinition<unknown, unknown> {
  return {
    path: `/${SERVICE}/${name}`,
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  };
}

const definition = { probe: unary('Probe'), join: unary('Join') };

export function addMembershipService(server: grpc.Server, handlers: MembershipHandlers): void {
  server.addService(definition, {
    probe: (_call: grpc.ServerUnaryCall<unknown, unknown>, done: grpc.sendUnaryData<unknown>) =>
      done(null, handlers.probe()),
    join: (call: grpc.ServerUnaryCall<unknown, unknown>, done: grpc.sendUnaryData<unknown>) => {
      const problem = introProblem(call.request);
      if (problem !== undefined) {
        done({ code: grpc.status.INVALID_ARGUMENT, details: problem });
        return;
      }
      handlers.join(call.request as NodeIntro).then(
        (reply) => done(null, reply),
        (error: Error) => done({ code: grpc.status.UNAVAILABLE, details: error.message }),
      );
    },
  });
}

function introProblem(value: unknown): string | undefined {
  const intro = value as Partial<NodeIntro> | null;
  if (typeof intro?.nodeId !== 'string' || intro.nodeId === '') return 'a node id is required';
  if (typeof intro.address !== 'string' || !/^.+:\d+$/.test(intro.address))
    return `node ${intro.nodeId}: address must be host:port`;
  if (typeof intro.region !== 'string') return `node ${intro.nodeId}: region must be a string`;
  if (typeof intro.capacityBytes !== 'number' || !(intro.capacityBytes > 0))
    return `node ${intro.nodeId}: capacity must be a positive number of bytes`;
  return undefined;
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
    return { node: reply.node, map: reply.map === null ? null : checkClusterMap(reply.map) };
  }

  async join(node: NodeIntro, timeoutMs = 5_000): Promise<JoinReply> {
    const reply = (await this.#call('join', node, timeoutMs)) as JoinReply;
    return 'map' in reply ? { map: checkClusterMap(reply.map) } : reply;
  }

  close(): void {
    this.#client.close();
  }

  #call(method: 'probe' | 'join', request: unknown, timeoutMs: number): Promise<unknown> {
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
