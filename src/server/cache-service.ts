// The public `Cache` service (proto/raftcache.proto) over a node's multi-raft host: decode the
// request, hand it to the host, encode the reply; every error leaves as one gRPC status
// (src/protocol/status.ts). No cache or raft logic lives here.
import type * as grpc from '@grpc/grpc-js';
import { type EntryInfo, InvalidCommandError } from '../cache/index.ts';
import { METADATA_SHARD } from '../cluster/cluster-map.ts';
import { LEADER_METADATA_KEY } from '../protocol/metadata.ts';
import { CACHE_OPERATIONS, type CacheMethod } from '../protocol/proto.ts';
import { toStatus } from '../protocol/status.ts';
import { RejectedRequest } from '../protocol/strict-decoding.ts';
import type { MultiRaftHost, ReadOptions } from '../shard/multi-raft-host.ts';
import { ReplyWriter } from './reply-writer.ts';
import {
  delRequest,
  expireRequest,
  msetRequest,
  openSessionReply,
  openSessionRequest,
  openSessionShard,
  outcomeReply,
  readOptions,
  setRequest,
  settled,
  type WireDelRequest,
  type WireExpireRequest,
  type WireMSetRequest,
  type WireOpenSessionRequest,
  type WireReadRequest,
  type WireSetRequest,
  writeIdentity,
} from './requests.ts';
import { staleness, type WireStaleness } from './stale-reads.ts';

export interface CacheServiceContext {
  readonly host: MultiRaftHost;
  /** The address clients should use for a node (for the not-leader hint). */
  readonly addressOf: (node: string) => string | undefined;
}

// biome-ignore lint/suspicious/noExplicitAny: requests arrive as proto-loader decodes them
type Wire = any;

type Operation = (request: Wire) => Promise<unknown>;
type OperationName = CacheMethod;

/** Pipeline requests name their operation by the `oneof` field set. */
const PIPELINED: Readonly<Record<string, OperationName | undefined>> = CACHE_OPERATIONS;

/**
 * A unary handler from an operation; any error becomes its status, and a request that was
 * not decoded (malformed, too large) is answered INVALID_ARGUMENT without running.
 */
export function unary(
  addressOf: (node: string) => string | undefined,
  run: Operation,
): grpc.handleUnaryCall<Wire, unknown> {
  return (call, done) => {
    if (call.request instanceof RejectedRequest) {
      done(toStatus(call.request.error, addressOf));
      return;
    }
    run(call.request).then(
      (reply) => done(null, reply),
      (error: unknown) => done(toStatus(error, addressOf)),
    );
  };
}

/**
 * The `Pipeline` stream: every request runs at once (the host batches what arrives in one
 * turn into one log entry and one read round), and its reply goes back tagged as soon as it
 * is ready, in any order, those of one turn together (reply-writer.ts). Every request gets
 * exactly one reply: an error, a request without an operation and a message that is not
 * valid protobuf (tagged with its tag when that could be read, else 0) each answer that
 * request alone with a `status`; the stream goes on. It ends, OK, once the client has
 * half-closed and every reply is written. If grpc-js ends the call itself (a message over
 * the size limit, a deadline), replies still owed are dropped rather than written past the
 * call's end.
 */
function pipeline(
  context: CacheServiceContext,
  operations: Readonly<Record<OperationName, Operation>>,
) {
  return (call: grpc.ServerDuplexStream<Wire, unknown>) => {
    let inFlight = 0;
    let ended = false;
    let over = false;
    const finishIfDone = () => {
      if (ended && inFlight === 0 && !over) {
        over = true;
        call.end();
      }
    };
    const replies = new ReplyWriter(call);
    const reply = (message: unknown) => {
      if (!over && !call.cancelled && !call.destroyed && !call.writableEnded)
        replies.write(message);
    };
    const refuse = (tag: string, error: unknown) => {
      const status = toStatus(error, context.addressOf);
      const leader = status.metadata.get(LEADER_METADATA_KEY)[0];
      reply({
        tag,
        status: {
          code: status.code,
          message: status.details,
          leader: typeof leader === 'string' ? leader : '',
        },
      });
    };
    call.on('data', (request: Wire) => {
      if (request instanceof RejectedRequest) {
        refuse(request.tag, request.error);
        return;
      }
      const tag = request.tag ?? '0';
      const name = PIPELINED[request.request as string];
      if (!name) {
        refuse(tag, new InvalidCommandError('a pipeline request needs one operation'));
        return;
      }
      inFlight++;
      operations[name](request[request.request])
        .then(
          (result) => reply({ tag, [request.request]: result }),
          (error: unknown) => refuse(tag, error),
        )
        .finally(() => {
          inFlight--;
          finishIfDone();
        });
    });
    call.on('end', () => {
      ended = true;
      finishIfDone();
    });
    const stop = () => {
      over = true;
    };
    call.on('cancelled', stop);
    call.on('close', stop);
    call.on('error', stop);
  };
}

