// The SDK's entry point: `new CacheClient({ seeds })`, then calls by key. Routing, retries,
// redirects and auto-pipelining happen underneath (call-runner.ts, pipeline-connection.ts).

import { CallRunner } from './call-runner.ts';
import { ClusterMapSource, type ClusterMapView } from './cluster-map.ts';
import {
  ClientClosedError,
  InvalidArgumentError,
  OutcomeUnknownError,
  type RaftcacheError,
} from './errors.ts';
import { type ClientMetrics, newMetrics } from './metrics.ts';
import { forEachShard, groupByShard, type ShardGroup } from './multi-shard.ts';
import { NodePool, type TransportMode } from './node-pool.ts';
import type { OpKind, WireReply } from './operations.ts';
import { DEFAULT_RESILIENCE, Resilience, type ResilienceOptions } from './resilience.ts';
import { checkInteger, checkKey, checkKeys, toBytes, type Value } from './values.ts';

export interface CacheClientOptions {
  /** Addresses (`host:port`) of some of the cluster's nodes; the cluster map names the rest. */
  readonly seeds: readonly string[];
  /**
   * `pipeline` (the default): requests to a node share one Pipeline stream, and those issued
   * in the same event-loop turn leave in one write. `unary`: one gRPC call per request, for
   * debugging.
   */
  readonly mode?: TransportMode;
  /** A call's deadline, ms, unless the call gives its own (default 5000). Retries fit in it. */
  readonly deadlineMs?: number;
  /** One attempt's timeout, ms, when the deadline leaves more (default 2000). */
  readonly attemptTimeoutMs?: number;
  /**
   * Not-leader answers followed in a row at most (default 5); then the call backs off and
   * refreshes the cluster map before it tries again.
   */
  readonly maxRedirects?: number;
  /** Bulkhead, retries and circuit breakers (see `ResilienceOptions` for the defaults). */
  readonly resilience?: Partial<ResilienceOptions>;
  /**
   * Addresses the cluster advertises → the addresses this client dials instead (NAT, port
   * forwarding, tunnels). Unlisted addresses are dialled as they are.
   */
  readonly addressMap?: Readonly<Record<string, string>>;
  /**
   * Keys one MGET or DEL request names at most (default 1000, a node's default limit); a
   * shard's longer part goes as several requests. MSET does not split: a shard's pairs apply
   * atomically, so a shard's part of an MSET must fit the node's limit.
   */
  readonly maxKeysPerRequest?: number;
}

/** How current a read must be. */
export type Consistency = 'linearizable' | 'lease' | 'stale';

export interface CallOptions {
  /** This call's deadline, ms from now (default: the client's `deadlineMs`). */
  readonly deadlineMs?: number;
}

export interface ReadOptions extends CallOptions {
  /**
   * `linearizable` (default): sees every write acknowledged before the read began.
   * `lease`: the same while clocks drift less than the cluster's margin, without a round
   * trip to the followers. `stale`: from any replica, possibly behind.
   */
  readonly consistency?: Consistency;
  /**
   * With `stale` only: how long ago, at most, the replica that answers may last have heard
   * from its shard's leader, ms. A replica cut off for longer refuses, and the read goes to
   * another replica; if none is current enough by the deadline, it rejects with
   * `UnavailableError`. Absent: any replica answers, however stale.
   *
   * @example
   * ```ts
   * const hint = await cache.get('feed:42', { consistency: 'stale', maxStalenessMs: 2_000 });
   * ```
   */
  readonly maxStalenessMs?: number;
}

export interface SetOptions extends CallOptions {
  /** Time to live, ms (0 or absent: none). */
  readonly ttlMs?: number;
  /** Keep the expiry of the entry this one replaces (KEEPTTL). */
  readonly keepTtl?: boolean;
  /** Only if the key is absent (NX). */
  readonly ifAbsent?: boolean;
  /** Only if the key is present (XX). */
  readonly ifPresent?: boolean;
  /** Only if the live entry has this version (compare-and-set). */
  readonly ifVersion?: number;
}

