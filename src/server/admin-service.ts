// The public `Admin` service (proto/raftcache.proto): the cluster map clients route by, and
// statistics. Adding and removing nodes and rebalancing are declared in the contract and
// answer UNIMPLEMENTED until elastic membership lands.
import * as grpc from '@grpc/grpc-js';
import type { ShardPlan } from '../cluster/placement.ts';
import { SLOT_COUNT } from '../shard/key-slot.ts';
import type { MultiRaftHost } from '../shard/multi-raft-host.ts';
import { shardStatsReply } from './cache-service.ts';

export interface ClusterMember {
  readonly nodeId: string;
  /** The advertised address, `host:port`. */
  readonly address: string;
  readonly capacityBytes: number;
  readonly region: string;
}

export interface AdminServiceContext {
  readonly clusterId: string;
  readonly members: readonly ClusterMember[];
  readonly plan: readonly ShardPlan[];
  /** This node's host: it knows the leaders of the shards it holds a replica of. */
  readonly host: MultiRaftHost;
}

const unimplemented: grpc.handleUnaryCall<unknown, unknown> = (_call, done) =>
  done({ code: grpc.status.UNIMPLEMENTED, details: 'elastic membership is not available yet' });

export function adminServiceHandlers(
  context: AdminServiceContext,
): grpc.UntypedServiceImplementation {
  const { host } = context;
  const hosted = new Set(host.shardIds);
  return {
    ClusterMap: (_call: unknown, done: grpc.sendUnaryData<unknown>) =>
      done(null, {
        cluster_id: context.clusterId,
        epoch: 1,
        slot_count: SLOT_COUNT,
        nodes: context.members.map((m) => {
          const [hostName, port] = splitAddress(m.address);
          return {
            node_id: m.nodeId,
            host: hostName,
            port,
            capacity_bytes: m.capacityBytes,
            region: m.region,
            status: 'up',
          };
        }),
        shards: context.plan.map((shard) => ({
          shard_id: shard.shardId,
          slots: shard.slots,
          replicas: shard.replicas,
          leader: hosted.has(shard.shardId) ? (host.stats(shard.shardId).leaderNode ?? '') : '',
        })),
      }),
    GetStats: (
      call: grpc.ServerUnaryCall<{ state_digest?: boolean }, unknown>,
      done: grpc.sendUnaryData<unknown>,
    ) =>
      done(null, {
        shards: host.shardIds.map((shardId) =>
          shardStatsReply(host, shardId, call.request.state_digest === true),
        ),
      }),
    AddNode: unimplemented,
    RemoveNode: unimplemented,
    Rebalance: unimplemented,
  };
}

function splitAddress(address: string): [string, number] {
  const colon = address.lastIndexOf(':');
  return [address.slice(0, colon).replace(/^\[|\]$/g, ''), Number(address.slice(colon + 1))];
}
