import { expect, it } from 'vitest';
import { CacheStore, snapshotChunks } from '../../src/cache/index.ts';
import { SeededRandom } from '../../src/raft/random.ts';
import { message } from '../../src/raft/types.ts';
import { Replica } from '../../src/shard/replica.ts';
import type { SnapshotTransfer } from '../../src/transport/transport.ts';

/** A leader's snapshot at `index`, as the transport hands it to a follower. */
function transferAt(index: number, term: number): SnapshotTransfer {
  const store = new CacheStore({ capacityBytes: 1 << 20 });
  store.skip(index);
  const snapshot = { index, term, conf: { voters: [1, 2, 3], learners: [] } };
  const chunks = snapshotChunks(store);
  return {
    shardId: 1,
    message: message({ type: 'snap', from: 1, to: 2, term, snapshot }),
    snapshot,
    chunks: (async function* () {
      yield* chunks;
    })(),
  };
}

it('installs the snapshot its core took, not a stale one refused while that one waited', async () => {
  const follower = new Replica({
    shardId: 1,
    replicaId: 2,
    voters: [1, 2, 3],
    capacityBytes: 1 << 20,
    random: new SeededRandom(1),
    now: () => Date.now(),
    monotonic: () => performance.now(),
    tickMs: 10,
    electionTicks: 10,
    heartbeatTicks: 1,
    leaseDriftMarginMs: 20,
    snapshotEvery: 10_000,
    snapshotEveryBytes: 2 << 20,
    snapshotKeepEntries: 1_000,
    snapshotKeepBytes: 2 << 20,
    snapshotCatchUpBytes: 64 << 20,
    expiryEveryTicks: 10,
    maxEntryBytes: 1 << 20,
    nodeOf: (id) => `n${id}`,
    sendSnapshot: () => Promise.resolve(),
    wake: () => {},
  });
  await follower.receiveSnapshot(transferAt(100, 2));
  // An older transfer (from a deposed leader, or a retry) lands before the next Ready pass.
  await follower.receiveSnapshot(transferAt(90, 2));
  while (follower.processReady(() => {})) {}
  expect(follower.store.appliedIndex).toBe(100);
  expect(follower.stats().snapshotsInstalled).toBe(1);
});
