// Metadata keys of the public API (proto/raftcache.proto, "Errors").

/** Trailing metadata key naming the leader of the key's shard, on FAILED_PRECONDITION. */
export const LEADER_METADATA_KEY = 'raftcache-leader';
