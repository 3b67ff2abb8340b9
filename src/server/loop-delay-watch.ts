import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Logger } from 'pino';

export interface LoopDelayWatchOptions {
  readonly logger: Logger;
  /** The shortest election timeout, ms: a stall near it can start needless elections. */
  readonly electionTimeoutMs: number;
  /** How often to look, ms. */
  readonly intervalMs?: number;
}

/**
 * Watches the event loop's delay (timers and ticks stall while the loop or the garbage
 * collector is busy, and election timers with them) and warns, with the numbers, when the
 * worst delay of an interval reaches half the election timeout: past that, followers may
 * start elections against a healthy leader. Returns a function that stops it.
 */
export function watchLoopDelay({
  logger,
  electionTimeoutMs,
  intervalMs = 1_000,
}: LoopDelayWatchOptions): () => void {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  const threshold = electionTimeoutMs / 2;
  const timer = setInterval(() => {
    const maxMs = histogram.max / 1e6;
    if (maxMs >= threshold) {
      logger.warn(
        {
          maxDelayMs: Math.round(maxMs),
          p99DelayMs: Math.round(histogram.percentile(99) / 1e6),
          electionTimeoutMs,
        },
        'event loop delay threatens elections',
      );
    }
    histogram.reset();
  }, intervalMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    histogram.disable();
  };
}
