// The public `Cache` service (proto/raftcache.proto) over a node's multi-raft host: decode the
// request, hand it to the host, encode the reply; every error leaves as one gRPC status
// (status.ts). No cache or raft logic lives here.
import type * as grpc from '@grpc/grpc-js';
import type { EntryInfo } from '../cache/index.ts';
import type { MultiRaftHost } from '../shard/multi-raft-host.ts';
import type { Consistency } from '../shard/replica.ts';
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
import { toStatus } from './status.ts';

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

/** A unary handler from an async function; any error becomes its status. */
function unary<Reply>(
  context: CacheServiceContext,
  run: (request: Wire) => Promise<Reply>,
): grpc.handleUnaryCall<Wire, Reply> {
  return (call, done) => {
    run(call.request).then(
      (reply) => done(null, reply),
      (error: unknown) => done(toStatus(error, context.addressOf)),
    );
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
  const consistency = (wire: Wire) =>
    CONSISTENCY[(wire.consistency ?? 'LINEARIZABLE') as WireConsistency];
  return {
    Get: unary(context, async (r) =>
      entryReply(await host.get(r.key ?? '', { consistency: consistency(r) })),
    ),
    Set: unary(context, async (r: WireSetRequest) =>
      outcomeReply(settled(await host.set(setRequest(r, id(r))))),
    ),
    Del: unary(context, async (r: WireDelRequest) => {
      const outcome = settled(await host.del(delRequest(r, id(r))));
      return {
        ...outcomeReply(outcome),
        removed: outcome.status === 'applied' ? outcome.count : 0,
      };
    }),
    MSet: unary(context, async (r: WireMSetRequest) =>
      outcomeReply(settled(await host.mset(msetRequest(r, id(r))))),
    ),
    Expire: unary(context, async (r: WireExpireRequest) =>
      outcomeReply(settled(await host.expire(expireRequest(r, id(r))))),
    ),
    MGet: unary(context, async (r) => {
      const values = await host.mget(r.keys ?? [], { consistency: consistency(r) });
      return {
        values: values.map((value) =>
          value ? { found: true, entry: { value } } : { found: false },
        ),
      };
    }),
    Ttl: unary(context, async (r) => ({
      ttl_ms: await host.ttl(r.key ?? '', { consistency: consistency(r) }),
    })),
    Stats: unary(context, async () => ({
      shards: host.shardIds.map((shardId) => {
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
        };
      }),
    })),
  };
}
