// How a node becomes part of a cluster and keeps up with its map. A founder (`--bootstrap`)
// first asks every other founder who it is; if any already knows a cluster map, the cluster
// exists and this node is one that lost its state, so it joins instead of founding again
// (founding twice would reuse replica ids with an empty log: ARCHITECTURE.md, invariant 6).
// Otherwise the founders start the metadata group and its leader writes the founding map.
// A joining node asks a seed, which redirects to the metadata group's leader. Afterwards the
// node follows the map: from its own metadata replica when it has one, by polling a member's
// `Probe` when it has not, and hands each new epoch to the host and the transport.

import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { MultiRaftHost } from '../shard/multi-raft-host.ts';
import type { TcpPeerTransport } from '../transport/tcp-peer-transport.ts';
import { ThrottledWarnings } from '../transport/throttled-warnings.ts';
import {
  type ClusterMap,
  foundingMap,
  METADATA_SHARD,
  slotTable,
  withJoinedNode,
} from './cluster-map.ts';
import type { Leadership, LeadershipReport, NodeIntro } from './membership-limits.ts';
import {
  type FoundingPlan,
  type JoinReply,
  type LeaderOfShard,
  MembershipClient,
  type MembershipHandlers,
  MembershipRefusedError,
  type ProbeReply,
  type Redirect,
} from './membership-rpc.ts';
import { MetadataFullError, type MetadataStore } from './metadata.ts';
import { PlacementError } from './placement.ts';

/**
 * The metadata group's store holds the map and a leader hint a shard, each bounded
 * (membership-limits.ts): this is plenty. It never evicts (`metadataNeverEvicts`).
 */
const METADATA_CAPACITY = 16 << 20;
const RETRY_MS = 200;
const PROGRESS_EVERY_MS = 5_000;
/** How often a node outside the metadata group asks a member for a newer map. */
const POLL_MS = 1_000;
/** How often a member looks at its own replica's map. */
const WATCH_MS = 100;
/** How often a node checks whether the shards it leads changed, to report them. */
const REPORT_MS = 500;

export interface ClusterMembershipOptions {
  readonly self: NodeIntro;
  /** Found a new cluster with `founders` rather than join one through `seeds`. */
  readonly bootstrap: boolean;
  /** The founders, `nodeId` → address, this node included. */
  readonly founders: ReadonlyMap<string, string>;
  readonly seeds: readonly string[];
  readonly dataShards: number;
  readonly replicationFactor: number;
  readonly host: MultiRaftHost;
  readonly transport: TcpPeerTransport;
  readonly metadata: MetadataStore;
  readonly logger: Logger;
}

export class ClusterMembership implements MembershipHandlers {
  readonly #options: ClusterMembershipOptions;
  #map: ClusterMap | undefined;
  #watch: NodeJS.Timeout | undefined;
  #lastPoll = 0;
  #polling = false;
  /** Leader hints from the last poll, for a node outside the metadata group. */
  #polledLeaders: readonly LeaderOfShard[] = [];
  #lastReport = 0;
  #reported = '';
  #reporting = false;
  /** The founders' introductions, as this node recorded them while founding. */
  readonly #introduced = new Map<string, NodeIntro>();
  /** A broken or forged reporter could flood the log. */
  readonly #refusedReports: ThrottledWarnings;
  #closed = false;

  constructor(options: ClusterMembershipOptions) {
    this.#options = options;
    this.#refusedReports = new ThrottledWarnings(options.logger);
  }

  /** The newest map this node knows; none until it has founded or joined its cluster. */
  get map(): ClusterMap | undefined {
    return this.#map;
  }

  /** Founds or joins the cluster, then follows its map. Resolves once the node serves. */
  async start(): Promise<ClusterMap> {
    const { bootstrap, seeds } = this.#options;
    const map = bootstrap ? await this.#foundOrJoin() : await this.#join(seeds);
    this.#watch = setInterval(() => this.#follow(), WATCH_MS);
    return map;
  }

