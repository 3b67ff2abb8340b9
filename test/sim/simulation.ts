import type { ReadMode } from '../../src/raft/config.ts';
import { InvariantError } from '../../src/raft/invariant.ts';
import { type ConfChange, encodeConfState } from '../../src/raft/membership.ts';
import { SeededRandom } from '../../src/raft/random.ts';
import type { NodeId } from '../../src/raft/types.ts';
import { type HostOptions, type NodeFactory, ReplicaHost } from '../support/replica-host.ts';
import { ClientWorkload } from './clients.ts';
import { SimClocks } from './clocks.ts';
import { InvariantChecker, SafetyViolation, type ViolationKind } from './invariants.ts';
import { RELIABLE, SimNetwork } from './network.ts';
import { nextReplacementStep, type Replacement, replacementCommitted } from './replacement.ts';
import { type SnapshotTransfer, SnapshotTransfers } from './snapshot-transfers.ts';

export interface SimulationOptions {
  readonly seed: number;
  readonly nodes: 3 | 5;
  readonly steps: number;
  /** Builds each node: a test passes a subclass to plant a bug. */
  readonly factory?: NodeFactory;
  /** Check-quorum on the nodes (default on); leases are only sound with it. */
  readonly checkQuorum?: boolean;
  /**
   * How fast node clocks may run against real time: `within` the lease's drift margin
   * (the default; the lease must then be safe), or `beyond` it (a lease may then be unsafe).
   */
  readonly clockDrift?: 'within' | 'beyond';
  /**
   * A replica that loses its state comes back under its old identity, as a voter with an empty
   * log, instead of as a new incarnation: the amnesia bug the simulator must catch.
   */
  readonly amnesiaKeepsIdentity?: boolean;
  /**
   * Membership churn (replicas losing their state, moves, changes asked at random); on by
   * default. A run aimed at another fault can turn it off to spend its steps there.
   */
  readonly membershipChanges?: boolean;
  /** Every append carries one entry (otherwise some runs do): slow catch-ups, entry by entry. */
  readonly oneEntryPerAppend?: boolean;
  /** Called every `PROGRESS_EVERY` steps, for long runs. */
  readonly onProgress?: (steps: number) => void;
}

export interface SimulationResult {
  readonly seed: number;
  readonly nodes: number;
  readonly steps: number;
  /** The step budget the run was given: with the seed, what replays it. */
  readonly budget: number;
  readonly ticks: number;
  readonly elections: number;
  /** Highest index committed (entries committed in all, no-ops included). */
  readonly committed: number;
  readonly writesAcked: number;
  readonly readsServed: number;
  readonly readsFailed: number;
  readonly checks: number;
  readonly crashes: number;
  readonly pauses: number;
  readonly snapshotsTaken: number;
  readonly snapshotsSent: number;
  /** Replicas that lost their state, and replacements by new incarnations completed. */
  readonly amnesias: number;
  readonly moves: number;
  /** Membership changes asked of a leader at random (some refused). */
  readonly changes: number;
  /** Ongaro's 2015 membership scenario staged (see `#splitChange`). */
  readonly splitChanges: number;
  readonly replacements: number;
  readonly partitions: number;
  readonly transfers: number;
  readonly heals: number;
  readonly rejoins: number;
  /** The first property found broken, with the step it broke at; undefined on a clean run. */
  readonly violation?: {
    readonly step: number;
    readonly kind: ViolationKind;
    readonly message: string;
  };
}

const PROGRESS_EVERY = 100_000;
const ELECTION_TICKS = 10;
const TICK_MS = 10;
/** The lease lasts (10 - 1) × 10 - 20 = 70 ms: safe while a leader's clock runs at >= 0.78. */
const LEASE_DRIFT_MARGIN_MS = 20;
/** After the network heals, a leader must commit a new write and serve a read within this. */
const LIVENESS_TICKS = 20 * ELECTION_TICKS;
const PROPOSAL_BYTES = 4;
/** Small limits, so that flow control bites and the checks on a leader's memory mean something. */
const MAX_INFLIGHT_APPENDS = 4;
const MAX_UNCOMMITTED_BYTES = 64 * PROPOSAL_BYTES;

type Phase = 'chaos' | 'calm' | 'rejoin';

