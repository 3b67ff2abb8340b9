// What the node's gRPC server accepts: the size of a request, per method, and how long it
// keeps connections and how many streams each may hold. The sizes follow from the API's
// own limits (src/cache/commands.ts, DEFAULT_LIMITS) and are documented in the .proto and
// the README ("Limits"). grpc-js bounds one size for the whole server, before it buffers a
// message; the strict decoding (src/protocol/strict-decoding.ts) refuses a request larger
// than its own method's bound before decoding it.
import type * as grpc from '@grpc/grpc-js';
import { DEFAULT_LIMITS } from '../cache/index.ts';
import type { CacheMethod } from '../protocol/proto.ts';

const KIB = 1024;
const MIB = 1024 * KIB;

/** Room in a request for what is not a key or a value: TTL, conditions, the write id. */
const FIELDS_BYTES = 64 * KIB;
/** protobuf's framing of one key (tag, length). */
const KEY_FRAMING_BYTES = 3;

/**
 * An MSET's pairs, in bytes on the wire, at most. At the key limit an MSET could name 1,000
 * pairs of a 1 KiB key and a 1 MiB value, about 1 GiB: far more than a shard holds (16 MiB
 * at the default node capacity, 256 MiB over 16 shards) or one Raft entry should carry. The
 * API bounds the whole request instead: 16 MiB, the default shard's capacity.
 */
export const MAX_MSET_BYTES = 16 * MIB;

const { maxKeyBytes, maxValueBytes, maxBatchKeys } = DEFAULT_LIMITS;
const singleKey = maxKeyBytes + FIELDS_BYTES;
const manyKeys = maxBatchKeys * (maxKeyBytes + KEY_FRAMING_BYTES) + FIELDS_BYTES;
const mset = MAX_MSET_BYTES + FIELDS_BYTES;

/** The largest request of each Cache method, in bytes (a Pipeline message holds any one). */
export const CACHE_REQUEST_LIMITS: Readonly<Record<CacheMethod | 'Pipeline' | 'Stats', number>> = {
  Get: singleKey,
  Ttl: singleKey,
  Expire: singleKey,
  Set: maxKeyBytes + maxValueBytes + FIELDS_BYTES,
  Del: manyKeys,
  MGet: manyKeys,
  MSet: mset,
  Pipeline: mset,
  Stats: FIELDS_BYTES,
  OpenSession: FIELDS_BYTES,
};

/** Admin requests name a scope, a node or a shard: small. */
export const ADMIN_REQUEST_LIMITS: Readonly<Record<string, number>> = {
  ClusterMap: FIELDS_BYTES,
  GetStats: FIELDS_BYTES,
  AddNode: FIELDS_BYTES,
  RemoveNode: FIELDS_BYTES,
  Rebalance: FIELDS_BYTES,
};

/** The largest message any service of the node takes: grpc-js refuses larger ones unread. */
export const MAX_RECEIVE_BYTES = Math.max(...Object.values(CACHE_REQUEST_LIMITS));

/**
 * The node's gRPC server options (README, "Limits"):
 * - a message larger than `MAX_RECEIVE_BYTES` is answered RESOURCE_EXHAUSTED as soon as its
 *   length prefix arrives, before it is buffered (and ends a Pipeline stream: a stream that
 *   declared such a length cannot be read past it);
 * - replies up to 64 MiB (an MGET of many large values; split larger reads);
 * - a connection without a call for 2 minutes is closed (GOAWAY; clients reconnect);
 * - every connection is pinged every minute (HTTP/2 PING) and closed when no answer comes
 *   in 20 s, so connections to vanished clients go;
 * - at most 256 streams at once per connection, and 64 MB of HTTP/2 session memory (beyond
 *   it, new streams are refused until it drains).
 */
export const PUBLIC_SERVER_OPTIONS: grpc.ServerOptions = {
  'grpc.max_receive_message_length': MAX_RECEIVE_BYTES,
  'grpc.max_send_message_length': 64 * MIB,
  'grpc.max_connection_idle_ms': 120_000,
  'grpc.keepalive_time_ms': 60_000,
  'grpc.keepalive_timeout_ms': 20_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.http2.min_ping_interval_without_data_ms': 5_000,
  'grpc.max_concurrent_streams': 256,
  'grpc-node.max_session_memory': 64,
};