  stop(): void {
    this.#closed = true;
    clearInterval(this.#watch);
  }

  // ---- The Membership service's handlers.

  probe(): ProbeReply {
    return {
      node: this.#options.self,
      plan: this.#plan,
      map: this.#map ?? null,
      introduced: [...this.#introduced.values()],
      leaders: this.leaders(),
    };
  }

  get #plan(): FoundingPlan {
    const { dataShards, replicationFactor } = this.#options;
    return { dataShards, replicationFactor };
  }

  async join(node: NodeIntro): Promise<JoinReply> {
    const { metadata, logger } = this.#options;
    if (!metadata.isLeader) return this.#redirect();
    const next = await metadata
      .update((current) => withJoinedNode(current, node))
      .catch((error: Error) => {
        // A full map or a full metadata group: asking again will not help.
        if (error instanceof PlacementError || error instanceof MetadataFullError)
          throw new MembershipRefusedError(grpc.status.RESOURCE_EXHAUSTED, error.message);
        throw error;
      });
    logger.info({ node: node.nodeId, epoch: next.epoch }, 'node joined the cluster map');
    this.#apply(next, false);
    return { map: next };
  }

  /** Only a node of the map may report, and only leaderships the map allows (metadata.ts). */
  async reportLeaders(report: LeadershipReport): Promise<{ recorded: true } | Redirect> {
    const { metadata } = this.#options;
    if (!metadata.isLeader) return this.#redirect();
    await this.#recordLeaders(report.node, report.leaders);
    return { recorded: true };
  }

  async #recordLeaders(node: string, leaders: readonly Leadership[]): Promise<void> {
    const map = this.#map;
    if (map === undefined) throw new Error('this node has not joined a cluster yet');
    if (!map.nodes.some((n) => n.nodeId === node))
      throw new MembershipRefusedError(
        grpc.status.PERMISSION_DENIED,
        `node ${node} is not in the cluster map: only members report leaders`,
      );
    const refused = await this.#options.metadata.recordLeaders(map, node, leaders);
    if (refused.length > 0) this.#refusedReports.warn({ node, refused }, 'leader hints refused');
  }

