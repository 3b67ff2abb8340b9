import type { NodeId } from './types.ts';

/**
 * The highest index present on a majority of `voters`, given each one's match index: sort
 * descending and take the one at position floor(n / 2).
 */
export function majorityIndex(voters: readonly NodeId[], matchOf: (id: NodeId) => number): number {
  if (voters.length === 0) return Number.POSITIVE_INFINITY;
  const matches = voters.map(matchOf).sort((a, b) => b - a);
  return matches[voters.length >> 1];
}

export type VoteResult = 'won' | 'lost' | 'pending';

/** Whether the votes recorded so far (true: granted) decide an election among `voters`. */
export function voteResult(
  voters: readonly NodeId[],
  votes: ReadonlyMap<NodeId, boolean>,
): VoteResult {
  const needed = (voters.length >> 1) + 1;
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const vote = votes.get(id);
    if (vote === undefined) missing++;
    else if (vote) granted++;
  }
  if (granted >= needed) return 'won';
  if (granted + missing >= needed) return 'pending';
  return 'lost';
}
