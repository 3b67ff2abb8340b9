import type { RaftNode } from '../../src/raft/raft.ts';
import type { Ready } from '../../src/raft/ready.ts';
import type { Entry, NodeId } from '../../src/raft/types.ts';

/**
 * The property a violation breaks, by a stable name: a planted-bug run checks that its bug
 * breaks the property it must, not merely some property.
 */
export type ViolationKind =
  // Raft's safety properties, checked here.
  | 'election-safety'
  | 'log-matching'
  | 'commit-without-entry'
  | 'committed-entry-changed'
  | 'leader-completeness'
  | 'unsafe-commit'
  | 'state-machine-safety'
  // Reads against the acknowledged writes (clients.ts).
  | 'stale-read'
  | 'broken-lease'
  | 'read-past-commit'
  // What the simulator checks of the group as a whole (simulation.ts).
  | 'liveness'
  | 'disruption'
  | 'message-storm'
  | 'uncommitted-bytes'
  | 'inflight-window'
  // Thrown rather than checked: the core's own invariant, or any other error.
  | 'core-invariant'
  | 'crash';

/** A safety property found broken: the simulator stops and reports the seed and step. */
export class SafetyViolation extends Error {
  override name = 'SafetyViolation';
  readonly kind: ViolationKind;

  constructor(kind: ViolationKind, detail: string) {
    super(`${kind}: ${detail}`);
    this.kind = kind;
  }
}

function entryKey(entry: Entry): string {
  return `${entry.term}:${Buffer.from(entry.data).toString('hex')}`;
}

/**
 * The safety properties of Raft (§5.2, §5.3, §5.4), checked incrementally from what each
 * node hands its host, so every check stays cheap however long the run:
 * - election safety: at most one leader per term;
 * - log matching: two entries with the same index and term hold the same data and follow
 *   the same entry (so, by induction, the logs agree up to there);
 * - committed entries never change: once any node counts an index committed, every node
 *   that counts it committed holds the same entry there (what state-machine safety rests on);
 * - leader completeness: a new leader holds every entry committed in earlier terms;
 * - commits are safe: when an index is first committed, no node lacking that entry could
 *   win an election, i.e. no voter lacking it is at least as up to date as a majority of the
 *   voters of its own configuration (departed replicas grant nothing).
 *   Raft's proof says no such node exists; checking it at commit time catches an unsafe
 *   commit at once, without waiting for the unlucky election that would expose it;
 * - state-machine safety: no two nodes apply different entries at one index, and state
 *   machines (however they got there: by applying entries, or by installing a snapshot) are
 *   identical at equal applied indexes.
 */
export class InvariantChecker {
  checks = 0;
  readonly #leaderOfTerm = new Map<number, NodeId>();
  /** (index, term) → the entry's data and the term of the entry before it. */
  readonly #entryAt = new Map<string, { data: string; prevTerm: number }>();
  /** committedTerm[i] = term of the entry committed at index i (log matching covers its data). */
  readonly #committedTerm: number[] = [0];
  /**
   * committedIn[i] = the term in which index i was first seen committed (the observer's term).
   * Leader completeness binds leaders of later terms only: a leader of an older term can still
   * be elected late, by delayed votes, and it can commit nothing.
   */
  readonly #committedIn: number[] = [0];
  readonly #commitSeen = new Map<NodeId, number>();
  /** applied[i] = key of the entry applied at index i, by whichever node applied it first. */
  readonly #applied: string[] = [];
  /** stateAt[i] = the state machine's hash once index i is applied, by the first to get there. */
  readonly #stateAt = new Map<number, number>();
  /** Every node of the group, as the simulator holds it (crashed ones too). */
  readonly #group: () => readonly RaftNode[];

  constructor(group: () => readonly RaftNode[]) {
    this.#group = group;
  }

  /** Call on every `Ready`, before the host acts on it; `node` is the node it came from. */
  onReady(id: NodeId, node: RaftNode, ready: Ready): void {
    if (ready.softState?.role === 'leader') this.#checkNewLeader(id, node);
    for (const entry of ready.entries) this.#checkLogMatching(node, entry);
    if (ready.hardState) this.#checkCommitted(id, node, ready.hardState.commit);
    for (const entry of ready.committedEntries) this.#checkApplied(id, entry);
  }

  /** A node's state machine now stands at `index` with state hash `hash`. */
  onApplied(id: NodeId, index: number, hash: number): void {
    const known = this.#stateAt.get(index);
    if (known === undefined) this.#stateAt.set(index, hash);
    else if (known !== hash) {
      throw new SafetyViolation(
        'state-machine-safety',
        `state machines differ at applied index ${index}: node ${id} has ${hash}, another had ${known}`,
      );
    }
  }