export interface MSetOptions extends CallOptions {
  /** One time to live for every pair, ms (0 or absent: none). */
  readonly ttlMs?: number;
}

/** A live entry. */
export interface Entry {
  readonly value: Buffer;
  /** Grows with every change of the key (the Raft log index of the write that made it). */
  readonly version: number;
  /** Epoch ms when it expires; undefined when it does not. */
  readonly expiresAtMs: number | undefined;
  readonly createdAtMs: number;
}

/** What a conditional write did. */
export interface WriteResult {
  /** False when `ifAbsent`, `ifPresent` or `ifVersion` did not hold. */
  readonly applied: boolean;
  /** The entry's version after the write, when it applied. */
  readonly version: number | undefined;
}

/** An MSet: one atomic write per shard, all applied. */
export interface MSetResult {
  readonly shards: readonly { shardId: number; keys: readonly string[]; version: number }[];
}

export interface ShardStats {
  readonly shardId: number;
  readonly keys: number;
  readonly bytes: number;
  readonly capacityBytes: number;
  readonly hits: number;
  readonly misses: number;
  readonly evictions: number;
  readonly expirations: number;
  /** "leader", "follower", "candidate" or "preCandidate". */
  readonly role: string;
  /** "running", or "failed" (an invariant broke in this replica: `failure` says which). */
  readonly state: string;
  readonly failure: string;
  readonly eviction: EvictionPolicyStats;
}

/** A replica's eviction policy and how its plugin has fared (the `.proto`'s message). */
export interface EvictionPolicyStats {
  /** The policy choosing victims now: the plugin's name, "lru" after a fallback, or "none". */
  readonly active: string;
  /** The plugin as the node's `--eviction` names it. */
  readonly configured: string;
  /** Why the plugin was dropped; empty while it serves. */
  readonly fallbackReason: string;
  /** Failures counted by hook. */
  readonly failures: Readonly<Record<string, number>>;
  readonly slowVictimWalks: number;
}

/** One node's statistics: of each shard it holds a replica of, or why it did not answer. */
export type NodeStats =
  | { readonly nodeId: string; readonly address: string; readonly shards: readonly ShardStats[] }
  | { readonly nodeId: string; readonly address: string; readonly error: RaftcacheError };

const CONSISTENCY: Readonly<Record<Consistency, string>> = {
  linearizable: 'LINEARIZABLE',
  lease: 'LEASE',
  stale: 'STALE',
};

/**
 * A client of a raftcache cluster. It fetches the cluster map from the seeds, sends each
 * request to the leader of its key's shard, follows not-leader answers, retries within each
 * call's deadline (a write with the same write id, so it applies once), and pipelines what
 * is issued together. Errors are `RaftcacheError`s, one class per code (see errors.ts).
 *
 * @example
 * ```ts
 * const cache = new CacheClient({ seeds: ['127.0.0.1:7401'] });
 * await cache.set('greeting', 'hello', { ttlMs: 60_000 });
 * console.log(await cache.getString('greeting')); // 'hello'
 * await cache.close();
 * ```
 */
export class CacheClient {
  readonly #metrics = newMetrics();
  readonly #nodes: NodePool;
  readonly #maps: ClusterMapSource;
  readonly #runner: CallRunner;
  readonly #deadlineMs: number;
  readonly #maxKeysPerRequest: number;
  #closed = false;

