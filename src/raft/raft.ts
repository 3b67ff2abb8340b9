import {
  DEFAULT_MAX_APPLY_BYTES,
  DEFAULT_MAX_BYTES_PER_APPEND,
  DEFAULT_MAX_INFLIGHT_APPENDS,
  DEFAULT_MAX_UNCOMMITTED_BYTES,
  type ProposeResult,
  type RaftConfig,
  type ReadMode,
  type TransferResult,
} from './config.ts';
import { invariant } from './invariant.ts';
import { Lease } from './lease.ts';
import { RaftLog } from './log.ts';
import {
  applyConfChange,
  type ConfChange,
  type ConfHistory,
  confHistoryFromStorage,
  decodeConfState,
  encodeConfState,
} from './membership.ts';
import { Progress } from './progress.ts';
import { majorityIndex, voteResult } from './quorum.ts';
import type { RandomSource } from './random.ts';
import { type PendingRead, ReadIndexQueue } from './read-index.ts';
import type { ReadState, Ready, SoftState } from './ready.ts';
import {
  CAMPAIGN_TRANSFER,
  type ConfState,
  type Entry,
  type EntryType,
  type HardState,
  isLocalMessage,
  isTermless,
  type Message,
  type MessageFields,
  message,
  NONE,
  type NodeId,
  type Role,
  type SnapshotMeta,
} from './types.ts';
import { totalBytes, UncommittedBytes } from './uncommitted.ts';

const EMPTY_DATA = new Uint8Array(0);
type CampaignKind = 'pre-election' | 'election' | 'transfer';

/**
 * One replica's Raft state machine. It does no I/O, reads no clock but the injected one and
 * draws randomness only from the injected source: the host calls `tick()`, `step(message)`,
 * `propose(data)` and `readIndex(context)`, then takes `ready()`, does what it says (see
 * `Ready`), and calls `advance()`.
 *
 * Role behaviour is swapped, not tested at every turn: `#stepRole` and `#tickRole` are set
 * when the role changes. The few rules whose violation breaks safety are protected methods,
 * one rule each, so a test can plant a bug by overriding exactly one of them.
 */
export class RaftNode {
  readonly id: NodeId;
  readonly log: RaftLog;
  term = 0;
  vote: NodeId = NONE;
  lead: NodeId = NONE;
  role: Role = 'follower';
  #leadTransferee: NodeId = NONE;

  readonly #conf: ConfHistory;
  /** Set when this node leads: the index of the last configuration it may not yet change past. */
  #pendingConfIndex = 0;
  readonly #random: RandomSource;
  readonly #clock: () => number;
  readonly #electionTicks: number;
  readonly #heartbeatTicks: number;
  readonly #heartbeatClock: (() => number) | undefined;
  readonly #maxBytesPerAppend: number;
  readonly #maxInflightAppends: number;
  readonly #maxApplyBytes: number;
  readonly #forwardProposals: boolean;
  readonly #preVote: boolean;
  readonly #checkQuorum: boolean;

  #progress = new Map<NodeId, Progress>();
  readonly #uncommitted: UncommittedBytes;
  #votes = new Map<NodeId, boolean>();
  #electionElapsed = 0;
  #heartbeatElapsed = 0;
  #randomizedElectionTimeout = 0;
  /**
   * With leases, until the first election timeout after start, act as if a leader had just
   * been heard: a node that restarts right after acknowledging a leader's heartbeat must not
   * help elect another leader while that leader's lease may still run.
   */
  #quietAfterStart: boolean;
  #messages: Message[] = [];
  #stepRole: (m: Message) => void = this.#stepFollower;
  #tickRole: () => void = this.#tickElection;

  readonly #reads = new ReadIndexQueue();
  /** Reads that came before this leader committed an entry of its term. */
  #readsBeforeFirstCommit: PendingRead[] = [];
  /** Reads forwarded to the leader, by context, so a change of leader can fail them. */
  readonly #forwardedReads = new Set<number>();
  #readStates: ReadState[] = [];
  #failedReads: number[] = [];
  readonly #leaseMs: number;
  readonly #lease: Lease;

  #prevHardState: HardState;
  #prevSoftState: SoftState;
  #readyOutstanding = false;

  constructor(config: RaftConfig) {
    invariant(config.id !== NONE, 'a replica id must not be NONE');
    invariant(config.heartbeatTicks < config.electionTicks, 'heartbeats must beat elections');
    this.id = config.id;
    this.#random = config.random;
    this.#clock = config.clock ?? (() => 0);
    this.#electionTicks = config.electionTicks;
    this.#heartbeatTicks = config.heartbeatTicks;
    this.#heartbeatClock = config.heartbeatClock;
    this.#maxBytesPerAppend = config.maxBytesPerAppend ?? DEFAULT_MAX_BYTES_PER_APPEND;
    this.#maxInflightAppends = config.maxInflightAppends ?? DEFAULT_MAX_INFLIGHT_APPENDS;
    this.#uncommitted = new UncommittedBytes(
      config.maxUncommittedBytes ?? DEFAULT_MAX_UNCOMMITTED_BYTES,
    );
    this.#maxApplyBytes = config.maxApplyBytes ?? DEFAULT_MAX_APPLY_BYTES;
    this.#forwardProposals = config.forwardProposals ?? true;
    this.#preVote = config.preVote ?? true;
    this.#checkQuorum = config.checkQuorum ?? true;
    this.#leaseMs =
      config.tickMs === undefined
        ? 0
        : Math.max(
            0,
            (config.electionTicks - 1) * config.tickMs - (config.leaseDriftMarginMs ?? 0),
          );
    this.#lease = new Lease(this.#leaseMs);

