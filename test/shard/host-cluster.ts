// Multi-raft hosts in one process over the in-memory network; by default three nodes
// holding 3 shards of 3 replicas.
import { SeededRandom } from '../../src/raft/random.ts';
import {
  MultiRaftHost,
  type MultiRaftHostOptions,
  type ShardPlacement,
} from '../../src/shard/multi-raft-host.ts';
import { InMemoryNetwork } from '../../src/transport/in-memory.ts';
import { until } from '../support/until.ts';

export const NODES = ['n1', 'n2', 'n3'] as const;
export const SHARDS = [1, 2, 3] as const;

export const PLACEMENT: ShardPlacement[] = SHARDS.map((shardId) => ({
  shardId,
  replicas: NODES.map((node, i) => ({ replicaId: i + 1, node })),
}));

export type HostOverrides = Partial<
  Omit<MultiRaftHostOptions, 'node' | 'transport' | 'placement' | 'clock' | 'random'>
>;

export class HostCluster {
  readonly network: InMemoryNetwork;
  readonly hosts = new Map<string, MultiRaftHost>();
  readonly shardIds: readonly number[];
  /** How far the hosts' wall clock runs ahead of the real one (see `advanceWallClock`). */
  #wallClockAheadMs = 0;

  constructor(overrides: HostOverrides = {}, seed = 1, placement = PLACEMENT) {
    this.shardIds = placement.map((shard) => shard.shardId);
    const nodes = [...new Set(placement.flatMap((shard) => shard.replicas.map((r) => r.node)))];
    const networkRandom = new SeededRandom(seed);
    this.network = new InMemoryNetwork({ random: () => networkRandom.next() / 0x1_0000_0000 });
    nodes.forEach((node, i) => {
      this.hosts.set(
        node,
        new MultiRaftHost({
          node,
          transport: this.network.connect(node),
          placement,
          capacityBytes: 1 << 20,
          clock: {
            now: () => Date.now() + this.#wallClockAheadMs,
            monotonic: () => performance.now(),
          },
          random: new SeededRandom(seed * 31 + i),
          ...overrides,
        }),
      );
    });
  }

  /**
   * Moves every host's wall clock (the one expiry times are absolute on) `ms` ahead, so a TTL
   * runs out without waiting for it; ticks and timeouts keep the real monotonic clock.
   */
  advanceWallClock(ms: number): void {
    this.#wallClockAheadMs += ms;
  }

  host(node: string): MultiRaftHost {
    return this.hosts.get(node) as MultiRaftHost;
  }

  /** The node whose replica of `shardId` leads, among the open hosts; undefined if none. */
  leaderOf(shardId: number, among: readonly string[] = [...this.hosts.keys()]): string | undefined {
    return among.find((node) => this.host(node).stats(shardId).role === 'leader');
  }

  async waitForLeaders(among: readonly string[] = [...this.hosts.keys()]): Promise<void> {
    await waitFor(() =>
      this.shardIds.every((shardId) => this.leaderOf(shardId, among) !== undefined),
    );
  }

  async close(): Promise<void> {
    await Promise.all([...this.hosts.values()].map((host) => host.close()));
  }
}

/**
 * Waits until the leader on `leaderNode` counts the replicas of `shardId` on `silent` as not
 * heard from (an election timeout without a message): from then on it keeps no log for them,
 * and a compaction can leave them needing a snapshot.
 */
export async function waitUntilSilent(
  c: HostCluster,
  shardId: number,
  leaderNode: string,
  silent: readonly string[],
): Promise<void> {
  const leader = c.host(leaderNode).replica(shardId).node;
  const ids = silent.map((node) => c.host(node).replica(shardId).replicaId);
  await waitFor(() => ids.every((id) => leader.progress(id)?.recentActive === false));
}

/** Polls `condition` until it holds; fails after `timeoutMs`. */
export async function waitFor(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  await until(() => (condition() ? true : undefined), timeoutMs);
}

export const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
export const text = (value: Uint8Array | undefined): string | undefined =>
  value === undefined ? undefined : new TextDecoder().decode(value);

/** A key whose slot maps to `shardId` (keys are tried in order, so the same every run). */
export function keyOf(host: MultiRaftHost, shardId: number, prefix = 'k'): string {
  for (let i = 0; ; i++) if (host.shardOf(`${prefix}${i}`) === shardId) return `${prefix}${i}`;
}
