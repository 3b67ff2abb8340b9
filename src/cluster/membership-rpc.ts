// The internal Membership service every node serves beside the public API: `Probe` tells who a
// node is and the newest cluster map it knows (founders ask it of each other before they
// bootstrap; nodes outside the metadata group poll it for changes), and `Join` adds a node to
// the map, or takes back a node that lost its state (on the metadata group's leader; others
// redirect). JSON over gRPC: it is small, rare and for our nodes only.

import * as grpc from '@grpc/grpc-js';
import { isHostPort } from '../transport/shared-port.ts';
import { type ClusterMap, checkClusterMap, type MapNode } from './cluster-map.ts';
import type { Leadership } from './metadata.ts';

const SERVICE = 'raftcache.membership.v1.Membership';

/** A node as it introduces itself: its configuration, before the map gives it an incarnation. */
export type NodeIntro = Omit<MapNode, 'incarnation'>;

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

export interface LeadershipReport {
  readonly node: string;
  readonly leaders: readonly Leadership[];
}

export interface MembershipHandlers {
  probe(): ProbeReply;
  join(node: NodeIntro): Promise<JoinReply>;
  /** Records which shards a node leads (the cluster map's leader hints). */
  reportLeaders(report: LeadershipReport): Promise<{ readonly recorded: true } | Redirect>;
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

const definition = {
  probe: unary('Probe'),
  join: unary('Join'),
  reportLeaders: unary('ReportLeaders'),
};

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
      answer(handlers.join(call.request as NodeIntro), done);
    },
    reportLeaders: (
      call: grpc.ServerUnaryCall<unknown, unknown>,
      done: grpc.sendUnaryData<unknown>,
    ) => {
      const report = call.request as Partial<LeadershipReport> | null;
      const valid =
        typeof report?.node === 'string' &&
        Array.isArray(report.leaders) &&
        report.leaders.every((l) => Number.isInteger(l?.shardId) && Number.isInteger(l?.term));
      if (!valid) {
        done({ code: grpc.status.INVALID_ARGUMENT, details: 'a node and its {shardId, term}s' });
        return;
      }
      answer(handlers.reportLeaders(report as LeadershipReport), done);
    },
  });
}

function answer(reply: Promise<unknown>, done: grpc.sendUnaryData<unknown>): void {
  reply.then(
    (value) => done(null, value),
    (error: Error) => done({ code: grpc.status.UNAVAILABLE, details: error.message }),
  );
}

function introProblem(value: unknown): string | undefined {
  const intro = value as Partial<NodeIntro> | null;
  if (typeof intro?.nodeId !== 'string' || intro.nodeId === '') return 'a node id is required';
  if (typeof intro.address !== 'string' || !isHostPort(intro.address))
    return `node ${intro.nodeId}: address must be host:port`;
  if (typeof intro.region !== 'string') return `node ${intro.nodeId}: region must be a string`;
  if (typeof intro.process !== 'string') return `node ${intro.nodeId}: process must be a string`;
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
    return { ...reply, map: reply.map === null ? null : checkClusterMap(reply.map) };
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