/**
 * A seeded run of a whole Raft group. It moves through three kinds of phase:
 * - chaos: messages dropped, duplicated, delayed and reordered; symmetric and one-way
 *   partitions; nodes crashing (losing all they had not persisted) and restarting; nodes
 *   paused as by a long garbage collection (their clocks run on); leaders cut off part way
 *   through their first appends; leadership transfers;
 * - calm: every node up, the network reliable; within `LIVENESS_TICKS` a leader must commit a
 *   write made after the calm began, and a read must be served;
 * - rejoin: once a leader is settled, one follower is cut off for several election timeouts
 *   and comes back: the leader must stay the leader, in the same term (pre-vote's promise).
 * Clients write, and read by ReadIndex and by lease, on any node throughout; every read is
 * checked against the acknowledged writes. Node clocks run at their own rates. A step is one
 * node tick, one message delivered, or one client request; the invariant checker runs on
 * every `Ready`, so after every step. The same seed replays the same run exactly.
 */
export class Simulation {
  readonly #options: SimulationOptions;
  readonly #random: SeededRandom;
  readonly #network: SimNetwork;
  readonly #snapshots: SnapshotTransfers;
  readonly #clocks = new SimClocks();
  readonly #checker = new InvariantChecker(() => this.#group().map((host) => host.node));
  readonly #clients = new ClientWorkload((term) => {
    const leader = this.#group().find(
      (h) => !this.#down.has(h.id) && h.node.role === 'leader' && h.node.term > term,
    );
    return leader?.id;
  });
  /** The replicas by id: a new incarnation gets a new id; a replica that lost its state is gone. */
  readonly #hosts = new Map<NodeId, ReplicaHost>();
  readonly #hostOptions: HostOptions;
  #nextId: number;
  /** The bootstrap voters, and the replacement of a replica that lost its state, if one is under way. */
  readonly #bootstrap: readonly NodeId[];
  #replacement: Replacement | undefined;
  /** Crashed nodes, with the tick each comes back at. */
  readonly #down = new Map<NodeId, number>();
  #step = 0;
  #now = 0;
  #nextProposal = 1;
  #phase: Phase = 'chaos';
  /** A partition due at a given step (cutting a new leader off part way through its work). */
  #pendingPartition: { side: NodeId[]; atStep: number } | undefined;
  /** A new leader to ask for a membership change once its `Ready` is done. */
  #changeSoon: NodeId | undefined;
  /** Set by `#splitChange`: the voter the next new leader is asked to remove, unreachable. */
  #removeAtElection: { victim: NodeId; oldLeader: NodeId } | undefined;
  /** Partitions due at a given tick, in chaos. */
  #scheduled: { atTick: number; side: NodeId[] }[] = [];
  /** Chance of a fault per tick in this chaos phase: some phases are turbulent. */
  #faultRate = 0;
  /** Chance of a client write per tick: some chaos phases are nearly idle. */
  #writeRate = 0.5;
  #stats = {
    elections: 0,
    crashes: 0,
    pauses: 0,
    snapshotsTaken: 0,
    snapshotsSent: 0,
    amnesias: 0,
    moves: 0,
    changes: 0,
    splitChanges: 0,
    replacements: 0,
    partitions: 0,
    transfers: 0,
    heals: 0,
    rejoins: 0,
  };
  /** During calm: the first write and read ids that prove progress, and the tick they are due by. */
  #calm:
    | { firstProposal: number; firstRead: number; deadline: number; wrote: boolean; read: boolean }
    | undefined;

  constructor(options: SimulationOptions) {
    this.#options = options;
    this.#random = new SeededRandom(options.seed);
    this.#network = new SimNetwork(new SeededRandom(options.seed ^ 0x5bd1e995));
    this.#snapshots = new SnapshotTransfers(new SeededRandom(options.seed ^ 0x2545f491));
    const bootstrap = Array.from({ length: options.nodes }, (_, i) => i + 1);
    this.#bootstrap = bootstrap;
    this.#nextId = options.nodes + 1;
    // Some runs send one entry per append, so that a leader's entries of different terms
    // reach followers in separate messages (the Figure 8 interleavings need that).
    const oneEntry = 16 + PROPOSAL_BYTES;
    const maxBytesPerAppend = options.oneEntryPerAppend
      ? oneEntry
      : this.#random.pick([oneEntry, oneEntry, 64, 1 << 20]);
    this.#hostOptions = {
      voters: bootstrap,
      electionTicks: ELECTION_TICKS,
      heartbeatTicks: 1,
      maxBytesPerAppend,
      maxInflightAppends: MAX_INFLIGHT_APPENDS,
      maxUncommittedBytes: MAX_UNCOMMITTED_BYTES,
      checkQuorum: options.checkQuorum ?? true,
      tickMs: TICK_MS,
      leaseDriftMarginMs: LEASE_DRIFT_MARGIN_MS,
      clock: (node) => this.#clocks.now(node),
      seed: options.seed,
      factory: options.factory,
    };
    for (const id of bootstrap) this.#addReplica(id, bootstrap);
  }

  /**
   * A replica on its own clock: a bootstrap member knows the first voters; a new incarnation
   * knows none and waits to be added.
   */
  #addReplica(id: NodeId, voters: readonly NodeId[]): ReplicaHost {
    // Within the margin: 0.85 to 1.15. Beyond it: 0.3 to 0.5, leases outlive the stickiness.
    const beyond = this.#options.clockDrift === 'beyond';
    const rate = beyond ? 0.3 + this.#random.int(21) / 100 : 0.85 + this.#random.int(31) / 100;
    this.#clocks.setRate(id, rate);
    const host = new ReplicaHost(id, { ...this.#hostOptions, voters });
    this.#hosts.set(id, host);
    return host;
  }

  #host(id: NodeId): ReplicaHost {
    const host = this.#hosts.get(id);
    if (!host) throw new Error(`no replica ${id}`);
    return host;
  }

  /** Every replica that exists now, crashed ones included. */
  #group(): ReplicaHost[] {
    return [...this.#hosts.values()];
  }

  get #ids(): NodeId[] {
    return [...this.#hosts.keys()];
  }

  run(): SimulationResult {
    try {
      while (this.#step < this.#options.steps) this.#runPhase();
    } catch (error) {
      if (!(error instanceof Error)) throw error;
      const kind =
        error instanceof SafetyViolation
          ? error.kind
          : error instanceof InvariantError
            ? 'core-invariant'
            : 'crash';
      return this.#result({ step: this.#step, kind, message: `${error.name}: ${error.message}` });
    }
    return this.#result(undefined);
  }

  #runPhase(): void {
    const draw = this.#random.int(20);
    this.#phase = draw < 7 ? 'calm' : draw < 9 ? 'rejoin' : 'chaos';
    if (this.#phase === 'chaos') this.#runChaos();
    else if (this.#phase === 'calm') this.#runCalm();
    else this.#runRejoin();
    this.#calm = undefined;
    this.#pendingPartition = undefined;
    this.#scheduled = [];
    this.#removeAtElection = undefined;
  }

  #runChaos(): void {
    const r = this.#random;
    this.#network.faults = {
      drop: r.pick([0, 0.02, 0.1, 0.3]),
      duplicate: r.pick([0, 0.02, 0.1]),
      delay: r.pick([0, 0.1, 0.3]),
      maxDelay: 1 + r.int(2 * ELECTION_TICKS),
    };
    this.#faultRate = r.pick([0.02, 0.05, 0.2]);
    // Idle stretches matter: only then can a follower that stops hearing the leader still be
    // as up to date as the others, and win an election while the old leader holds a lease.
    this.#writeRate = r.pick([0.5, 0.1, 0.02]);
    const length = 50 + r.int(300);
    for (let t = 0; t < length && this.#running(); t++) {
      this.#tick();
      this.#maybeInjectFault();
      for (const due of this.#scheduled.filter((s) => s.atTick <= this.#now)) {
        // An empty side heals the network.
        if (due.side.length === 0) this.#network.heal();
        else this.#network.partition(due.side, this.#ids);
      }
      this.#scheduled = this.#scheduled.filter((s) => s.atTick > this.#now);
    }
  }

  #runCalm(): void {
    this.#settle();
    this.#writeRate = 0.5;
    this.#calm = {
      firstProposal: this.#nextProposal,
      firstRead: this.#clients.nextRead,
      deadline: this.#now + LIVENESS_TICKS,
      wrote: false,
      read: false,
    };
    for (let t = 0; t < LIVENESS_TICKS + 10 && this.#running(); t++) {
      this.#tick();
      const calm = this.#calm;
      if (this.#now >= calm.deadline && !(calm.wrote && calm.read)) {
        throw new SafetyViolation(
          'liveness',
          `within ${LIVENESS_TICKS} ticks of the network healing, ${calm.wrote ? '' : 'no write committed '}${calm.read ? '' : 'no read served '}(leaders: ${this.#leaders() || 'none'})`,
        );
      }
    }
  }

  /**
   * A follower cut off and brought back must not unseat a settled leader: pre-vote with
   * check-quorum's stickiness promise that (pre-vote alone does not, when the follower's log
   * is as up to date as the others', so without check-quorum there is nothing to watch).
   */
  #runRejoin(): void {
    this.#settle();
    if (this.#options.checkQuorum === false) return;
    const leader = this.#waitForLeader(LIVENESS_TICKS);
    for (let t = 0; t < 3 * ELECTION_TICKS && this.#running(); t++) this.#tick();
    if (!this.#running()) return;
    const settled = this.#hosts.get(leader)?.node;
    // Changed while settling (a restarted node's term, or a move completing): nothing to test.
    if (settled?.role !== 'leader') return;
    const term = settled.term;
    // Cut off a follower the group can spare: the leader must keep a majority of live voters.
    const live = settled.voters.filter((id) => this.#hosts.has(id) && !this.#down.has(id));
    const follower = this.#random.pick(this.#ids.filter((id) => id !== leader));
    const remaining = live.filter((id) => id !== follower).length;
    if (remaining <= settled.voters.length / 2) return;
    this.#network.partition([follower], this.#ids);
    this.#stats.rejoins++;
    for (let t = 0; t < 6 * ELECTION_TICKS && this.#running(); t++) this.#tick();
    this.#network.heal();
    for (let t = 0; t < 3 * ELECTION_TICKS && this.#running(); t++) {
      this.#tick();
      if (settled.role !== 'leader' || settled.term !== term) {
        throw new SafetyViolation(
          'disruption',
          `node ${follower}, cut off and back, unseated leader ${leader} of term ${term} (now ${this.#leaders() || 'no leader'})`,
        );
      }
    }
  }

  /** Heals everything: all nodes up and awake, the network reliable. */
  #settle(): void {
    this.#network.heal();
    this.#network.faults = RELIABLE;
    this.#clocks.resumeAll();
    for (const id of [...this.#down.keys()]) this.#restart(id);
    this.#stats.heals++;
  }

  #waitForLeader(withinTicks: number): NodeId {
    for (let t = 0; t < withinTicks; t++) {
      const leader = this.#group().find((h) => h.node.role === 'leader');
      if (leader) return leader.id;
      this.#tick();
    }
    throw new SafetyViolation(
      'liveness',
      `no leader within ${withinTicks} ticks of the network healing`,
    );
  }

  #running(): boolean {
    return this.#step < this.#options.steps;
  }

  #maybeInjectFault(): void {
    const r = this.#random;
    if (!r.chance(this.#faultRate)) return;
    const live = this.#ids.filter((id) => !this.#down.has(id));
    const leader = this.#group().find((h) => !this.#down.has(h.id) && h.node.role === 'leader')?.id;
    switch (r.int(14)) {
      case 0:
        if (live.length > 0) this.#crash(r.pick(live));
        return;
      case 1:
        // Leaders are where the interesting interleavings start.
        if (leader !== undefined) this.#crash(leader);
        return;
      case 2:
        if (this.#down.size > 0) this.#restart(r.pick([...this.#down.keys()]));
        return;
      case 3: {
        const side = this.#ids.filter(() => r.chance(0.5));
        this.#network.partition(side, this.#ids);
        this.#stats.partitions++;
        return;
      }
      case 4:
        if (leader !== undefined) {
          this.#network.partition([leader], this.#ids);
          this.#stats.partitions++;
        }
        return;
      case 5:
        this.#network.cutOneWay(r.pick(this.#ids), r.pick(this.#ids));
        this.#stats.partitions++;
        return;
      case 6: {
        // A long garbage-collection pause: a leader's long enough for the others to move on.
        const victim = leader !== undefined && r.chance(0.7) ? leader : r.pick(this.#ids);
        const ticks =
          victim === leader ? (2 + r.int(3)) * ELECTION_TICKS : 1 + r.int(3 * ELECTION_TICKS);
        this.#clocks.pause(victim, this.#clocks.realMs + ticks * TICK_MS);
        this.#stats.pauses++;
        return;
      }
      case 7:
        if (leader !== undefined) {
          this.#host(leader).node.transferLeadership(r.pick(this.#ids));
          this.#afterStep(this.#host(leader));
          this.#stats.transfers++;
        }
        return;
      case 8:
        // Split brain in the making (a bridge, in a quiet spell): one follower loses the
        // leader but not the others, so it times out and wins through them, about when the
        // leader, lease in hand, is cut off from everyone.
        if (leader !== undefined) {
          this.#network.cut(leader, r.pick(this.#ids.filter((id) => id !== leader)));
          this.#writeRate = 0.02;
          this.#scheduled.push({
            atTick: this.#now + ELECTION_TICKS - 2 + r.int(ELECTION_TICKS),
            side: [leader],
          });
          this.#stats.partitions++;
        }
        return;
      case 9:
        if (this.#churn()) this.#loseState(r.pick(live));
        return;
      case 10:
        if (this.#churn())
          this.#move(leader === undefined ? undefined : this.#host(leader).node.voters);
        return;
      case 11:
        if (this.#churn() && leader !== undefined) this.#changeMembership(this.#host(leader));
        return;
      case 12:
        if (this.#churn() && leader !== undefined) this.#splitChange(this.#host(leader));
        return;
      default:
        this.#network.heal();
    }
  }

  /**
   * A replica's process and disk are gone (persistence is off, or the disk died). It comes back
   * as a new incarnation, a new replica id, and the group replaces the old one with it. Only
   * one at a time, and only while every other voter is up, so a majority's state survives.
   */
  #loseState(id: NodeId | undefined): void {
    if (id === undefined || this.#replacement || this.#down.size > 0) return;
    this.#hosts.delete(id);
    this.#clients.crashed(id);
    this.#stats.amnesias++;
    if (this.#options.amnesiaKeepsIdentity) {
      this.#addReplica(id, this.#bootstrap);
      this.#checker.onRestart(id);
      return;
    }
    const fresh = this.#nextId++;
    this.#addReplica(fresh, []);
    this.#replacement = { old: id, fresh, sameNode: true };
  }

  /**
   * Rebalancing moves a replica to another node: a new replica is added, promoted, and the
   * old one, alive and well, removed, while the chaos goes on.
   */
  #move(voters: readonly NodeId[] | undefined): void {
    if (!voters || this.#replacement || voters.length === 0) return;
    const old = this.#random.pick(voters);
    const fresh = this.#nextId++;
    this.#addReplica(fresh, []);
    this.#replacement = { old, fresh, sameNode: false };
    this.#stats.moves++;
  }

  /**
   * An operator's change, asked of the leader at a random moment (it may be refused): grow
   * the group by a learner, promote a learner, or shrink it, between `nodes` and `nodes + 2`
   * voters.
   */
  #changeMembership(leader: ReplicaHost, planned?: ConfChange): void {
    const { voters, learners } = leader.node;
    const size = this.#options.nodes;
    const r = this.#random;
    let change = planned;
    const choice = planned ? -1 : r.int(3);
    if (choice === 0 && voters.length + learners.length < size + 2) {
      const fresh = this.#nextId++;
      this.#addReplica(fresh, []);
      change = { type: 'add-learner', id: fresh };
    } else if (choice === 1 && learners.length > 0) {
      change = { type: 'add-voter', id: r.pick(learners) };
    } else if (choice === 2 && voters.length > size) {
      change = { type: 'remove', id: r.pick(voters) };
    }
    if (!change) return;
    leader.node.proposeConfChange(change);
    this.#afterStep(leader);
    this.#stats.changes++;
  }

  /**
   * Ongaro's single-server-change scenario of 2015, with random parts: the leader, cut off
   * from the other voters, appends the addition of a new replica, which only that replica
   * receives; the others elect a new leader, which is asked at once to remove a voter that it
   * cannot reach. A new leader that changes the configuration before its first entry commits
   * lets two disjoint majorities decide.
   */
  #splitChange(leader: ReplicaHost): void {
    const voters = leader.node.voters;
    if (this.#replacement || this.#down.size > 0 || voters.length < 4 || this.#removeAtElection)
      return;
    const fresh = this.#nextId++;
    this.#addReplica(fresh, []);
    for (const id of voters) if (id !== leader.id) this.#network.cut(leader.id, id);
    const result = leader.node.proposeConfChange({ type: 'add-voter', id: fresh });
    this.#afterStep(leader);
    if (result.kind !== 'appended') {
      this.#hosts.delete(fresh);
      return;
    }
    const victim = this.#random.pick(voters.filter((id) => id !== leader.id));
    this.#removeAtElection = { victim, oldLeader: leader.id };
    this.#scheduled.push({
      atTick: this.#now + (3 + this.#random.int(3)) * ELECTION_TICKS,
      side: [],
    });
    this.#stats.splitChanges++;
  }

  #churn(): boolean {
    return this.#options.membershipChanges ?? true;
  }

  /** The host side of a replacement: ask the leader for the next change, until it is committed. */
  #driveReplacement(): void {
    const replacement = this.#replacement;
    if (!replacement) return;
    const leader = this.#group().find((h) => this.#awake(h.id) && h.node.role === 'leader');
    if (!leader) return;
    if (replacementCommitted(leader.node, replacement)) {
      this.#replacement = undefined;
      this.#stats.replacements++;
      // A moved replica's host stops it once its removal is committed.
      this.#hosts.delete(replacement.old);
      this.#down.delete(replacement.old);
      return;
    }
    const change = nextReplacementStep(leader.node, replacement);
    if (!change) return;
    leader.node.proposeConfChange(change);
    this.#afterStep(leader);
  }

  #awake(id: NodeId): boolean {
    return !this.#down.has(id) && !this.#clocks.isPaused(id);
  }

  #tick(): void {
    this.#now++;
    this.#clocks.realMs += TICK_MS;
    for (const [id, at] of this.#down) if (at <= this.#now) this.#restart(id);
    for (const id of this.#clocks.takeResumed()) this.#onResume(id);
    for (const host of this.#group()) {
      if (!this.#awake(host.id)) continue;
      host.node.tick();
      this.#afterStep(host);
    }
    if (this.#random.chance(this.#writeRate)) this.#propose();
    if (this.#random.chance(0.5)) this.#read();
    if (this.#random.chance(0.05)) this.#compact();
    // Membership holds still while a rejoin is watched: a change may move leadership on purpose.
    if (this.#phase !== 'rejoin') this.#driveReplacement();
    for (const transfer of this.#snapshots.takeDue(this.#now)) this.#deliverSnapshot(transfer);
    let delivered = 0;
    for (let m = this.#network.takeDue(this.#now); m; m = this.#network.takeDue(this.#now)) {
      if (
        !this.#hosts.has(m.to) ||
        this.#down.has(m.to) ||
        !this.#network.connected(m.from, m.to)
      ) {
        continue;
      }
      if (this.#clocks.isPaused(m.to)) {
        this.#network.hold(m, this.#now + 1); // waits in the socket until the pause ends
        continue;
      }
      const host = this.#host(m.to);
      host.node.step(m);
      this.#afterStep(host);
      if (++delivered > 100_000)
        throw new SafetyViolation('message-storm', 'no quiet within one tick');
    }
    this.#checkLeaderMemory();
  }

  /** A node snapshots its state machine and compacts its log, keeping a few entries or none. */
  #compact(): void {
    const awake = this.#ids.filter((id) => this.#awake(id));
    if (awake.length === 0) return;
    this.#host(this.#random.pick(awake)).takeSnapshot(this.#random.int(20));
    this.#stats.snapshotsTaken++;
  }

  /** A snapshot streamed in: install it and report to the leader, or report it failed. */
  #deliverSnapshot({ message, data }: SnapshotTransfer): void {
    const sender = this.#hosts.get(message.from);
    const receiver = this.#hosts.get(message.to);
    if (this.#clocks.isPaused(message.to)) {
      this.#snapshots.start(message, data, this.#now);
      return;
    }
    const through =
      receiver !== undefined &&
      !this.#down.has(message.to) &&
      this.#network.connected(message.from, message.to) &&
      !this.#random.chance(this.#network.faults.drop);
    if (through) {
      receiver.receiveSnapshot(message.snapshot?.index ?? 0, data);
      receiver.node.step(message);
      this.#afterStep(receiver);
    }
    if (!sender || this.#down.has(message.from)) return;
    sender.node.reportSnapshot(message.to, through ? 'done' : 'failed');
    this.#afterStep(sender);
  }

  /**
   * A leader's memory for a follower stays bounded whatever the follower does: no more appends
   * tracked in flight to it than the window, and no more uncommitted bytes than the limit plus
   * one proposal, plus the one membership change it may have in flight (a change is not
   * refused for room, and takes effect when appended, so it is the leader's configuration).
   * (What sits on the wire is the transport's to bound: probes resent every heartbeat can pile
   * up behind a slow link.)
   */
  #checkLeaderMemory(): void {
    for (const host of this.#group()) {
      const leader = host.node;
      if (this.#down.has(host.id) || leader.role !== 'leader') continue;
      const uncommitted = leader.uncommittedBytes();
      const change = encodeConfState({ voters: leader.voters, learners: leader.learners });
      const bound = MAX_UNCOMMITTED_BYTES + 3 * PROPOSAL_BYTES + change.byteLength;
      if (uncommitted > bound) {
        throw new SafetyViolation(
          'uncommitted-bytes',
          `leader ${host.id} holds ${uncommitted} uncommitted bytes (limit ${MAX_UNCOMMITTED_BYTES}, bound ${bound})`,
        );
      }
      for (const id of this.#ids) {
        const inFlight = id === host.id ? 0 : (leader.progress(id)?.inflights.count ?? 0);
        if (inFlight > MAX_INFLIGHT_APPENDS) {
          throw new SafetyViolation(
            'inflight-window',
            `leader ${host.id} has ${inFlight} appends in flight to ${id}, window ${MAX_INFLIGHT_APPENDS}`,
          );
        }
      }
    }
  }

  /**
   * A node wakes from a pause. Half the time a read reaches it before anything else: a leader
   * must not trust a lease its clock says has run out, however few ticks it saw, nor its
   * commit index without a heartbeat round.
   */
  #onResume(id: NodeId): void {
    if (!this.#hosts.has(id) || this.#down.has(id) || !this.#random.chance(0.5)) return;
    this.#read(id);
  }

  /** Where a client sends a request: half the time a node that believes it leads, as clients mostly do. */
  #liveNode(): ReplicaHost | undefined {
    const awake = this.#ids.filter((id) => this.#awake(id));
    if (awake.length === 0) return undefined;
    const leaders = awake.filter((id) => this.#host(id).node.role === 'leader');
    const pool = leaders.length > 0 && this.#random.chance(0.5) ? leaders : awake;
    return this.#host(this.#random.pick(pool));
  }

  #propose(): void {
    const host = this.#liveNode();
    if (!host) return;
    const count = 1 + this.#random.int(3);
    const data: Uint8Array[] = [];
    for (let i = 0; i < count; i++) {
      const bytes = new Uint8Array(PROPOSAL_BYTES);
      new DataView(bytes.buffer).setUint32(0, this.#nextProposal++);
      data.push(bytes);
    }
    this.#clients.proposed(host.id, host.node.propose(data));
    this.#afterStep(host);
  }

  #read(on?: NodeId, mode?: ReadMode): void {
    const host = on === undefined ? this.#liveNode() : this.#host(on);
    if (!host) return;
    const readMode = mode ?? (this.#random.chance(0.5) ? 'lease' : 'read-index');
    host.node.readIndex(
      this.#clients.startRead(host.id, readMode, this.#step + 1, host.node.term),
      readMode,
    );
    this.#afterStep(host);
  }

  /** One step done: run the node's `Ready` through the checkers and onto the network. */
  #afterStep(host: ReplicaHost): void {
    if (++this.#step % PROGRESS_EVERY === 0) this.#options.onProgress?.(this.#step);
    if (this.#pendingPartition && this.#step >= this.#pendingPartition.atStep) {
      this.#network.partition(this.#pendingPartition.side, this.#ids);
      this.#pendingPartition = undefined;
      this.#stats.partitions++;
    }
    const messages = host.processReady(({ id, ready }) => {
      this.#checker.onReady(id, host.node, ready);
      this.#clients.onReady(id, ready, this.#checker.committedIndex, this.#step);
      if (ready.softState?.role === 'leader') this.#onElected(id);
      const calm = this.#calm;
      if (!calm) return;
      for (const entry of ready.committedEntries) {
        if (entry.data.length !== PROPOSAL_BYTES) continue;
        const proposal = new DataView(entry.data.buffer, entry.data.byteOffset).getUint32(0);
        if (proposal >= calm.firstProposal) calm.wrote = true;
      }
      if (ready.readStates.some((read) => read.context >= calm.firstRead)) calm.read = true;
    });
    for (const m of messages) {
      if (m.type === 'snap') {
        this.#snapshots.start(m, host.snapshotData(m.snapshot?.index ?? 0) as number, this.#now);
        this.#stats.snapshotsSent++;
      } else {
        this.#network.send(m, this.#now);
      }
    }
    this.#checker.onApplied(host.id, host.appliedIndex, host.stateHash);
    const asked = this.#changeSoon;
    this.#changeSoon = undefined;
    const leader = asked === undefined ? undefined : this.#hosts.get(asked);
    if (leader?.node.role === 'leader') {
      const split = this.#removeAtElection;
      this.#removeAtElection = undefined;
      this.#changeMembership(leader, split && { type: 'remove', id: split.victim });
    }
  }

  /**
   * A new leader is often cut off part way through its first appends (in chaos): entries
   * then sit on a minority under one term while another term's leader writes the same
   * indexes, which is where commit and election rules get tested hardest.
   */
  #onElected(id: NodeId): void {
    this.#stats.elections++;
    if (this.#phase !== 'chaos') return;
    // A change asked of a leader the moment it wins: before its first entry commits.
    const split = this.#removeAtElection;
    if (split && id !== split.oldLeader && id !== split.victim) {
      this.#network.cut(id, split.victim);
      this.#changeSoon = id;
    } else if (this.#churn() && this.#random.chance(0.3)) {
      this.#changeSoon = id;
    }
    if (!this.#random.chance(0.5)) return;
    const side = this.#ids.filter((other) => other === id || this.#random.chance(0.3));
    this.#pendingPartition = { side, atStep: this.#step + this.#random.int(12) };
  }

  #leaders(): string {
    return this.#group()
      .filter((h) => !this.#down.has(h.id) && h.node.role === 'leader')
      .map((h) => `${h.id}@${h.node.term}`)
      .join(', ');
  }

  /** A crash lasts one to five election timeouts, unless a fault or a calm phase ends it sooner. */
  #crash(id: NodeId): void {
    this.#down.set(id, this.#now + (1 + this.#random.int(5)) * ELECTION_TICKS);
    this.#clients.crashed(id);
    this.#stats.crashes++;
  }

  #restart(id: NodeId): void {
    this.#down.delete(id);
    this.#host(id).restart();
    this.#checker.onRestart(id);
  }

  #result(violation: SimulationResult['violation']): SimulationResult {
    return {
      seed: this.#options.seed,
      nodes: this.#options.nodes,
      steps: this.#step,
      budget: this.#options.steps,
      ticks: this.#now,
      ...this.#stats,
      committed: this.#checker.committedIndex,
      writesAcked: this.#clients.writesAcked,
      readsServed: this.#clients.readsServed,
      readsFailed: this.#clients.readsFailed,
      checks: this.#checker.checks,
      violation,
    };
  }
}

/** The command that replays a run (`plant` names the planted bug it ran with, if any). */
export function replayCommand(result: SimulationResult, plant?: string): string {
  const planted = plant ? ` --plant '${plant}'` : '';
  return `npm run sim -- --seed ${result.seed} --nodes ${result.nodes} --steps ${result.budget}${planted}`;
}
