/** Counters of what a client did, since it was created. */
export interface ClientMetrics {
  /** Calls started (a multi-key call over n shards counts n). */
  calls: number;
  /** Attempts after the first, for any reason. */
  retries: number;
  /** Retries of a write that may already have applied (same write id, so it applies once). */
  ambiguousRetries: number;
  /** Not-leader answers followed to the leader they named. */
  redirects: number;
  /** Cluster maps fetched. */
  mapFetches: number;
  /** Writes to Pipeline streams: each carries every request queued in one event-loop turn. */
  pipelineWrites: number;
  /** Requests sent on Pipeline streams. */
  pipelinedRequests: number;
}

export function newMetrics(): ClientMetrics {
  return {
    calls: 0,
    retries: 0,
    ambiguousRetries: 0,
    redirects: 0,
    mapFetches: 0,
    pipelineWrites: 0,
    pipelinedRequests: 0,
  };
}
