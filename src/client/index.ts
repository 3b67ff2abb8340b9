// raftcache's TypeScript SDK: the package's main entry.
export {
  CacheClient,
  type CacheClientOptions,
  type CallOptions,
  type Consistency,
  type Entry,
  type EvictionPolicyStats,
  type MSetOptions,
  type MSetResult,
  type NodeStats,
  type ReadOptions,
  type SetOptions,
  type ShardStats,
  type WriteResult,
} from './cache-client.ts';
export type { ClusterMapView, ClusterNode, ShardPlacement } from './cluster-map.ts';
export {
  BulkheadFullError,
  CapacityExceededError,
  CircuitOpenError,
  ClientClosedError,
  ClusterUnreachableError,
  DeadlineExceededError,
  InternalError,
  InvalidArgumentError,
  NotLeaderError,
  OutcomeUnknownError,
  PartialFailureError,
  RaftcacheError,
  SessionExpiredError,
  type ShardOutcome,
  UnavailableError,
  UnsupportedError,
} from './errors.ts';
export type { ClientMetrics } from './metrics.ts';
export type { TransportMode } from './node-pool.ts';
export type { ResilienceOptions } from './resilience.ts';
export type { Value } from './values.ts';