  /**
   * Creates a client; nothing is sent until the first call (or `connect()`).
   *
   * @example
   * ```ts
   * const cache = new CacheClient({ seeds: ['10.0.0.1:7401', '10.0.0.2:7401'], deadlineMs: 2_000 });
   * ```
   */
  constructor(options: CacheClientOptions) {
    const seeds = checkKeys(options?.seeds, 'seeds');
    if (seeds.length === 0) throw new InvalidArgumentError('seeds must name at least one node');
    for (const seed of seeds)
      if (!/^(\[[0-9a-fA-F:]+\]|[^\s:[\]]+):\d{1,5}$/.test(seed))
        throw new InvalidArgumentError(`seed ${JSON.stringify(seed)} is not host:port`);
    const mode = options.mode ?? 'pipeline';
    if (mode !== 'pipeline' && mode !== 'unary')
      throw new InvalidArgumentError(`mode must be 'pipeline' or 'unary', not ${String(mode)}`);
    this.#deadlineMs = checkInteger(options.deadlineMs ?? 5_000, 'deadlineMs', 1);
    this.#maxKeysPerRequest = checkInteger(
      options.maxKeysPerRequest ?? 1000,
      'maxKeysPerRequest',
      1,
    );
    const resilience: ResilienceOptions = { ...DEFAULT_RESILIENCE, ...options.resilience };
    for (const [name, value] of Object.entries(resilience))
      checkInteger(value, `resilience.${name}`, name === 'maxQueued' ? 0 : 1);
    this.#nodes = new NodePool(mode, options.addressMap ?? {}, this.#metrics);
    this.#maps = new ClusterMapSource(
      seeds,
      (address, timeoutMs) => this.#nodes.call(address, 'Admin', 'ClusterMap', {}, timeoutMs),
      this.#metrics,
    );
    this.#runner = new CallRunner(
      this.#maps,
      this.#nodes,
      new Resilience(resilience),
      this.#metrics,
      {
        maxRedirects: checkInteger(options.maxRedirects ?? 5, 'maxRedirects', 0),
        attemptTimeoutMs: checkInteger(options.attemptTimeoutMs ?? 2_000, 'attemptTimeoutMs', 1),
      },
    );
  }

  /**
   * Fetches the cluster map now, so that the first call does not wait for it; rejects with
   * `ClusterUnreachableError` when no seed answers.
   *
   * @example
   * ```ts
   * await cache.connect();
   * ```
   */
  async connect(): Promise<void> {
    this.#checkOpen();
    await this.#maps.load(performance.now() + this.#deadlineMs);
  }

  /**
   * The value of `key`, or undefined when there is none.
   *
   * @example
   * ```ts
   * const avatar: Buffer | undefined = await cache.get('user:42:avatar');
   * ```
   */
  async get(key: string, options?: ReadOptions): Promise<Buffer | undefined> {
    return (await this.getEntry(key, options))?.value;
  }

  /**
   * The value of `key` as UTF-8 text, or undefined when there is none.
   *
   * @example
   * ```ts
   * const name = await cache.getString('user:42:name', { consistency: 'lease' });
   * ```
   */
  async getString(key: string, options?: ReadOptions): Promise<string | undefined> {
    return (await this.getEntry(key, options))?.value.toString('utf8');
  }

  /**
   * The entry of `key` with its version and expiry, or undefined when there is none.
   *
   * @example
   * ```ts
   * const entry = await cache.getEntry('counter');
   * if (entry) await cache.set('counter', String(Number(entry.value) + 1), { ifVersion: entry.version });
   * ```
   */
  async getEntry(key: string, options?: ReadOptions): Promise<Entry | undefined> {
    const k = checkKey(key);
    const reply = await this.#onKey('get', k, { key: k, ...readFields(options) }, options);
    return reply.found ? entryOf(reply.entry) : undefined;
  }

  /**
   * Stores `value` (a Buffer, a Uint8Array, or a string stored as UTF-8) at `key`. Resolves
   * once a majority of the shard's replicas holds it. Conditions that do not hold are a
   * result (`applied: false`), not an error.
   *
   * @example
   * ```ts
   * await cache.set('session:9f2', JSON.stringify(session), { ttlMs: 30 * 60_000 });
   * const { applied } = await cache.set('lock:job', 'worker-3', { ifAbsent: true, ttlMs: 10_000 });
   * ```
   */
  async set(key: string, value: Value, options: SetOptions = {}): Promise<WriteResult> {
    const k = checkKey(key);
    if (options.ifAbsent && options.ifPresent)
      throw new InvalidArgumentError('ifAbsent and ifPresent exclude each other');
    const request = {
      key: k,
      value: toBytes(value, k),
      ttl_ms: checkInteger(options.ttlMs ?? 0, 'ttlMs', 0),
      keep_ttl: options.keepTtl === true,
      condition: options.ifAbsent ? 'IF_ABSENT' : options.ifPresent ? 'IF_PRESENT' : 'ALWAYS',
      if_version:
        options.ifVersion === undefined ? 0 : checkInteger(options.ifVersion, 'ifVersion', 1),
    };
    return writeResult(await this.#onKey('set', k, request, options), 'set');
  }

  /**
   * Deletes keys; resolves with how many existed. Keys of one shard go in one atomic request;
   * keys of several shards in one request per shard, in parallel (a `PartialFailureError`
   * says which shards' deletes applied if some did not).
   *
   * @example
   * ```ts
   * const removed = await cache.del(['user:{42}:name', 'user:{42}:mail']);
   * ```
   */
  async del(keys: string | readonly string[], options?: CallOptions): Promise<number> {
    const list = typeof keys === 'string' ? [keys] : checkKeys(keys);
    const parts = await this.#perShard('del', list, options, (group) => ({ keys: group.keys }), {
      split: true,
    });
    return parts.reduce(
      (sum, { reply }) => sum + (writeResult(reply, 'del').applied ? Number(reply.removed) : 0),
      0,
    );
  }

  /**
   * The values of `keys`, in their order (undefined where there is none). Keys of several
   * shards are read with one request per shard, in parallel.
   *
   * @example
   * ```ts
   * const [name, mail] = await cache.mget(['user:42:name', 'user:42:mail']);
   * ```
   */
  async mget(keys: readonly string[], options?: ReadOptions): Promise<(Buffer | undefined)[]> {
    const list = checkKeys(keys);
    const values = new Array<Buffer | undefined>(list.length);
    const wanted = readFields(options);
    const parts = await this.#perShard(
      'mget',
      list,
      options,
      (group) => ({ keys: group.keys, ...wanted }),
      { split: true },
    );
    for (const { group, reply } of parts)
      group.indices.forEach((index, i) => {
        const got = reply.values[i];
        values[index] = got?.found ? got.entry.value : undefined;
      });
    return values;
  }

  /**
   * Stores several pairs. The pairs of one shard apply atomically (all or none); keys that
   * share a `{hash tag}` share a shard. Pairs of several shards go as one request per shard,
   * in parallel; if some fail, a `PartialFailureError` reports each shard's part.
   *
   * @example
   * ```ts
   * await cache.mset({ 'user:{42}:name': 'Ada', 'user:{42}:mail': 'ada@example.org' }, { ttlMs: 60_000 });
   * ```
   */
  async mset(
    entries: Readonly<Record<string, Value>> | Iterable<readonly [string, Value]>,
    options: MSetOptions = {},
  ): Promise<MSetResult> {
    const pairs = pairsOf(entries);
    const keys = pairs.map(([key]) => key);
    const values = pairs.map(([key, value]) => toBytes(value, key));
    const ttlMs = checkInteger(options.ttlMs ?? 0, 'ttlMs', 0);
    const parts = await this.#perShard('mset', keys, options, (group) => ({
      entries: group.indices.map((i) => ({ key: keys[i], value: values[i] })),
      ttl_ms: ttlMs,
    }));
    return {
      shards: parts.map(({ group, reply }) => ({
        shardId: group.shardId,
        keys: group.keys,
        version: writeResult(reply, 'mset').version as number,
      })),
    };
  }

  /**
   * Makes `key` expire `ttlMs` from now (0 or less: deletes it now). Resolves with whether the
   * key existed.
   *
   * @example
   * ```ts
   * await cache.expire('session:9f2', 5 * 60_000);
   * ```
   */
  async expire(key: string, ttlMs: number, options?: CallOptions): Promise<boolean> {
    const k = checkKey(key);
    const request = { key: k, ttl_ms: checkInteger(ttlMs, 'ttlMs', Number.MIN_SAFE_INTEGER) };
    return writeResult(await this.#onKey('expire', k, request, options), 'expire').applied;
  }

  /**
   * Removes the expiry of `key`. Resolves with whether the key existed.
   *
   * @example
   * ```ts
   * await cache.persist('session:9f2');
   * ```
   */
  async persist(key: string, options?: CallOptions): Promise<boolean> {
    const k = checkKey(key);
    const request = { key: k, persist: true };
    return writeResult(await this.#onKey('expire', k, request, options), 'persist').applied;
  }

  /**
   * Milliseconds until `key` expires; null when it does not expire; undefined when there is
   * no such key.
   *
   * @example
   * ```ts
   * const left = await cache.ttl('session:9f2'); // e.g. 299_870
   * ```
   */
  async ttl(key: string, options?: ReadOptions): Promise<number | null | undefined> {
    const k = checkKey(key);
    const reply = await this.#onKey('ttl', k, { key: k, ...readFields(options) }, options);
    const ms = Number(reply.ttl_ms);
    return ms === -2 ? undefined : ms === -1 ? null : ms;
  }

  /**
   * Every node's statistics, per shard replica it holds (asked of all nodes at once). A node
   * that does not answer is listed with its error.
   *
   * @example
   * ```ts
   * for (const node of await cache.stats())
   *   if ('shards' in node) console.log(node.nodeId, node.shards.reduce((n, s) => n + s.keys, 0));
   * ```
   */
  async stats(options?: CallOptions): Promise<NodeStats[]> {
    this.#checkOpen();
    const deadline = this.#deadline(options);
    const { nodes } = (await this.#maps.load(deadline)).view;
    const timeout = Math.max(1, deadline - performance.now());
    return Promise.all(
      nodes.map(async ({ id: nodeId, address }): Promise<NodeStats> => {
        try {
          const reply = await this.#nodes.call(address, 'Cache', 'Stats', {}, timeout);
          return { nodeId, address, shards: reply.shards.map(shardStatsOf) };
        } catch (error) {
          return { nodeId, address, error: error as RaftcacheError };
        }
      }),
    );
  }

  /**
   * The cluster map, fetched now: nodes, and each shard's slots, replicas and leader.
   *
   * @example
   * ```ts
   * const map = await cache.clusterMap();
   * console.log(map.shards.map((s) => `${s.id}: leader ${s.leader}`));
   * ```
   */
  async clusterMap(options?: CallOptions): Promise<ClusterMapView> {
    return (await this.#maps.fetch(this.#deadline(options))).view;
  }

  /**
   * What the client did so far: calls, retries, redirects, pipeline writes.
   *
   * @example
   * ```ts
   * const { pipelineWrites, pipelinedRequests } = cache.metrics;
   * console.log(`${(pipelinedRequests / pipelineWrites).toFixed(1)} requests per write`);
   * ```
   */
  get metrics(): Readonly<ClientMetrics> {
    return { ...this.#metrics };
  }

  /**
   * Closes the connections. Calls still running fail (a write among them with
   * `OutcomeUnknownError` if it was sent); later calls fail with `ClientClosedError`.
   *
   * @example
   * ```ts
   * await cache.close();
   * ```
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.#runner.close();
    this.#nodes.close();
  }

  /** One request about one key, to the key's shard. */
  async #onKey(
    op: OpKind,
    key: string,
    request: object,
    options: CallOptions | undefined,
  ): Promise<WireReply> {
    const deadline = this.#deadline(options);
    const shardId = (await this.#maps.load(deadline)).shardOf(key);
    return this.#toShard(op, shardId, request, deadline);
  }

  /**
   * One request per shard of `keys` (with `split`, per at most `maxKeysPerRequest` of a
   * shard's keys), in parallel: each request's group of keys and its reply.
   */
  async #perShard(
    op: OpKind,
    keys: readonly string[],
    options: CallOptions | undefined,
    request: (group: ShardGroup) => object,
    { split } = { split: false },
  ): Promise<{ group: ShardGroup; reply: WireReply }[]> {
    const deadline = this.#deadline(options);
    if (keys.length === 0) return [];
    const table = await this.#maps.load(deadline);
    const maxKeys = split ? this.#maxKeysPerRequest : undefined;
    const groups = groupByShard(keys, (key) => table.shardOf(key), maxKeys);
    const replies = await forEachShard(op, groups, (group) =>
      this.#toShard(op, group.shardId, request(group), deadline),
    );
    return groups.map((group, g) => ({ group, reply: replies[g] }));
  }

  #toShard(op: OpKind, shardId: number, request: object, deadline: number): Promise<WireReply> {
    return this.#runner.run({ op, shardId, request, deadline });
  }

  #deadline(options: CallOptions | undefined): number {
    this.#checkOpen();
    const ms =
      options?.deadlineMs === undefined
        ? this.#deadlineMs
        : checkInteger(options.deadlineMs, 'deadlineMs', 1);
    return performance.now() + ms;
  }

  #checkOpen(): void {
    if (this.#closed) throw new ClientClosedError();
  }
}

/** A read request's `consistency` and, for a bounded stale read, its `max_staleness_ms`. */
function readFields(options: ReadOptions | undefined): {
  consistency: string;
  max_staleness_ms?: string;
} {
  const wanted = options?.consistency ?? 'linearizable';
  const wire = CONSISTENCY[wanted];
  if (!wire)
    throw new InvalidArgumentError(
      `consistency must be 'linearizable', 'lease' or 'stale', not ${JSON.stringify(wanted)}`,
    );
  const bound = options?.maxStalenessMs;
  if (bound === undefined) return { consistency: wire };
  if (wanted !== 'stale')
    throw new InvalidArgumentError(`maxStalenessMs bounds stale reads only, not ${wanted} ones`);
  return { consistency: wire, max_staleness_ms: String(checkInteger(bound, 'maxStalenessMs', 1)) };
}

function entryOf(entry: WireReply): Entry {
  const expiresAt = Number(entry.expires_at_ms);
  return {
    value: entry.value,
    version: Number(entry.version),
    expiresAtMs: expiresAt > 0 ? expiresAt : undefined,
    createdAtMs: Number(entry.created_at_ms),
  };
}

/**
 * A write's reply; an UNKNOWN outcome is an error: the shard had dropped the write's outcome
 * (its session had passed it), so it may or may not have applied.
 */
function writeResult(reply: WireReply, op: string): WriteResult {
  if (reply.outcome === 'UNKNOWN')
    throw new OutcomeUnknownError(
      `${op}: the shard no longer holds this write's outcome: it may or may not have applied`,
    );
  return reply.outcome === 'APPLIED'
    ? { applied: true, version: Number(reply.version) }
    : { applied: false, version: undefined };
}

function pairsOf(
  entries: Readonly<Record<string, Value>> | Iterable<readonly [string, Value]>,
): (readonly [string, Value])[] {
  if (entries === null || typeof entries !== 'object')
    throw new InvalidArgumentError('mset takes an object of key → value, or [key, value] pairs');
  const pairs =
    Symbol.iterator in entries
      ? [...(entries as Iterable<readonly [string, Value]>)]
      : Object.entries(entries);
  return pairs.map((pair, i) => {
    if (!Array.isArray(pair) || pair.length !== 2)
      throw new InvalidArgumentError(`mset entry ${i} is not a [key, value] pair`);
    return [checkKey(pair[0], `mset key ${i}`), pair[1]] as const;
  });
}

function shardStatsOf(s: WireReply): ShardStats {
  return {
    shardId: s.shard_id,
    keys: Number(s.keys),
    bytes: Number(s.bytes),
    capacityBytes: Number(s.capacity_bytes),
    hits: Number(s.hits),
    misses: Number(s.misses),
    evictions: Number(s.evictions),
    expirations: Number(s.expirations),
    role: s.role,
    state: s.state,
    failure: s.failure,
    eviction: {
      active: s.eviction?.active ?? '',
      configured: s.eviction?.configured ?? '',
      fallbackReason: s.eviction?.fallback_reason ?? '',
      failures: Object.fromEntries(
        Object.entries(s.eviction?.failures ?? {}).map(([hook, n]) => [hook, Number(n)]),
      ),
      slowVictimWalks: Number(s.eviction?.slow_victim_walks ?? 0),
    },
  };
}