/** A GetReply's `found` and `entry`, as Get and each value of MGet answer them. */
function entryReply(entry: EntryInfo | undefined) {
  if (!entry) return { found: false };
  return {
    found: true,
    entry: {
      value: entry.value,
      version: entry.version,
      expires_at_ms: entry.expiresAt,
      created_at_ms: entry.createdAt,
    },
  };
}

export function cacheServiceHandlers(
  context: CacheServiceContext,
): grpc.UntypedServiceImplementation {
  const { host } = context;
  const id = (wire: Wire) => writeIdentity(wire.write_id);
  /** Runs a read of `keys`; a STALE one's reply says how stale (and honours its bound). */
  const read = async <T>(
    wire: WireReadRequest,
    keys: readonly string[],
    run: (options: ReadOptions) => Promise<T>,
  ): Promise<{ result: T; staleness: WireStaleness | undefined }> => {
    const { consistency, maxStalenessMs } = readOptions(wire);
    const result = await run({ consistency });
    const first = keys[0];
    if (consistency !== 'stale' || first === undefined) return { result, staleness: undefined };
    return { result, staleness: staleness(host, first, maxStalenessMs) };
  };
  const operations: Record<OperationName, Operation> = {
    Get: async (r) => {
      const key = r.key ?? '';
      const { result, staleness } = await read(r, [key], (options) => host.get(key, options));
      return { ...entryReply(result), ...(staleness ? { staleness } : {}) };
    },
    Set: async (r: WireSetRequest) => outcomeReply(settled(await host.set(setRequest(r, id(r))))),
    Del: async (r: WireDelRequest) => {
      const outcome = settled(await host.del(delRequest(r, id(r))));
      return {
        ...outcomeReply(outcome),
        removed: outcome.status === 'applied' ? outcome.count : 0,
      };
    },
    MSet: async (r: WireMSetRequest) =>
      outcomeReply(settled(await host.mset(msetRequest(r, id(r))))),
    Expire: async (r: WireExpireRequest) =>
      outcomeReply(settled(await host.expire(expireRequest(r, id(r))))),
    MGet: async (r) => {
      const keys: string[] = r.keys ?? [];
      const { result, staleness } = await read(r, keys, (options) => host.mget(keys, options));
      return { values: result.map(entryReply), ...(staleness ? { staleness } : {}) };
    },
    Ttl: async (r) => {
      const key = r.key ?? '';
      const { result, staleness } = await read(r, [key], (options) => host.ttl(key, options));
      return { ttl_ms: result, ...(staleness ? { staleness } : {}) };
    },
    OpenSession: async (r: WireOpenSessionRequest) =>
      openSessionReply(await host.openSession(openSessionRequest(r), openSessionShard(r))),
  };
  return {
    ...Object.fromEntries(
      Object.entries(operations).map(([name, run]) => [name, unary(context.addressOf, run)]),
    ),
    Pipeline: pipeline(context, operations),
    Stats: unary(context.addressOf, async () => ({
      shards: dataShardIds(host).map((shardId) => shardStatsReply(host, shardId)),
    })),
  };
}

/** The cache shards this node holds a replica of; the metadata group is not one. */
export function dataShardIds(host: MultiRaftHost): number[] {
  return host.shardIds.filter((shardId) => shardId !== METADATA_SHARD);
}

/**
 * A shard's statistics as the `.proto`'s `ShardStats`; with `withDigest`, the digest of its
 * replicated state, taken in the same turn as `applied_index` (a pass over every key).
 */
export function shardStatsReply(host: MultiRaftHost, shardId: number, withDigest = false) {
  const s = host.stats(shardId);
  return {
    shard_id: shardId,
    keys: s.keys,
    bytes: s.bytes,
    capacity_bytes: s.capacity,
    hits: s.hits,
    misses: s.misses,
    evictions: s.evictions,
    expirations: s.expirations,
    applied_index: s.appliedIndex,
    state_digest: withDigest ? host.replica(shardId).store.digest() : '',
    node_id: host.node,
    replica_id: s.replicaId,
    role: s.role,
    voters: host.replica(shardId).node.voters,
    learners: host.replica(shardId).node.learners,
    eviction: {
      active: s.policy,
      configured: s.policyHealth.configured,
      fallback_reason: s.policyHealth.fallbackReason,
      failures: s.policyHealth.failures,
      slow_victim_walks: s.policyHealth.slowWalks,
    },
    state: s.state,
    failure: s.failure ?? '',
  };
}