  /** A node restarted: it may count commits again from its persisted commit index. */
  onRestart(id: NodeId): void {
    this.#commitSeen.delete(id);
  }

  /** Highest index known committed anywhere. */
  get committedIndex(): number {
    return this.#committedTerm.length - 1;
  }

  #checkNewLeader(id: NodeId, node: RaftNode): void {
    this.checks++;
    const other = this.#leaderOfTerm.get(node.term);
    if (other !== undefined && other !== id) {
      throw new SafetyViolation(
        'election-safety',
        `nodes ${other} and ${id} both lead term ${node.term}`,
      );
    }
    this.#leaderOfTerm.set(node.term, id);
    // Entries compacted into the leader's snapshot are checked through the state hashes.
    for (let i = Math.max(1, node.log.firstIndex() - 1); i < this.#committedTerm.length; i++) {
      if (this.#committedTerm[i] === undefined || this.#committedIn[i] >= node.term) continue;
      const term = node.log.term(i);
      if (term !== this.#committedTerm[i]) {
        throw new SafetyViolation(
          'leader-completeness',
          `leader ${id} of term ${node.term} has term ${term} at ${i}, committed ${this.#committedTerm[i]}`,
        );
      }
    }
  }

  #checkLogMatching(node: RaftNode, entry: Entry): void {
    this.checks++;
    const key = `${entry.index}:${entry.term}`;
    const data = Buffer.from(entry.data).toString('hex');
    const prevTerm = entry.index === 1 ? 0 : (node.log.term(entry.index - 1) ?? -1);
    const seen = this.#entryAt.get(key);
    if (!seen) {
      this.#entryAt.set(key, { data, prevTerm });
    } else if (seen.data !== data || seen.prevTerm !== prevTerm) {
      throw new SafetyViolation(
        'log-matching',
        `node ${node.id} has ${data} after term ${prevTerm} at index ${entry.index} term ${entry.term}; another has ${seen.data} after term ${seen.prevTerm}`,
      );
    }
  }

  #checkCommitted(id: NodeId, node: RaftNode, commit: number): void {
    const from = Math.max((this.#commitSeen.get(id) ?? 0) + 1, node.log.firstIndex() - 1, 1);
    for (let i = from; i <= commit; i++) {
      this.checks++;
      const term = node.log.term(i);
      if (term === undefined) {
        throw new SafetyViolation(
          'commit-without-entry',
          `node ${id} counts ${i} committed but has no entry there`,
        );
      }
      const known = this.#committedTerm[i];
      if (known === undefined) {
        this.#committedTerm[i] = term;
        this.#committedIn[i] = node.term;
        if (i === commit) this.#checkCommitIsSafe(i, term);
      } else if (known !== term) {
        throw new SafetyViolation(
          'committed-entry-changed',
          `node ${id} has term ${term} at ${i}, committed was term ${known}`,
        );
      }
    }
    this.#commitSeen.set(id, Math.max(commit, from - 1));
  }

  #checkCommitIsSafe(index: number, term: number): void {
    const nodes = this.#group();
    for (const candidate of nodes) {
      // Only a voter of its own configuration campaigns; a snapshot covering the index holds it.
      if (!candidate.voters.includes(candidate.id)) continue;
      if (index < candidate.log.firstIndex() || candidate.log.term(index) === term) continue;
      const lastIndex = candidate.log.lastIndex();
      const lastTerm = candidate.log.lastTerm();
      const electorate = candidate.voters;
      const granting = nodes.filter(
        (voter) => electorate.includes(voter.id) && voter.log.isUpToDate(lastIndex, lastTerm),
      );
      if (granting.length > electorate.length / 2) {
        throw new SafetyViolation(
          'unsafe-commit',
          `index ${index} (term ${term}) is committed, yet node ${candidate.id}, lacking it (last ${lastIndex}/${lastTerm}), could win the votes of ${granting.map((v) => v.id).join(', ')}`,
        );
      }
    }
  }

  #checkApplied(id: NodeId, entry: Entry): void {
    this.checks++;
    const key = entryKey(entry);
    const known = this.#applied[entry.index];
    if (known === undefined) this.#applied[entry.index] = key;
    else if (known !== key) {
      throw new SafetyViolation(
        'state-machine-safety',
        `node ${id} applied ${key} at ${entry.index}, another applied ${known}`,
      );
    }
  }
}
