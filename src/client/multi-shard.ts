// Multi-key calls over several shards: keys grouped by shard, one request per shard, all in
// parallel. Each shard's part is atomic on its own; when some part fails, the caller learns
// what became of every shard's part.
import { PartialFailureError, type RaftcacheError, type ShardOutcome } from './errors.ts';

export interface ShardGroup {
  readonly shardId: number;
  /** Positions of the group's keys in the caller's list. */
  readonly indices: number[];
  readonly keys: string[];
}

/**
 * The keys grouped by shard, each group in the caller's order. A shard with more than
 * `maxKeys` keys gets several groups of at most `maxKeys`: a node refuses longer key lists,
 * so only calls whose shard part need not be atomic (reads, deletes) may pass a bound.
 */
export function groupByShard(
  keys: readonly string[],
  shardOf: (key: string) => number,
  maxKeys = Number.POSITIVE_INFINITY,
): ShardGroup[] {
  const filling = new Map<number, ShardGroup>();
  const groups: ShardGroup[] = [];
  keys.forEach((key, index) => {
    const shardId = shardOf(key);
    let group = filling.get(shardId);
    if (!group || group.keys.length >= maxKeys) {
      group = { shardId, indices: [], keys: [] };
      filling.set(shardId, group);
      groups.push(group);
    }
    group.indices.push(index);
    group.keys.push(key);
  });
  return groups;
}

/**
 * Runs `run` for every group at once. Resolves with each group's result when all succeed;
 * else rejects with the one shard's error (a single shard), or a `PartialFailureError` that
 * reports every shard.
 */
export async function forEachShard<T>(
  operation: string,
  groups: readonly ShardGroup[],
  run: (group: ShardGroup) => Promise<T>,
): Promise<T[]> {
  const settled = await Promise.allSettled(groups.map(run));
  if (settled.every((s) => s.status === 'fulfilled')) return settled.map((s) => s.value);
  if (groups.length === 1) throw (settled[0] as PromiseRejectedResult).reason;
  const shards: ShardOutcome<T>[] = settled.map((s, i) => {
    const { shardId, keys } = groups[i];
    return s.status === 'fulfilled'
      ? { shardId, keys, ok: true, value: s.value }
      : { shardId, keys, ok: false, error: s.reason as RaftcacheError };
  });
  throw new PartialFailureError(operation, shards);
}
