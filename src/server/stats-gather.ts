// `Admin.GetStats` by scope: a node answers for the replicas it holds, and gathers the other
// nodes' answers (asking each for its own, NODE scope) for a shard or the whole cluster. A
// node that does not answer in time is named in the reply rather than failing it.
import * as grpc from '@grpc/grpc-js';
import { InvalidCommandError } from '../cache/index.ts';
import type { ClusterMap } from '../cluster/cluster-map.ts';
import { publicApi } from '../protocol/proto.ts';
import type { MultiRaftHost } from '../shard/multi-raft-host.ts';
import { dataShardIds, shardStatsReply } from './cache-service.ts';
import { enumValue } from './requests.ts';

type Scope = 'CLUSTER' | 'NODE' | 'SHARD';
const SCOPES: Readonly<Record<string, Scope>> = {
  CLUSTER: 'CLUSTER',
  NODE: 'NODE',
  SHARD: 'SHARD',
};

export interface StatsRequest {
  /** A scope's name, or the number of one this version does not define. */
  readonly scope?: Scope | number;
  readonly target?: string;
  readonly state_digest?: boolean;
}

type ShardStatsReply = ReturnType<typeof shardStatsReply>;

export interface StatsReply {
  readonly shards: readonly ShardStatsReply[];
  readonly unreachable_nodes: readonly string[];
}

/** How long a node waits for another's statistics. */
const ASK_TIMEOUT_MS = 2_000;

export async function gatherStats(
  request: StatsRequest,
  host: MultiRaftHost,
  map: ClusterMap,
): Promise<StatsReply> {
  const digest = request.state_digest === true;
  const own = () => dataShardIds(host).map((shardId) => shardStatsReply(host, shardId, digest));
  const target = request.target ?? '';
  switch (enumValue(SCOPES, request.scope ?? 'CLUSTER', 'scope')) {
    case 'NODE': {
      if (target === '' || target === host.node) return { shards: own(), unreachable_nodes: [] };
      const node = map.nodes.find((n) => n.nodeId === target);
      if (node === undefined) throw new InvalidCommandError(`no node ${target} in the cluster`);
      return fromNodes([node.nodeId], host, map, own, digest);
    }
    case 'SHARD': {
      const shard = map.shards.find((s) => s.slots.length > 0 && String(s.shardId) === target);
      if (shard === undefined) throw new InvalidCommandError(`no shard ${target} in the cluster`);
      const reply = await fromNodes(
        shard.replicas.map((r) => r.node),
        host,
        map,
        own,
        digest,
      );
      return { ...reply, shards: reply.shards.filter((s) => s.shard_id === shard.shardId) };
    }
    case 'CLUSTER':
      return fromNodes(
        map.nodes.map((n) => n.nodeId),
        host,
        map,
        own,
        digest,
      );
  }
}

/** Each node's own replicas: this node's from the host, the others' over gRPC, in parallel. */
async function fromNodes(
  nodeIds: readonly string[],
  host: MultiRaftHost,
  map: ClusterMap,
  own: () => ShardStatsReply[],
  digest: boolean,
): Promise<StatsReply> {
  const unreachable: string[] = [];
  const answers = await Promise.all(
    nodeIds.map(async (nodeId) => {
      if (nodeId === host.node) return own();
      const address = map.nodes.find((n) => n.nodeId === nodeId)?.address;
      try {
        if (address === undefined) throw new Error('no address');
        return await askNode(address, { scope: 'NODE', state_digest: digest });
      } catch {
        unreachable.push(nodeId);
        return [];
      }
    }),
  );
  return { shards: answers.flat(), unreachable_nodes: unreachable };
}

function askNode(address: string, request: StatsRequest): Promise<ShardStatsReply[]> {
  // biome-ignore lint/suspicious/noExplicitAny: a generated client
  const client: any = new publicApi.Admin(address, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) =>
    client.GetStats(
      request,
      { deadline: Date.now() + ASK_TIMEOUT_MS },
      (error: grpc.ServiceError | null, reply: { shards: ShardStatsReply[] }) => {
        client.close();
        if (error) reject(error);
        else resolve(reply.shards);
      },
    ),
  );
}