    this.#quietAfterStart = this.leaseReadsEnabled();

    this.log = new RaftLog(config.storage, config.applied ?? 0);
    this.#conf = confHistoryFromStorage(config.storage, {
      voters: config.voters,
      learners: config.learners ?? [],
    });
    const hardState = config.storage.hardState();
    this.term = hardState.term;
    this.vote = hardState.vote;
    this.#prevHardState = hardState;
    this.#becomeFollower(this.term, NONE);
    this.#prevSoftState = this.softState();
  }

  /** The voter leadership is being handed to, or `NONE`. */
  get leadTransferee(): NodeId {
    return this.#leadTransferee;
  }

  /** The voting members, as this node's log says (committed or not). */
  get voters(): readonly NodeId[] {
    return this.#conf.current().voters;
  }

  get learners(): readonly NodeId[] {
    return this.#conf.current().learners;
  }

  get #voters(): readonly NodeId[] {
    return this.#conf.current().voters;
  }

  /** The configuration once `index` is applied: what a snapshot taken there records. */
  confStateAt(index: number): ConfState {
    return this.#conf.at(index);
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  softState(): SoftState {
    return { lead: this.lead, role: this.role };
  }

  /** The leader's view of `id`'s log; undefined on a non-leader. */
  progress(id: NodeId): Progress | undefined {
    return this.role === 'leader' ? this.#progress.get(id) : undefined;
  }

  // ---- host interface ------------------------------------------------------------------

  /** One unit of logical time: the election and heartbeat clocks count ticks. */
  tick(): void {
    this.#tickRole();
  }

  /** Starts an election at once (as if the election timeout had passed). */
  campaign(): void {
    this.step(message({ type: 'hup', from: this.id, to: this.id }));
  }

  /** Hands the node a message from a peer (or a local `hup` / `beat`). */
  step(m: Message): void {
    // A message for another replica id, such as an earlier incarnation of this one, is not ours.
    if (m.to !== this.id) return;
    if (m.term > this.term && !isTermless(m.type)) {
      if (!this.#acceptHigherTerm(m)) return;
    } else if (m.term < this.term && !isTermless(m.type) && !isLocalMessage(m.type)) {
      this.#answerStaleTerm(m);
      return;
    }

    switch (m.type) {
      case 'hup':
        if (this.role !== 'leader') this.#campaign(this.#preVote ? 'pre-election' : 'election');
        return;
      case 'vote':
      case 'preVote':
        this.#handleVoteRequest(m);
        return;
      default:
        this.#stepRole(m);
    }
  }

  /** Proposes new entries, one per `data`; see `ProposeResult` for what may become of them. */
  propose(data: readonly Uint8Array[]): ProposeResult {
    if (this.role === 'leader') {
      if (this.#leadTransferee !== NONE) {
        return { kind: 'refused', reason: 'transferring', leader: this.id };
      }
      if (!this.#roomForProposal(data)) {
        return { kind: 'refused', reason: 'overloaded', leader: this.id };
      }
      const firstIndex = this.log.lastIndex() + 1;
      this.#appendEntries(data);
      this.#broadcastAppend();
      return { kind: 'appended', term: this.term, firstIndex, lastIndex: this.log.lastIndex() };
    }
    if (this.lead === NONE) return { kind: 'refused', reason: 'no-leader', leader: NONE };
    if (!this.#forwardProposals)
      return { kind: 'refused', reason: 'not-leader', leader: this.lead };
    const entries = data.map((d): Entry => ({ term: 0, index: 0, type: 'normal', data: d }));
    this.#send({ type: 'prop', to: this.lead, entries });
    return { kind: 'forwarded', leader: this.lead };
  }

  /**
   * Proposes a membership change, one server at a time. It takes effect as soon as it is
   * appended; the next may be proposed only once this one is committed, and a new leader
   * proposes none before it has committed an entry of its own term. A leader that removes
   * itself leads until the change commits, then steps down.
   */
  proposeConfChange(change: ConfChange): ProposeResult {
    if (this.role !== 'leader') {
      return {
        kind: 'refused',
        reason: this.lead === NONE ? 'no-leader' : 'not-leader',
        leader: this.lead,
      };
    }
    if (this.#leadTransferee !== NONE)
      return { kind: 'refused', reason: 'transferring', leader: this.id };
    if (!this.mayProposeConfChange()) {
      return { kind: 'refused', reason: 'conf-change-pending', leader: this.id };
    }
    const next = applyConfChange(this.#conf.current(), change);
    if (typeof next === 'string')
      return { kind: 'refused', reason: 'invalid-conf-change', leader: this.id };
    const index = this.log.lastIndex() + 1;
    this.#pendingConfIndex = index;
    this.#appendEntries([encodeConfState(next)], 'conf');
    this.#broadcastAppend();
    return { kind: 'appended', term: this.term, firstIndex: index, lastIndex: index };
  }

  /**
   * Asks for a read index for the read `context` (unique among this node's reads). The answer
   * comes in a later `Ready`: a read state, or the context among the failed reads. `lease`
   * skips the heartbeat round while the leader's lease holds (only with check-quorum), and
   * falls back to a round otherwise.
   */
  readIndex(context: number, mode: ReadMode = 'read-index'): void {
    if (this.role === 'leader') {
      this.#leaderRead({ context, from: this.id, index: 0 }, mode);
      return;
    }
    if (this.lead === NONE) {
      this.#failedReads.push(context);
      return;
    }
    this.#forwardedReads.add(context);
    this.#send({ type: mode === 'lease' ? 'readLease' : 'readIndex', to: this.lead, context });
  }

  /**
   * Hands leadership to `target`: stop taking proposals, bring it up to date, tell it to
   * campaign at once. Abandoned after an election timeout. The lease ends now, for good in this
   * term: the target's election bypasses the followers' stickiness the lease rests on.
   */
  transferLeadership(target: NodeId): TransferResult {
    if (this.role !== 'leader') return 'not-leader';
    if (target === this.id) return 'already-leader';
    if (!this.#voters.includes(target)) return 'not-a-voter';
    if (this.#leadTransferee === target) return 'in-progress';
    this.#leadTransferee = target;
    this.#electionElapsed = 0;
    this.#lease.revoke();
    const progress = this.#progress.get(target) as Progress;
    if (progress.match === this.log.lastIndex()) this.#send({ type: 'timeoutNow', to: target });
    else this.#sendAppend(target, true);
    return 'started';
  }

  /**
   * The host's word on a snapshot it was streaming to `to`: done (the follower has it) or
   * failed. Either way the leader goes back to probing that follower, from past the snapshot
   * when done.
   */
  reportSnapshot(to: NodeId, outcome: 'done' | 'failed'): void {
    const progress = this.progress(to);
    if (progress?.state !== 'snapshot') return;
    if (outcome === 'failed') progress.pendingSnapshot = 0;
    progress.becomeProbe();
    // Wait for the follower's answer to the snapshot before sending more.
    progress.probeSent = true;
  }

  /** The host could not reach `to`: stop streaming appends to it, probe instead. */
  reportUnreachable(to: NodeId): void {
    const progress = this.progress(to);
    if (progress?.state === 'replicate') progress.becomeProbe();
  }

  /** Bytes the leader holds appended but not yet committed. */
  uncommittedBytes(): number {
    return this.#uncommitted.pending;
  }

  hasReady(): boolean {
    return (
      this.log.pendingSnapshot() !== undefined ||
      this.#messages.length > 0 ||
      this.log.hasUnstableEntries() ||
      this.log.hasNextCommittedEntries() ||
      this.#readStates.length > 0 ||
      this.#failedReads.length > 0 ||
      this.#reads.hasWaiting() ||
      this.#hardStateChanged() ||
      this.lead !== this.#prevSoftState.lead ||
      this.role !== this.#prevSoftState.role
    );
  }

  /** Compared field by field: `hasReady` runs on every turn of the host's loop. */
  #hardStateChanged(): boolean {
    const prev = this.#prevHardState;
    return this.term !== prev.term || this.vote !== prev.vote || this.log.committed !== prev.commit;
  }

  /** Collects what the host must do; see `Ready` for the order. One at a time. */
  ready(): Ready {
    invariant(!this.#readyOutstanding, 'ready() called again before advance()');
    // Reads asked for since the last heartbeat share one round, sent now.
    if (this.role === 'leader' && this.#reads.hasWaiting()) this.#broadcastHeartbeat();
    this.#readyOutstanding = true;
    const hardState = this.hardState();
    const softState = this.softState();
    const ready: Ready = {
      softState:
        softState.lead !== this.#prevSoftState.lead || softState.role !== this.#prevSoftState.role
          ? softState
          : undefined,
      hardState: this.#hardStateChanged() ? hardState : undefined,
      snapshot: this.log.pendingSnapshot(),
      entries: this.log.unstableEntries(),
      messages: this.#messages,
      committedEntries: this.log.nextCommittedEntries(this.#maxApplyBytes),
      readStates: this.#readStates,
      failedReads: this.#failedReads,
    };
    this.#messages = [];
    this.#readStates = [];
    this.#failedReads = [];
    if (ready.softState) this.#prevSoftState = ready.softState;
    return ready;
  }

  /** The host has done everything `ready` asked. */
  advance(ready: Ready): void {
    invariant(this.#readyOutstanding, 'advance() without ready()');
    this.#readyOutstanding = false;
    if (ready.hardState) this.#prevHardState = ready.hardState;
    if (ready.snapshot) this.log.snapshotStableTo(ready.snapshot.index);
    const lastEntry = ready.entries.at(-1);
    if (lastEntry) this.log.stableTo(lastEntry.index, lastEntry.term);
    const lastApplied = ready.committedEntries.at(-1);
    if (lastApplied) this.log.appliedTo(lastApplied.index);
  }

  // ---- safety rules (protected so a test can plant a bug in exactly one) ---------------

  /** §5.2: at most one vote per term, first come first served; the same candidate again gets the same answer. */
  protected voteIsAvailableFor(candidate: NodeId): boolean {
    return this.vote === candidate || (this.vote === NONE && this.lead === NONE);
  }

  /** §5.4.1: vote only for a candidate whose log is at least as up to date as ours. */
  protected candidateIsUpToDate(m: Message): boolean {
    return this.log.isUpToDate(m.index, m.logTerm);
  }

  /** §5.4.2 (Figure 8): only an entry of the leader's own term commits by counting replicas. */
  protected mayCommitByCounting(index: number): boolean {
    return this.log.term(index) === this.term;
  }

  /** §5.3: where an append starts to differ from our log; only a real conflict truncates. */
  protected firstNewOrConflicting(entries: readonly Entry[]): number {
    return this.log.findConflict(entries);
  }

  /** A read is served only after a heartbeat round confirms leadership (§6.4), unless alone. */
  protected readNeedsHeartbeatRound(): boolean {
    return this.#voters.length > 1;
  }

  /** A lease is only sound with check-quorum: it rests on followers' stickiness. */
  protected leaseReadsEnabled(): boolean {
    return this.#checkQuorum && this.#leaseMs > 0;
  }

  /** The time a lease is judged at: the monotonic clock now, never a count of ticks. */
  protected now(): number {
    return this.#clock();
  }

  /** Whether the entries from `next` on can still be sent, or were compacted into a snapshot. */
  protected entriesAvailableFrom(next: number): boolean {
    return this.log.term(next - 1) !== undefined;
  }

  /** The index a follower matches once it installed `snapshot`: the snapshot's last entry. */
  protected matchAfterSnapshot(snapshot: SnapshotMeta): number {
    return snapshot.index;
  }

  /** The leader's record of one follower, with its inflight window. */
  protected newProgress(next: number, maxInflightAppends: number): Progress {
    return new Progress(next, maxInflightAppends);
  }

  /** One change at a time: the previous one must be committed first. */
  protected mayProposeConfChange(): boolean {
    return this.#pendingConfIndex <= this.log.committed;
  }

  /**
   * Called just after a new leader appended its empty entry: no configuration change until
   * that entry, its first of its term, commits (the single-server-change bug of 2015).
   */
  protected pendingConfIndexAtElection(): number {
    return this.log.lastIndex();
  }

  /** The term a pre-candidate holds while it asks: its own; only a real election raises it. */
  protected termDuringPreVote(): number {
    return this.term;
  }

  // ---- roles -----------------------------------------------------------------------------

  #becomeFollower(term: number, lead: NodeId): void {
    this.#reset(term);
    this.role = 'follower';
    this.lead = lead;
    this.#stepRole = this.#stepFollower;
    this.#tickRole = this.#tickElection;
  }

  #becomePreCandidate(): void {
    invariant(this.role !== 'leader', 'a leader cannot become a pre-candidate');
    // Not #reset: the term and the vote stay as they are.
    const term = this.termDuringPreVote();
    if (term !== this.term) {
      this.term = term;
      this.vote = NONE;
    }
    this.#failPendingReads();
    this.#votes.clear();
    this.#randomizeElectionTimeout();
    this.role = 'preCandidate';
    this.lead = NONE;
    this.#stepRole = this.#stepCandidate;
    this.#tickRole = this.#tickElection;
  }

  #becomeCandidate(): void {
    invariant(this.role !== 'leader', 'a leader cannot become a candidate');
    this.#reset(this.term + 1);
    this.role = 'candidate';
    this.vote = this.id;
    this.#stepRole = this.#stepCandidate;
    this.#tickRole = this.#tickElection;
  }

  #becomeLeader(): void {
    invariant(this.role === 'candidate', 'only a candidate becomes leader');
    this.#reset(this.term);
    this.role = 'leader';
    this.lead = this.id;
    this.#stepRole = this.#stepLeader;
    this.#tickRole = this.#tickHeartbeat;
    const next = this.log.lastIndex() + 1;
    for (const id of this.#members()) this.#track(id, next);
    if (!this.#progress.has(this.id)) this.#track(this.id, next);
    // §5.4.2 and §8: an entry of its own term lets the leader commit earlier terms' entries,
    // and serve reads.
    this.#appendEntries([EMPTY_DATA]);
    this.#pendingConfIndex = this.pendingConfIndexAtElection();
  }

  #reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    if (this.#prevSoftState !== undefined) this.#quietAfterStart = false;
    this.lead = NONE;
    this.#leadTransferee = NONE;
    this.#lease.reset();
    this.#electionElapsed = 0;
    this.#heartbeatElapsed = 0;
    this.#randomizeElectionTimeout();
    this.#votes.clear();
    this.#progress.clear();
    this.#uncommitted.reset();
    this.#failPendingReads();
  }

  #randomizeElectionTimeout(): void {
    this.#randomizedElectionTimeout = this.#electionTicks + this.#random.int(this.#electionTicks);
  }

  /** Leadership or the known leader changed: no pending read will be answered here. */
  #failPendingReads(): void {
    for (const read of [...this.#reads.drain(), ...this.#readsBeforeFirstCommit]) {
      if (read.from === this.id) this.#failedReads.push(read.context);
      else
        this.#send({ type: 'readIndexResp', to: read.from, context: read.context, reject: true });
    }
    this.#readsBeforeFirstCommit = [];
    for (const context of this.#forwardedReads) this.#failedReads.push(context);
    this.#forwardedReads.clear();
  }

  #tickElection(): void {
    this.#electionElapsed++;
    if (this.#electionElapsed >= this.#electionTicks) this.#quietAfterStart = false;
    if (this.#isVoter() && this.#electionElapsed >= this.#randomizedElectionTimeout) {
      this.#electionElapsed = 0;
      this.campaign();
    }
  }

  #tickHeartbeat(): void {
    this.#heartbeatElapsed++;
    this.#electionElapsed++;
    if (this.#electionElapsed >= this.#electionTicks) {
      this.#electionElapsed = 0;
      if (this.#checkQuorum && !this.#quorumActive()) {
        this.#becomeFollower(this.term, NONE);
        return;
      }
      // A transfer not done within an election timeout is abandoned.
      this.#leadTransferee = NONE;
    }
    const due = this.#heartbeatClock
      ? this.#heartbeatClock() % this.#heartbeatTicks === 0
      : this.#heartbeatElapsed >= this.#heartbeatTicks;
    if (due) {
      this.#heartbeatElapsed = 0;
      this.#broadcastHeartbeat();
    }
  }

  /** Whether a majority was heard from since the last check; starts the next period. */
  #quorumActive(): boolean {
    const active = new Map<NodeId, boolean>();
    for (const [id, progress] of this.#progress) {
      active.set(id, id === this.id || progress.recentActive);
      progress.recentActive = false;
    }
    return voteResult(this.#voters, active) === 'won';
  }

  #isVoter(): boolean {
    return this.#voters.includes(this.id);
  }

  /** Voters and learners: everyone the leader replicates to (this node included if a member). */
  #members(): NodeId[] {
    const conf = this.#conf.current();
    return [...conf.voters, ...conf.learners];
  }

  #track(id: NodeId, next: number): void {
    const progress = this.newProgress(next, this.#maxInflightAppends);
    if (id === this.id) {
      progress.maybeUpdate(this.log.lastIndex());
      progress.becomeReplicate();
    }
    this.#progress.set(id, progress);
  }

  /**
   * Appends `entries` (consecutive), replacing what the log held from the first on, and
   * follows the configurations they bring or take away.
   */
  #appendToLog(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    let changed = this.#conf.truncateFrom(entries[0].index);
    this.log.truncateAndAppend(entries);
    for (const entry of entries) {
      if (entry.type !== 'conf') continue;
      this.#conf.record(entry.index, decodeConfState(entry.data));
      changed = true;
    }
    if (changed) this.#onConfChanged();
  }

  /**
   * The configuration changed: the leader tracks the new members. A removed one is still sent
   * the log until its removal commits, so that it learns it was removed and keeps quiet.
   */
  #onConfChanged(): void {
    if (this.role !== 'leader') return;
    for (const id of this.#members()) {
      if (!this.#progress.has(id)) this.#track(id, this.log.lastIndex() + 1);
    }
    if (this.#leadTransferee !== NONE && !this.#voters.includes(this.#leadTransferee)) {
      this.#leadTransferee = NONE;
    }
  }

  /** The current configuration is committed: stop replicating to those it removed. */
  #forgetRemovedMembers(): void {
    const members = this.#members();
    for (const id of [...this.#progress.keys()]) {
      if (id !== this.id && !members.includes(id)) this.#progress.delete(id);
    }
  }

  /**
   * A message of a higher term. Returns false when it is to be ignored: a vote request to a
   * node that heard from a live leader within the election timeout (unless the request is a
   * leader transfer's), so a partitioned node coming back cannot depose a healthy leader.
   * Pre-vote requests and granted pre-vote answers carry a future term without changing
   * anyone's term; everything else makes this node a follower of that term.
   */
  #acceptHigherTerm(m: Message): boolean {
    if (m.type === 'vote' || m.type === 'preVote') {
      const stickyToLeader =
        this.#checkQuorum &&
        (this.lead !== NONE || this.#quietAfterStart) &&
        this.#electionElapsed < this.#electionTicks;
      if (stickyToLeader && m.context !== CAMPAIGN_TRANSFER) return false;
    }
    if (m.type === 'preVote' || (m.type === 'preVoteResp' && !m.reject)) return true;
    const fromLeader = m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap';
    this.#becomeFollower(m.term, fromLeader ? m.from : NONE);
    return true;
  }

  /**
   * A message from an older term. An append or heartbeat comes from a deposed leader: answer
   * so it learns the newer term and steps down. A vote or pre-vote request gets a refusal
   * carrying our term. Anything else is dropped.
   */
  #answerStaleTerm(m: Message): void {
    if (m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap') {
      this.#send({ type: 'appResp', to: m.from });
    } else if (m.type === 'vote' || m.type === 'preVote') {
      this.#send({
        type: m.type === 'vote' ? 'voteResp' : 'preVoteResp',
        to: m.from,
        reject: true,
      });
    }
  }

  #campaign(kind: CampaignKind): void {
    if (!this.#isVoter()) return;
    if (kind === 'pre-election') this.#becomePreCandidate();
    else this.#becomeCandidate();
    this.#votes.set(this.id, true);
    if (voteResult(this.#voters, this.#votes) === 'won') {
      this.#wonRound(kind);
      return;
    }
    const pre = kind === 'pre-election';
    const index = this.log.lastIndex();
    const logTerm = this.log.lastTerm();
    const context = kind === 'transfer' ? CAMPAIGN_TRANSFER : 0;
    for (const id of this.#voters) {
      if (id === this.id) continue;
      // A pre-vote asks about the next term without entering it.
      this.#send(
        { type: pre ? 'preVote' : 'vote', to: id, index, logTerm, context },
        pre ? this.term + 1 : this.term,
      );
    }
  }

  #wonRound(kind: CampaignKind): void {
    if (kind === 'pre-election') {
      this.#campaign('election');
      return;
    }
    this.#becomeLeader();
    this.#broadcastAppend();
  }

  #handleVoteRequest(m: Message): void {
    const pre = m.type === 'preVote';
    // A pre-vote is about a future term: our vote in the current one does not bind it.
    const available = pre
      ? m.term > this.term || this.voteIsAvailableFor(m.from)
      : this.voteIsAvailableFor(m.from);
    // Learners answer too: one may have been promoted without knowing it yet, and refusing
    // could deadlock an election. A vote counts only for a candidate whose configuration makes
    // the voter a voter, so a learner still never counts toward a quorum.
    const grant = available && this.candidateIsUpToDate(m);
    if (grant && !pre) {
      this.vote = m.from;
      this.#electionElapsed = 0;
    }
    const type = pre ? 'preVoteResp' : 'voteResp';
    // A granted pre-vote answers in the term asked about; a refusal tells our own.
    this.#send({ type, to: m.from, reject: !grant }, pre && grant ? m.term : this.term);
  }

  #stepFollower(m: Message): void {
    switch (m.type) {
      case 'prop':
        if (this.lead !== NONE && this.#forwardProposals) {
          this.#send({ type: 'prop', to: this.lead, entries: m.entries });
        }
        return;
      case 'app':
        this.#electionElapsed = 0;
        this.lead = m.from;
        this.#handleAppend(m);
        return;
      case 'heartbeat':
        this.#electionElapsed = 0;
        this.lead = m.from;
        this.#handleHeartbeat(m);
        return;
      case 'snap':
        this.#electionElapsed = 0;
        this.lead = m.from;
        this.#handleSnapshot(m);
        return;
      case 'timeoutNow':
        // The leader hands over: campaign now, past pre-vote and the others' stickiness.
        this.#campaign('transfer');
        return;
      case 'readIndex':
      case 'readLease':
        this.#refuseRead(m);
        return;
      case 'readIndexResp':
        this.#handleReadIndexResponse(m);
        return;
      default:
        return;
    }
  }

  /** Only the leader grants read indexes; the asker retries where the leader is. */
  #refuseRead(m: Message): void {
    this.#send({ type: 'readIndexResp', to: m.from, context: m.context, reject: true });
  }

  #stepCandidate(m: Message): void {
    switch (m.type) {
      case 'app':
      case 'heartbeat':
      case 'snap':
        // A leader of our term exists: the election is lost (§5.2).
        this.#becomeFollower(m.term, m.from);
        this.#stepFollower(m);
        return;
      case 'voteResp':
      case 'preVoteResp': {
        const pre = this.role === 'preCandidate';
        if (pre !== (m.type === 'preVoteResp')) return;
        this.#votes.set(m.from, !m.reject);
        const result = voteResult(this.#voters, this.#votes);
        if (result === 'won') this.#wonRound(pre ? 'pre-election' : 'election');
        else if (result === 'lost') this.#becomeFollower(this.term, NONE);
        return;
      }
      case 'readIndex':
      case 'readLease':
        this.#refuseRead(m);
        return;
      default:
        return;
    }
  }

  #stepLeader(m: Message): void {
    switch (m.type) {
      case 'beat':
        this.#broadcastHeartbeat();
        return;
      case 'prop':
        // Refused when transferring or overloaded; the proposer learns by never seeing it applied.
        if (this.#leadTransferee !== NONE) return;
        if (!this.#roomForProposal(m.entries.map((entry) => entry.data))) return;
        this.#appendEntries(m.entries.map((entry) => entry.data));
        this.#broadcastAppend();
        return;
      case 'appResp':
        this.#handleAppendResponse(m);
        return;
      case 'heartbeatResp':
        this.#handleHeartbeatResponse(m);
        return;
      case 'readIndex':
      case 'readLease':
        this.#leaderRead(
          { context: m.context, from: m.from, index: 0 },
          m.type === 'readLease' ? 'lease' : 'read-index',
        );
        return;
      default:
        return;
    }
  }

  // ---- reads -----------------------------------------------------------------------------

  #leaderRead(request: PendingRead, mode: ReadMode): void {
    const read: PendingRead = { ...request, index: this.log.committed };
    if (!this.#committedInOwnTerm()) {
      // Our commit index may lag what an earlier leader committed: wait for our own entry.
      this.#readsBeforeFirstCommit.push(read);
      return;
    }
    const leaseHolds =
      mode === 'lease' && this.leaseReadsEnabled() && this.#lease.holds(this.now());
    if (leaseHolds || !this.readNeedsHeartbeatRound()) {
      this.#answerRead(read);
      return;
    }
    this.#reads.add(read);
  }

  #committedInOwnTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  #answerRead(read: PendingRead): void {
    if (read.from === this.id) {
      this.#readStates.push({ context: read.context, index: read.index });
    } else {
      this.#send({
        type: 'readIndexResp',
        to: read.from,
        context: read.context,
        index: read.index,
      });
    }
  }

  #handleReadIndexResponse(m: Message): void {
    if (!this.#forwardedReads.delete(m.context)) return;
    if (m.reject) this.#failedReads.push(m.context);
    else this.#readStates.push({ context: m.context, index: m.index });
  }

  /** Our first entry of this term committed: reads held back until now join the next round. */
  #releaseReadsBeforeFirstCommit(): void {
    const held = this.#readsBeforeFirstCommit;
    this.#readsBeforeFirstCommit = [];
    for (const read of held) this.#leaderRead(read, 'read-index');
  }

  // ---- replication -----------------------------------------------------------------------

  /** The leader appends entries of its term, one per `data`, and commits what it can. */
  #appendEntries(data: readonly Uint8Array[], type: EntryType = 'normal'): void {
    let index = this.log.lastIndex();
    const entries: Entry[] = new Array(data.length);
    for (let i = 0; i < data.length; i++) {
      entries[i] = { term: this.term, index: ++index, type, data: data[i] };
    }
    this.#appendToLog(entries);
    this.#uncommitted.appended(index, totalBytes(data));
    this.#progress.get(this.id)?.maybeUpdate(index);
    this.#maybeCommit();
  }

  #roomForProposal(data: readonly Uint8Array[]): boolean {
    return this.#uncommitted.hasRoomFor(totalBytes(data));
  }

  #maybeCommit(): boolean {
    const index = majorityIndex(this.#voters, (id) => this.#progress.get(id)?.match ?? 0);
    if (index > this.log.committed && this.mayCommitByCounting(index)) {
      const firstOfTerm = !this.#committedInOwnTerm();
      this.log.commitTo(index);
      this.#uncommitted.committedTo(this.log.committed);
      if (firstOfTerm && this.#committedInOwnTerm()) this.#releaseReadsBeforeFirstCommit();
      if (this.log.committed >= this.#conf.currentIndex()) {
        this.#forgetRemovedMembers();
        // Our own removal is committed: the rest of the group goes on without us.
        if (!this.#isVoter()) this.#becomeFollower(this.term, NONE);
      }
      return true;
    }
    return false;
  }

  #broadcastAppend(): void {
    for (const id of this.#progress.keys()) if (id !== this.id) this.#sendAppend(id, true);
  }

  /** Heartbeats to every follower, as one read round (see `ReadIndexQueue`). */
  #broadcastHeartbeat(): void {
    const round = this.#reads.startRound(this.#clock());
    for (const [id, progress] of this.#progress) {
      if (id === this.id) continue;
      // Only what the follower is known to hold may be committed on it.
      const commit = Math.min(progress.match, this.log.committed);
      progress.sentCommit = Math.max(progress.sentCommit, commit);
      this.#send({ type: 'heartbeat', to: id, commit, context: round });
    }
    this.#confirmRound(round, this.id);
  }

  /** `from` answered read round `round`; a majority confirms it and every older one. */
  #confirmRound(round: number, from: NodeId): void {
    const confirmed = this.#reads.ack(round, from, (acks) => {
      const votes = new Map<NodeId, boolean>();
      for (const id of acks) votes.set(id, true);
      return voteResult(this.#voters, votes) === 'won';
    });
    if (!confirmed) return;
    this.#lease.extendFrom(confirmed.sentAt);
    for (const read of confirmed.reads) this.#answerRead(read);
  }

  /**
   * Sends `to` the entries it lacks, if its progress allows. An empty append still goes out
   * when `sendIfEmpty` (to probe, or to carry a new commit index). Returns whether one went.
   */
  #sendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const progress = this.#progress.get(to) as Progress;
    if (progress.isPaused()) return false;
    if (!this.entriesAvailableFrom(progress.next)) return this.#sendSnapshot(to, progress);
    const prevIndex = progress.next - 1;
    const prevTerm = this.log.term(prevIndex);
    invariant(prevTerm !== undefined, () => `no term for ${prevIndex}: that entry was compacted`);
    const entries = this.log.slice(
      progress.next,
      this.log.lastIndex() + 1,
      this.#maxBytesPerAppend,
    );
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.#send({
      type: 'app',
      to,
      index: prevIndex,
      logTerm: prevTerm,
      entries,
      commit: this.log.committed,
    });
    progress.sentCommit = Math.max(progress.sentCommit, this.log.committed);
    if (entries.length > 0) progress.sentEntries(entries[entries.length - 1].index);
    else if (progress.state === 'probe') progress.probeSent = true;
    return true;
  }

  /**
   * The follower needs entries compacted into the snapshot: say so (the host streams the
   * data), and send nothing more until the host reports on the transfer.
   */
  #sendSnapshot(to: NodeId, progress: Progress): boolean {
    const snapshot = this.log.storage.snapshot();
    invariant(
      snapshot.index > 0,
      () => `no snapshot to send ${to}, yet entries before ${progress.next} are gone`,
    );
    progress.becomeSnapshot(snapshot.index);
    this.#send({ type: 'snap', to, snapshot });
    return true;
  }

  /**
   * A snapshot from the leader (its data already here, by the host's snapshot path). One at
   * or below our commit index says nothing new; one whose last entry we hold moves our commit
   * index; any other replaces our log and state machine.
   */
  #handleSnapshot(m: Message): void {
    const snapshot = m.snapshot as SnapshotMeta;
    if (snapshot.index <= this.log.committed) {
      this.#send({ type: 'appResp', to: m.from, index: this.log.committed });
      return;
    }
    if (this.log.matchTerm(snapshot.index, snapshot.term)) {
      this.log.commitTo(snapshot.index);
      this.#send({ type: 'appResp', to: m.from, index: this.log.committed });
      return;
    }
    this.log.restore(snapshot);
    this.#conf.reset(snapshot.index, snapshot.conf);
    this.#send({ type: 'appResp', to: m.from, index: this.matchAfterSnapshot(snapshot) });
  }

  #handleAppend(m: Message): void {
    if (m.index < this.log.committed) {
      // Everything up to our commit index is settled; say how far we match instead.
      this.#send({ type: 'appResp', to: m.from, index: this.log.committed });
      return;
    }
    if (this.log.matchTerm(m.index, m.logTerm)) {
      const lastNew = m.index + m.entries.length;
      const conflict = this.firstNewOrConflicting(m.entries);
      if (conflict !== 0) this.#appendToLog(m.entries.slice(conflict - m.index - 1));
      this.log.commitTo(Math.min(m.commit, lastNew));
      this.#send({ type: 'appResp', to: m.from, index: lastNew });
      return;
    }
    const hint = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    this.#send({
      type: 'appResp',
      to: m.from,
      index: m.index,
      reject: true,
      rejectHint: hint.index,
      logTerm: hint.term,
    });
  }

  #handleHeartbeat(m: Message): void {
    this.log.commitTo(m.commit);
    this.#send({ type: 'heartbeatResp', to: m.from, context: m.context });
  }

  #handleAppendResponse(m: Message): void {
    const progress = this.#progress.get(m.from);
    if (!progress) return;
    progress.recentActive = true;
    if (m.reject) {
      // The follower's hint says where it may agree; skip our own entries of later terms too.
      const hint =
        m.logTerm > 0 ? this.log.findConflictByTerm(m.rejectHint, m.logTerm).index : m.rejectHint;
      if (progress.maybeDecrTo(m.index, hint)) {
        if (progress.state === 'replicate') progress.becomeProbe();
        this.#sendAppend(m.from, true);
      }
      return;
    }
    if (!progress.maybeUpdate(m.index)) return;
    const caughtUp =
      progress.state === 'probe' ||
      (progress.state === 'snapshot' && progress.match >= progress.pendingSnapshot);
    if (caughtUp) progress.becomeReplicate();
    else if (progress.state === 'replicate') progress.inflights.freeLE(m.index);
    if (m.from === this.#leadTransferee && progress.match === this.log.lastIndex()) {
      this.#send({ type: 'timeoutNow', to: m.from });
    }
    if (this.#maybeCommit()) {
      this.#broadcastAppend();
      return;
    }
    let sent = false;
    while (this.#sendAppend(m.from, false)) sent = true; // keep the window full
    // A follower that caught up after the commit was broadcast still needs to hear of it.
    if (!sent && progress.sentCommit < this.log.committed) this.#sendAppend(m.from, true);
  }

  #handleHeartbeatResponse(m: Message): void {
    const progress = this.#progress.get(m.from);
    if (!progress) return;
    progress.recentActive = true;
    // The follower is alive: resume a paused probe, and reopen a window whose appends (or
    // their answers) were lost, or replication to it would stall for good.
    progress.probeSent = false;
    if (progress.state === 'replicate' && progress.inflights.full())
      progress.inflights.freeFirstOne();
    if (progress.match < this.log.lastIndex()) this.#sendAppend(m.from, true);
    if (m.context !== 0) this.#confirmRound(m.context, m.from);
  }

  /** Queues `m` from this node, in `term` (our own unless said; none for termless requests). */
  #send(fields: MessageFields, term = this.term): void {
    invariant(!isLocalMessage(fields.type), () => `local message ${fields.type} cannot be sent`);
    this.#messages.push(message(fields, this.id, isTermless(fields.type) ? 0 : term));
  }
}
