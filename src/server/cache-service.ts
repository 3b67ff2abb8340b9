// The public `Cache` service (proto/raftcache.proto) over a node's multi-raft host: decode the
// request, hand it to the host, encode the reply; every error leaves as one gRPC status
// (status.ts). No cache or raft logic lives here.
import * as grpc from '@grpc/grpc-js';
import { type EntryInfo, InvalidCommandError } from '../cache/index.ts';
import { METADATA_SHARD } from '../cluster/cluster-map.ts';
import type { MultiRaftHost } from '../shard/multi-raft-host.ts';
import type { Consistency } from '../shard/replica.ts';
import { CACHE_OPERATIONS, type CacheMethod } from './proto.ts';
import { ReplyWriter } from './reply-writer.ts';
import {
  delRequest,
  expireRequest,
  msetRequest,
  outcomeReply,
  setRequest,
  settled,
  type WireDelRequest,
  type WireExpireRequest,
  type WireMSetRequest,
  type WireSetRequest,
  type WriteIdentity,
  writeIdentity,
} from './requests.ts';
import { LEADER_METADATA_KEY, toStatus } from './status.ts';

export interface CacheServiceContext {
  readonly host: MultiRaftHost;
  /** The address clients should use for a node (for the not-leader hint). */
  readonly addressOf: (node: string) => string | undefined;
  /** A fresh write identity, for writes whose client sent none. */
  readonly nextWriteId: () => WriteIdentity;
}

type WireConsistency = 'LINEARIZABLE' | 'LEASE' | 'STALE';
const CONSISTENCY: Readonly<Record<WireConsistency, Consistency>> = {
  LINEARIZABLE: 'linearizable',
  LEASE: 'lease',
  STALE: 'stale',
};

// biome-ignore lint/suspicious/noExplicitAny: requests arrive as proto-loader decodes them
type Wire = any;

type Operation = (request: Wire) => Promise<unknown>;
type OperationName = CacheMethod;

/** Pipeline requests name their operation by the `oneof` field set. */
const PIPELINED: Readonly<Record<string, OperationName | undefined>> = CACHE_OPERATIONS;

/** A unary handler from an operation; any error becomes its status. */
function unary(context: CacheServiceContext, run: Operation): grpc.handleUnaryCall<Wire, unknown> {
  return (call, done) => {
    run(call.request).then(
      (reply) => done(null, reply),
      (error: unknown) => done(toStatus(error, context.addressOf)),
    );
  };
}

/**
 * The `Pipeline` stream: every request runs at once (the host batches what arrives in one
 * turn into one log entry and one read round), and its reply goes back tagged as soon as it
 * is ready, in any order, those of one turn together (reply-writer.ts). An error answers
 * that request alone; the stream goes on. When the client reads slower than replies come,
 * reading pauses until the stream drains.
 */
function pipeline(
  context: CacheServiceContext,
  operations: Readonly<Record<OperationName, Operation>>,
) {
  return (call: grpc.ServerDuplexStream<Wire, unknown>) => {
    let inFlight = 0;
    let ended = false;
    const finishIfDone = () => {
      if (ended && inFlight === 0) call.end();
    };
    const replies = new ReplyWriter(call);
    const reply = (message: unknown) => replies.write(message);
    call.on('data', (request: Wire) => {
      const tag = request.tag ?? '0';
      const name = PIPELINED[request.request as string];
      if (!name) {
        reply({
          tag,
          status: {
            code: grpc.status.INVALID_ARGUMENT,
            message: 'a pipeline request needs one operation',
          },
        });
        return;
      }
      inFlight++;
      operations[name](request[request.request])
        .then(
          (result) => reply({ tag, [request.request]: result }),
          (error: unknown) => {
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
          },
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
    call.on('error', () => {});
  };
}

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
  const id = (wire: Wire) => writeIdentity(wire.write_id, context.nextWriteId);
  const consistency = (wire: Wire) => {
    const mode = CONSISTENCY[(wire.consistency ?? 'LINEARIZABLE') as WireConsistency];
    if (mode === undefined)
      throw new InvalidCommandError(`unknown consistency ${wire.consistency}`);
    return mode;
  };
  const operations: Record<OperationName, Operation> = {
    Get: async (r) => entryReply(await host.get(r.key ?? '', { consistency: consistency(r) })),
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
      const values = await host.mget(r.keys ?? [], { consistency: consistency(r) });
      return {
        values: values.map((value) =>
          value ? { found: true, entry: { value } } : { found: false },
        ),
      };
    },
    Ttl: async (r) => ({ ttl_ms: await host.ttl(r.key ?? '', { consistency: consistency(r) }) }),
  };
  return {
    ...Object.fromEntries(
      Object.entries(operations).map(([name, run]) => [name, unary(context, run)]),
    ),
    Pipeline: pipeline(context, operations),
    Stats: unary(context, async () => ({
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
    state: s.state,
    failure: s.failure ?? '',
  };
}
