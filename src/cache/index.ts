// The public surface of the cache state machine, for the raft host (src/shard) and the server.
export { type ExpiryCycleOptions, expiryCycle } from './active-expiry.ts';
export { DEFAULT_SESSION_LIMITS, type SessionLimits } from './client-sessions.ts';
export {
  decodeEntry,
  ENTRY_FORMAT_VERSION,
  type EntryPayload,
  encodeEntry,
  SNAPSHOT_FORMAT_VERSION,
} from './codec.ts';
export * from './commands.ts';
export * from './errors.ts';
export type { EntryTableView, EvictionPolicy } from './eviction-policy.ts';
export {
  type LoadPluginOptions,
  loadPolicyFactory,
  type PluginModule,
  type PolicyFactory,
  type PolicyRegistry,
} from './plugin-loader.ts';
export {
  DEFAULT_SLOW_WALKS_TO_FALLBACK,
  DEFAULT_VICTIMS_BUDGET_MS,
  GuardedPolicy,
  POLICY_HOOKS,
  type PolicyFallbackEvent,
  type PolicyGuardOptions,
  type PolicyHealth,
  type PolicyHook,
} from './policy-guard.ts';
export {
  type PlannedEntry,
  type PreparedEntry,
  type PrepareOptions,
  planEntry,
  prepare,
  toCommand,
} from './prepare.ts';
export {
  beginSnapshot,
  DEFAULT_CHUNK_BYTES,
  type RestoreOptions,
  readSnapshot,
  restoreSnapshot,
  type SnapshotContents,
  SnapshotRestorer,
  type SnapshotStream,
  snapshotChunks,
} from './snapshot.ts';
export {
  type ApplyResult,
  type CacheStats,
  CacheStore,
  type CacheStoreOptions,
  type EntryInfo,
  type StoreEntries,
} from './store.ts';
