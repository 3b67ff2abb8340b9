import type { LogStorage } from '../storage/log-storage.ts';
import { invariant } from './invariant.ts';
import { RaftLog } from './log.ts';
import { Progress } from './progress.ts';
import { majorityIndex, voteResult } from './quorum.ts';
import type { RandomSource } from './random.ts';
import type { Ready, SoftState } from './ready.ts';
import {
  type Entry,
  type HardState,
  hardStateEquals,
  isLocalMessage,
  type Message,
  message,
  NONE,
  type NodeId,
  type Role,
} from './types.ts';

export interface RaftConfig {
  /** This replica's id (never `NONE`). */
  readonly id: NodeId;
  /** The voting members, this one included. */
  readonly voters: readonly NodeId[];
  readonly storage: LogStorage;
  readonly random: RandomSource;
  /** Ticks without hearing a leader before campaigning; randomized in [n, 2n). */
  readonly electionTicks: number;
  /** Ticks between a leader's heartbeats; well below `electionTicks`. */
  readonly heartbeatTicks: number;
  /** Soft limit on the bytes of entries in one append message (one entry always fits). */
  readonly maxBytesPerAppend?: number;
  /** Appends in flight to one follower in the replicate state. */
  readonly maxInflightAppends?: number;
  /** Limit on the bytes of committed entries handed out by one `Ready`. */
  readonly maxApplyBytes?: number;
  /** Index already applied by the host's state machine (on restart). */
  readonly applied?: number;
  /** Forward a follower's proposals to the leader, instead of refusing them. */
  readonly forwardProposals?: boolean;
}

/**
 * What became of a proposal. `appended`: in the leader's log at these indexes (committed
 * only if that entry of that term is later applied; a new leader may overwrite it).
 * `forwarded`: sent to the leader; the host learns its fate only by seeing it applied.
 * `refused`: not taken; `leader` names the leader when one is known.
 */
export type ProposeResult =
  | {
      readonly kind: 'appended';
      readonly term: number;
      readonly firstIndex: number;
      readonly lastIndex: number;
    }
  | { readonly kind: 'forwarded'; readonly leader: NodeId }
  | {
      readonly kind: 'refused';
      readonly reason: 'no-leader' | 'not-leader';
      readonly leader: NodeId;
    };

const DEFAULT_MAX_BYTES_PER_APPEND = 1 << 20;
const DEFAULT_MAX_INFLIGHT_APPENDS = 256;
const DEFAULT_MAX_APPLY_BYTES = 64 << 20;
const EMPTY_DATA = new Uint8Array(0);