  /** The last known leader of each data shard (hints: a client follows redirects anyway). */
  leaders(): readonly LeaderOfShard[] {
    const { metadata } = this.#options;
    if (!metadata.isMember || this.#map === undefined) return this.#polledLeaders;
    const hints = metadata.leaders(this.#map.shards.map((s) => s.shardId));
    return [...hints].map(([shardId, hint]) => ({ shardId, node: hint.node }));
  }

  /** Off the metadata group's leader: where to ask instead. */
  #redirect(): Redirect {
    const map = this.#map;
    if (map === undefined) throw new Error('this node has not joined a cluster yet');
    const { metadata, self } = this.#options;
    const members = map.shards[METADATA_SHARD].replicas.map((r) => r.node);
    const target = metadata.leaderNode ?? members.find((n) => n !== self.nodeId);
    const address = map.nodes.find((n) => n.nodeId === target)?.address;
    if (address === undefined) throw new Error('the metadata group has no leader yet');
    return { redirect: address };
  }

  // ---- Founding and joining.

  async #foundOrJoin(): Promise<ClusterMap> {
    const { founders, self, logger } = this.#options;
    const intros = await this.#introduceFounders();
    if (intros === 'exists') {
      logger.warn(
        { node: self.nodeId },
        'a founder already knows a cluster: this node lost its state and joins it instead of founding',
      );
      return this.#join([...founders.values()]);
    }
    const names = [...founders.keys()].sort();
    // The cluster's identity follows from its founding list and plan: the same, the same cluster.
    const { dataShards, replicationFactor } = this.#plan;
    const clusterId = `rc-${createHash('sha256')
      .update(names.map((n) => `${n}=${founders.get(n)}`).join(','))
      .update(`/${dataShards}/${replicationFactor}`)
      .digest('hex')
      .slice(0, 12)}`;
    const founding = foundingMap({
      clusterId,
      nodes: intros.map((intro) => ({ ...intro, incarnation: 1 })),
      dataShards: this.#options.dataShards,
      replicationFactor: this.#options.replicationFactor,
    });
    this.#options.transport.setClusterId(clusterId);
    // The metadata group first, alone: its leader writes the founding map.
    this.#apply({ ...founding, shards: [founding.shards[METADATA_SHARD]] }, true, true);
    const stored = await this.#until('the founding map', async () => {
      const { metadata } = this.#options;
      if (metadata.isLeader) await metadata.found(founding).catch(() => {});
      return metadata.isMember ? metadata.local() : this.#probeMembers(founding);
    });
    // Founders agree on their introductions and plan, and compute the same founding map; what
    // the metadata group holds must be that map, or a later one of the same cluster.
    const same = stored.epoch === 1 ? isDeepStrictEqual(stored, founding) : true;
    if (stored.clusterId !== clusterId || !same) {
      throw new Error(`the founders disagree on the founding map (cluster ${stored.clusterId})`);
    }
    // Every founder starts the data shards from that same founding map, whatever came since.
    this.#apply(founding, true);
    this.#apply(stored, false);
    logger.info({ clusterId, founders: names }, 'cluster founded');
    return founding;
  }

  /** Every founder's own account of itself, or 'exists' if one already knows a cluster. */
  async #introduceFounders(): Promise<NodeIntro[] | 'exists'> {
    const { founders, self } = this.#options;
    const intros = this.#introduced;
    intros.set(self.nodeId, self);
    let exists = false;
    await this.#until('the other founders', async () => {
      for (const [nodeId, address] of founders) {
        if (intros.has(nodeId)) continue;
        const reply = await this.#probe(address);
        if (reply === undefined) continue;
        if (reply.node.nodeId !== nodeId) {
          throw new Error(`${address} is node ${reply.node.nodeId}, not founder ${nodeId}`);
        }
        const mismatch = planMismatch(this.#plan, reply.plan);
        if (mismatch !== undefined) {
          throw new Error(`founder ${nodeId} was started with ${mismatch}: start all alike`);
        }
        // A cluster exists, or is being founded with an earlier process of this node (which
        // may have voted): this one has lost that state and must join as a new incarnation.
        const seen = reply.introduced.find((intro) => intro.nodeId === self.nodeId);
        if (reply.map !== null || (seen !== undefined && seen.process !== self.process))
          exists = true;
        intros.set(nodeId, reply.node);
      }
      return exists || intros.size === founders.size ? true : undefined;
    });
    return exists ? 'exists' : [...intros.values()];
  }

  /** Asks seeds (following redirects to the metadata leader) until one takes this node in. */
  async #join(seeds: readonly string[]): Promise<ClusterMap> {
    const { self, transport, logger } = this.#options;
    const others = seeds.filter((address) => address !== self.address);
    const asked = others.length > 0 ? others : seeds;
    let next = 0;
    let redirect: string | undefined;
    const map = await this.#until('a seed to take this node in', async () => {
      const address = redirect ?? asked[next++ % asked.length];
      redirect = undefined;
      const client = new MembershipClient(address);
      try {
        const reply = await client.join(self);
        if ('map' in reply) return reply.map;
        redirect = reply.redirect;
      } catch (error) {
        logger.debug({ seed: address, error: (error as Error).message }, 'join refused');
      } finally {
        client.close();
      }
      return undefined;
    });
    transport.setClusterId(map.clusterId);
    this.#apply(map, false);
    logger.info({ clusterId: map.clusterId, epoch: map.epoch }, 'joined the cluster');
    return map;
  }

  // ---- Following the map.

  #follow(): void {
    this.#reportLeadership();
    const { metadata } = this.#options;
    if (metadata.isMember) {
      const local = metadata.local();
      if (local !== undefined) this.#apply(local, false);
      return;
    }
    const map = this.#map;
    if (map === undefined || this.#polling || performance.now() - this.#lastPoll < POLL_MS) return;
    this.#polling = true;
    this.#lastPoll = performance.now();
    this.#probeMembers(map)
      .then((newer) => newer !== undefined && this.#apply(newer, false))
      .catch((error: Error) =>
        this.#options.logger.warn({ err: error }, 'a polled map was refused'),
      )
      .finally(() => {
        this.#polling = false;
      });
  }

  /** Tells the metadata group's leader which data shards this node leads, when that changed. */
  #reportLeadership(): void {
    const { host, metadata, self } = this.#options;
    const map = this.#map;
    if (map === undefined || this.#reporting || performance.now() - this.#lastReport < REPORT_MS)
      return;
    this.#lastReport = performance.now();
    const leaders: Leadership[] = host.shardIds
      .filter((id) => id !== METADATA_SHARD && host.replica(id).isLeader)
      .map((shardId) => ({ shardId, term: host.replica(shardId).node.term }));
    const summary = JSON.stringify(leaders);
    if (summary === this.#reported || leaders.length === 0) return;
    this.#reporting = true;
    const report = { node: self.nodeId, leaders };
    const send = async () => {
      if (metadata.isLeader) return this.#recordLeaders(self.nodeId, leaders);
      // One redirect at most: to the leader, as a member of the metadata group knows it.
      let address = this.#redirect().redirect;
      for (let hop = 0; hop < 2; hop++) {
        const client = new MembershipClient(address);
        try {
          const redirect = await client.reportLeaders(report);
          if (redirect === undefined) return;
          address = redirect.redirect;
        } finally {
          client.close();
        }
      }
      throw new Error('the metadata group has no leader to report to');
    };
    send()
      .then(
        () => {
          this.#reported = summary;
        },
        () => {},
      )
      .finally(() => {
        this.#reporting = false;
      });
  }

  /**
   * Takes `map` if it is newer than the one held: peers' addresses to the transport, the
   * placement to the host. `founding` replicas start with the placement's voters.
   */
  #apply(map: ClusterMap, founding: boolean, partial = false): void {
    if (this.#closed || (this.#map !== undefined && map.epoch <= this.#map.epoch)) return;
    const { self, host, transport } = this.#options;
    if (!partial) this.#map = map;
    transport.setPeerAddresses(new Map(map.nodes.map((n) => [n.nodeId, n.address])));
    const dataReplicasHere = map.shards.filter(
      (s) => s.shardId !== METADATA_SHARD && s.replicas.some((r) => r.node === self.nodeId),
    ).length;
    host.applyPlacement({
      shards: map.shards,
      slotShards: partial ? undefined : slotTable(map),
      capacityOf: (shardId) =>
        shardId === METADATA_SHARD
          ? METADATA_CAPACITY
          : Math.floor(self.capacityBytes / Math.max(1, dataReplicasHere)),
      founding,
    });
  }

  /** The newest map a member of the metadata group knows, if one answers with a map. */
  async #probeMembers(map: ClusterMap): Promise<ClusterMap | undefined> {
    const members = map.shards[METADATA_SHARD].replicas.map((r) => r.node);
    let newest: ClusterMap | undefined;
    for (const node of map.nodes.filter((n) => members.includes(n.nodeId))) {
      // Through the link's override when it has one, as the peers' raft traffic goes.
      const reply = await this.#probe(
        this.#options.transport.addressOf(node.nodeId) ?? node.address,
      );
      if (reply?.map && (newest === undefined || reply.map.epoch > newest.epoch)) {
        newest = reply.map;
        this.#polledLeaders = reply.leaders;
      }
    }
    return newest !== undefined && newest.epoch > (this.#map?.epoch ?? 0) ? newest : undefined;
  }

  async #probe(address: string): Promise<ProbeReply | undefined> {
    const client = new MembershipClient(address);
    try {
      return await client.probe();
    } catch {
      return undefined;
    } finally {
      client.close();
    }
  }

  /** Runs `attempt` every RETRY_MS until it gives a value; logs what it waits for now and then. */
  async #until<T>(what: string, attempt: () => Promise<T | undefined>): Promise<T> {
    const started = performance.now();
    let reported = started;
    for (;;) {
      if (this.#closed) throw new Error(`stopped while waiting for ${what}`);
      const value = await attempt();
      if (value !== undefined) return value;
      if (performance.now() - reported > PROGRESS_EVERY_MS) {
        reported = performance.now();
        this.#options.logger.info(
          { waitedMs: Math.round(reported - started) },
          `still waiting for ${what}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    }
  }
}

/** How `theirs` differs from `ours`, in flags; undefined when they agree. */
function planMismatch(ours: FoundingPlan, theirs: FoundingPlan): string | undefined {
  if (theirs.dataShards === ours.dataShards && theirs.replicationFactor === ours.replicationFactor)
    return undefined;
  return `--shards ${theirs.dataShards} --replication-factor ${theirs.replicationFactor} (this node: --shards ${ours.dataShards} --replication-factor ${ours.replicationFactor})`;
}
