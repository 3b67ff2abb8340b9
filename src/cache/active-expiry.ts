// The leader's active expiry, after Redis's expire cycle: sample entries that have an expiry,
// collect conditional deletes for the expired ones, and sample again while more than a
// quarter of a sample was expired, within a time budget. It returns commands for the host
// to propose (in one entry, with `encodeEntry`); it changes nothing itself, and a delete
// that races a newer write of the same key is a no-op because it names the version it saw.
// Followers never run it: they hide expired entries on read and delete them when the
// leader's commands apply.
import type { ConditionalDeleteCommand } from './commands.ts';
import { NO_WRITE_ID } from './commands.ts';
import type { StoreEntries } from './store.ts';

export interface ExpiryCycleOptions {
  /** The leader's clock: entries expiring at or before it are deleted. */
  now: number;
  /** Uniform in [0, 1): injected, so a seeded run replays. */
  random: () => number;
  /** A monotonic clock in ms for the budget (e.g. performance.now). */
  elapsed: () => number;
  /** Time budget of one cycle in ms. */
  budgetMs?: number;
  /** Entries sampled per round (Redis: 20). */
  sampleSize?: number;
  /** Upper bound on deletes per cycle, to keep one entry small. */
  maxDeletes?: number;
}

/** Sampling continues while more than this fraction of a round was expired. */
const REPEAT_ABOVE = 0.25;

export function expiryCycle(
  entries: StoreEntries,
  options: ExpiryCycleOptions,
): ConditionalDeleteCommand[] {
  const { now, random, elapsed } = options;
  const budgetMs = options.budgetMs ?? 1;
  const sampleSize = options.sampleSize ?? 20;
  const maxDeletes = options.maxDeletes ?? 1000;
  const started = elapsed();
  const chosen = new Set<number>();
  const deletes: ConditionalDeleteCommand[] = [];
  for (;;) {
    const population = entries.ttlCount;
    if (population === 0) break;
    const rounds = Math.min(sampleSize, population);
    let found = 0;
    for (let i = 0; i < rounds && deletes.length < maxDeletes; i++) {
      const slot = entries.ttlSlotAt(Math.floor(random() * population));
      if (chosen.has(slot) || entries.expiresAt(slot) > now) continue;
      chosen.add(slot);
      found++;
      deletes.push({
        op: 'expire-delete',
        ...NO_WRITE_ID,
        key: entries.key(slot),
        version: entries.version(slot),
      });
    }
    if (found <= rounds * REPEAT_ABOVE || deletes.length >= maxDeletes) break;
    if (elapsed() - started >= budgetMs) break;
  }
  return deletes;
}