/**
 * One replica's Raft state machine. It does no I/O, reads no clock and draws randomness
 * only from the injected source: the host calls `tick()`, `step(message)` and
 * `propose(data)`, then takes `ready()`, does what it says (see `Ready`), and calls
 * `advance()`.
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

  readonly #voters: readonly NodeId[];
  readonly #random: RandomSource;
  readonly #electionTicks: number;
  readonly #heartbeatTicks: number;
  readonly #maxBytesPerAppend: number;
  readonly #maxInflightAppends: number;
  readonly #maxApplyBytes: number;
  readonly #forwardProposals: boolean;

  #progress = new Map<NodeId, Progress>();
  #votes = new Map<NodeId, boolean>();
  #electionElapsed = 0;
  #heartbeatElapsed = 0;
  #randomizedElectionTimeout = 0;
  #messages: Message[] = [];
  #stepRole: (m: Message) => void = this.#stepFollower;
  #tickRole: () => void = this.#tickElection;

  #prevHardState: HardState;
  #prevSoftState: SoftState;
  #readyOutstanding = false;

  constructor(config: RaftConfig) {
    invariant(config.id !== NONE, 'a replica id must not be NONE');
    invariant(config.heartbeatTicks < config.electionTicks, 'heartbeats must beat elections');
    this.id = config.id;
    this.#voters = [...config.voters];
    this.#random = config.random;
    this.#electionTicks = config.electionTicks;
    this.#heartbeatTicks = config.heartbeatTicks;
    this.#maxBytesPerAppend = config.maxBytesPerAppend ?? DEFAULT_MAX_BYTES_PER_APPEND;
    this.#maxInflightAppends = config.maxInflightAppends ?? DEFAULT_MAX_INFLIGHT_APPENDS;
    this.#maxApplyBytes = config.maxApplyBytes ?? DEFAULT_MAX_APPLY_BYTES;
    this.#forwardProposals = config.forwardProposals ?? true;

    this.log = new RaftLog(config.storage, config.applied ?? 0);
    const hardState = config.storage.hardState();
    this.term = hardState.term;
    this.vote = hardState.vote;
    this.#prevHardState = hardState;
    this.#becomeFollower(this.term, NONE);
    this.#prevSoftState = this.softState();
  }

  /** The voting members. */
  get voters(): readonly NodeId[] {
    return this.#voters;
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
    if (m.term > this.term) {
      // §5.1: a higher term makes anyone a follower. Only an append or heartbeat names the
      // leader of that term; a vote request or a response does not.
      const fromLeader = m.type === 'app' || m.type === 'heartbeat';
      this.#becomeFollower(m.term, fromLeader ? m.from : NONE);
    } else if (m.term < this.term && m.term !== 0) {
      this.#answerStaleTerm(m);
      return;
    }

    switch (m.type) {
      case 'hup':
        if (this.role !== 'leader') this.#campaign();
        return;
      case 'vote':
        this.#handleVoteRequest(m);
        return;
      default:
        this.#stepRole(m);
    }
  }

  /** Proposes new entries, one per `data`; see `ProposeResult` for what may become of them. */
  propose(data: readonly Uint8Array[]): ProposeResult {
    if (this.role === 'leader') {
      const firstIndex = this.log.lastIndex() + 1;
      this.#appendEntries(data);
      this.#broadcastAppend();
      return { kind: 'appended', term: this.term, firstIndex, lastIndex: this.log.lastIndex() };
    }
    if (this.lead === NONE) return { kind: 'refused', reason: 'no-leader', leader: NONE };
    if (!this.#forwardProposals)
      return { kind: 'refused', reason: 'not-leader', leader: this.lead };
    const entries = data.map((d): Entry => ({ term: 0, index: 0, type: 'normal', data: d }));
    this.#send(message({ type: 'prop', to: this.lead, entries }));
    return { kind: 'forwarded', leader: this.lead };
  }

  hasReady(): boolean {
    return (
      this.#messages.length > 0 ||
      this.log.hasUnstableEntries() ||
      this.log.hasNextCommittedEntries() ||
      !hardStateEquals(this.hardState(), this.#prevHardState) ||
      this.lead !== this.#prevSoftState.lead ||
      this.role !== this.#prevSoftState.role
    );
  }

  /** Collects what the host must do; see `Ready` for the order. One at a time. */
  ready(): Ready {
    invariant(!this.#readyOutstanding, 'ready() called again before advance()');
    this.#readyOutstanding = true;
    const hardState = this.hardState();
    const softState = this.softState();
    const ready: Ready = {
      softState:
        softState.lead !== this.#prevSoftState.lead || softState.role !== this.#prevSoftState.role
          ? softState
          : undefined,
      hardState: hardStateEquals(hardState, this.#prevHardState) ? undefined : hardState,
      entries: this.log.unstableEntries(),
      messages: this.#messages,
      committedEntries: this.log.nextCommittedEntries(this.#maxApplyBytes),
    };
    this.#messages = [];
    if (ready.softState) this.#prevSoftState = ready.softState;
    return ready;
  }

  /** The host has done everything `ready` asked. */
  advance(ready: Ready): void {
    invariant(this.#readyOutstanding, 'advance() without ready()');
    this.#readyOutstanding = false;
    if (ready.hardState) this.#prevHardState = ready.hardState;
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

  // ---- roles -----------------------------------------------------------------------------

  #becomeFollower(term: number, lead: NodeId): void {
    this.#reset(term);
    this.role = 'follower';
    this.lead = lead;
    this.#stepRole = this.#stepFollower;
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
    for (const id of this.#voters) {
      const progress = new Progress(next, this.#maxInflightAppends);
      if (id === this.id) progress.becomeReplicate();
      this.#progress.set(id, progress);
    }
    // §5.4.2 and §8: an entry of its own term lets the leader commit earlier terms' entries.
    this.#appendEntries([EMPTY_DATA]);
  }

  #reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.#electionElapsed = 0;
    this.#heartbeatElapsed = 0;
    this.#randomizedElectionTimeout = this.#electionTicks + this.#random.int(this.#electionTicks);
    this.#votes.clear();
    this.#progress.clear();
  }

  #tickElection(): void {
    this.#electionElapsed++;
    if (this.#isVoter() && this.#electionElapsed >= this.#randomizedElectionTimeout) {
      this.#electionElapsed = 0;
      this.campaign();
    }
  }

  #tickHeartbeat(): void {
    this.#heartbeatElapsed++;
    if (this.#heartbeatElapsed >= this.#heartbeatTicks) {
      this.#heartbeatElapsed = 0;
      this.#broadcastHeartbeat();
    }
  }

  #isVoter(): boolean {
    return this.#voters.includes(this.id);
  }

  #campaign(): void {
    if (!this.#isVoter()) return;
    this.#becomeCandidate();
    this.#votes.set(this.id, true);
    if (voteResult(this.#voters, this.#votes) === 'won') {
      this.#becomeLeader();
      return;
    }
    const index = this.log.lastIndex();
    const logTerm = this.log.lastTerm();
    for (const id of this.#voters) {
      if (id !== this.id) this.#send(message({ type: 'vote', to: id, index, logTerm }));
    }
  }

  #handleVoteRequest(m: Message): void {
    const grant = this.voteIsAvailableFor(m.from) && this.candidateIsUpToDate(m);
    if (grant) {
      this.vote = m.from;
      this.#electionElapsed = 0;
    }
    this.#send(message({ type: 'voteResp', to: m.from, reject: !grant }));
  }

  /**
   * A message from an older term. An append or heartbeat comes from a deposed leader: answer
   * so it learns the newer term and steps down. A vote request gets a refusal carrying our
   * term. Anything else is dropped.
   */
  #answerStaleTerm(m: Message): void {
    if (m.type === 'app' || m.type === 'heartbeat') {
      this.#send(message({ type: 'appResp', to: m.from }));
    } else if (m.type === 'vote') {
      this.#send(message({ type: 'voteResp', to: m.from, reject: true }));
    }
  }

  #stepFollower(m: Message): void {
    switch (m.type) {
      case 'prop':
        if (this.lead !== NONE && this.#forwardProposals) {
          this.#send(message({ type: 'prop', to: this.lead, entries: m.entries }));
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
      default:
        return;
    }
  }

  #stepCandidate(m: Message): void {
    switch (m.type) {
      case 'app':
      case 'heartbeat':
        // A leader of our term exists: the election is lost (§5.2).
        this.#becomeFollower(m.term, m.from);
        this.#stepFollower(m);
        return;
      case 'voteResp':
        this.#votes.set(m.from, !m.reject);
        switch (voteResult(this.#voters, this.#votes)) {
          case 'won':
            this.#becomeLeader();
            this.#broadcastAppend();
            return;
          case 'lost':
            this.#becomeFollower(this.term, NONE);
            return;
          default:
            return;
        }
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
        this.#appendEntries(m.entries.map((entry) => entry.data));
        this.#broadcastAppend();
        return;
      case 'appResp':
        this.#handleAppendResponse(m);
        return;
      case 'heartbeatResp':
        this.#handleHeartbeatResponse(m);
        return;
      default:
        return;
    }
  }

  // ---- replication -----------------------------------------------------------------------

  #appendEntries(data: readonly Uint8Array[]): void {
    let index = this.log.lastIndex();
    const entries: Entry[] = new Array(data.length);
    for (let i = 0; i < data.length; i++) {
      entries[i] = { term: this.term, index: ++index, type: 'normal', data: data[i] };
    }
    this.log.truncateAndAppend(entries);
    this.#progress.get(this.id)?.maybeUpdate(index);
    this.#maybeCommit();
  }

  #maybeCommit(): boolean {
    const index = majorityIndex(this.#voters, (id) => this.#progress.get(id)?.match ?? 0);
    if (index > this.log.committed && this.mayCommitByCounting(index)) {
      return this.log.commitTo(index);
    }
    return false;
  }

  #broadcastAppend(): void {
    for (const id of this.#voters) if (id !== this.id) this.#sendAppend(id, true);
  }

  #broadcastHeartbeat(): void {
    for (const id of this.#voters) {
      if (id === this.id) continue;
      const progress = this.#progress.get(id) as Progress;
      // Only what the follower is known to hold may be committed on it.
      const commit = Math.min(progress.match, this.log.committed);
      progress.sentCommit = Math.max(progress.sentCommit, commit);
      this.#send(message({ type: 'heartbeat', to: id, commit }));
    }
  }

  /**
   * Sends `to` the entries it lacks, if its progress allows. An empty append still goes out
   * when `sendIfEmpty` (to probe, or to carry a new commit index). Returns whether one went.
   */
  #sendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const progress = this.#progress.get(to) as Progress;
    if (progress.isPaused()) return false;
    const prevIndex = progress.next - 1;
    const prevTerm = this.log.term(prevIndex);
    invariant(
      prevTerm !== undefined,
      () => `no term for ${prevIndex}: snapshots are not supported yet`,
    );
    const entries = this.log.slice(
      progress.next,
      this.log.lastIndex() + 1,
      this.#maxBytesPerAppend,
    );
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.#send(
      message({
        type: 'app',
        to,
        index: prevIndex,
        logTerm: prevTerm,
        entries,
        commit: this.log.committed,
      }),
    );
    progress.sentCommit = Math.max(progress.sentCommit, this.log.committed);
    if (entries.length > 0) progress.sentEntries(entries[entries.length - 1].index);
    else if (progress.state === 'probe') progress.probeSent = true;
    return true;
  }

  #handleAppend(m: Message): void {
    if (m.index < this.log.committed) {
      // Everything up to our commit index is settled; say how far we match instead.
      this.#send(message({ type: 'appResp', to: m.from, index: this.log.committed }));
      return;
    }
    if (this.log.matchTerm(m.index, m.logTerm)) {
      const lastNew = m.index + m.entries.length;
      const conflict = this.firstNewOrConflicting(m.entries);
      if (conflict !== 0) this.log.truncateAndAppend(m.entries.slice(conflict - m.index - 1));
      this.log.commitTo(Math.min(m.commit, lastNew));
      this.#send(message({ type: 'appResp', to: m.from, index: lastNew }));
      return;
    }
    const hint = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    this.#send(
      message({
        type: 'appResp',
        to: m.from,
        index: m.index,
        reject: true,
        rejectHint: hint.index,
        logTerm: hint.term,
      }),
    );
  }

  #handleHeartbeat(m: Message): void {
    this.log.commitTo(m.commit);
    this.#send(message({ type: 'heartbeatResp', to: m.from }));
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
    if (progress.state === 'probe') progress.becomeReplicate();
    else progress.inflights.freeLE(m.index);
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
  }

  #send(m: Message): void {
    invariant(!isLocalMessage(m.type), () => `local message ${m.type} cannot be sent`);
    // Forwarded proposals carry no term: the leader of any term may take them.
    const term = m.type === 'prop' ? 0 : this.term;
    this.#messages.push({ ...m, from: this.id, term });
  }
}
