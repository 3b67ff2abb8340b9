// The cluster benchmark's baseline: the same workload against three multi-raft hosts in this
// one process, over the in-memory network (no gRPC, no encoding of peer frames), each request
// handed to the key's leader directly. What the hosts, Raft and the store cost by themselves,
// for a ratio against the same operations over gRPC between processes.
import { LruPolicy } from '../../plugins/lru/index.ts';
import { planShards } from '../../src/cluster/placement.ts';
import { SeededRandom } from '../../src/raft/random.ts';
import { loadConfig } from '../../src/server/config.ts';
import { MultiRaftHost } from '../../src/shard/multi-raft-host.ts';
import { InMemoryNetwork } from '../../src/transport/in-memory.ts';

export interface InProcessCluster {
  /** The host whose replica leads the key's shard (waits for one). */
  leaderFor(key: string): Promise<MultiRaftHost>;
  close(): Promise<void>;
}

/** Three hosts with the node's default settings and `shards` shards of three replicas. */
export function startInProcess(shards: number): InProcessCluster {
  const names = ['n1', 'n2', 'n3'];
  const config = loadConfig(['--node-id', 'n1', '--bootstrap'], {});
  const plan = planShards(
    names.map((nodeId) => ({ nodeId, region: 'default' })),
    shards,
    3,
  );
  const placement = plan.map((shard) => ({
    shardId: shard.shardId,
    replicas: shard.replicas.map((node) => ({ replicaId: names.indexOf(node) + 1, node })),
  }));
  const network = new InMemoryNetwork();
  const hosts = names.map(
    (node, i) =>
      new MultiRaftHost({
        node,
        transport: network.connect(node),
        placement,
        // As a node divides its capacity: every node holds a replica of every shard.
        capacityBytes: Math.floor(config.capacityBytes / shards),
        policy: () => new LruPolicy(),
        clock: { now: () => Date.now(), monotonic: () => performance.now() },
        random: new SeededRandom(i + 1),
        tickMs: config.tickMs,
        electionTicks: config.electionTicks,
        heartbeatTicks: config.heartbeatTicks,
        leaseDriftMarginMs: config.leaseDriftMarginMs,
      }),
  );
  return {
    async leaderFor(key) {
      const shardId = hosts[0].shardOf(key);
      for (;;) {
        const leader = hosts.find((host) => host.replica(shardId).isLeader);
        if (leader) return leader;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
    async close() {
      await Promise.all(hosts.map((host) => host.close()));
    },
  };
}
