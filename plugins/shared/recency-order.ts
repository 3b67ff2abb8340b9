// The order a policy relearns on `rebuild`: the replica's own `lastAccessed` (reads it
// served, writes it applied), oldest first. Many entries share a millisecond, so ties go to
// the order the policy itself saw (`rank`, when it tracked the handle), then to write order.
import type { EntryTableView } from '../../src/cache/eviction-policy.ts';

/** Rank of a handle the policy already tracked (lower = older), or -1 for one it never saw. */
export type PreviousRank = (handle: number) => number;

/** Live handles of `view`, least recently used first. */
export function recencyOrder(view: EntryTableView, rank: PreviousRank): number[] {
  const handles = [...view.handles()];
  handles.sort(
    (a, b) =>
      view.lastAccessed(a) - view.lastAccessed(b) ||
      rank(a) - rank(b) ||
      view.version(a) - view.version(b),
  );
  return handles;
}

/**
 * Ranks handles below `limit` by their position in `order` (a policy's own victims walk):
 * what the policy knew before a rebuild.
 */
export function ranksOf(limit: number, order: Iterable<number>): PreviousRank {
  const ranks = new Float64Array(limit).fill(-1);
  let position = 0;
  for (const handle of order) if (handle < limit) ranks[handle] = position++;
  return (handle) => (handle < limit ? ranks[handle] : -1);
}
