// Three node processes whose every peer link runs through a proxy of its own (`--peer-addresses`,
// as the chaos suite will route links through Toxiproxy). One node is cut off by stalling its
// links both ways: the other two keep taking writes, the cut-off node serves no linearizable
// read, and once healed it catches up.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LinkProxy } from '../support/link-proxy.ts';
import { ClusterCalls, ProcessCluster } from '../support/node-processes.ts';

const IDS = ['n1', 'n2', 'n3'];
const CUT = 'n3';
/** The proxy of each directed link, by `from>to`. */
const proxies = new Map<string, LinkProxy>();
let cluster: ProcessCluster;

beforeAll(async () => {
  cluster = await ProcessCluster.start({
    ids: IDS,
    args: ['--shards', '4'],
    argsOf: async (id, addresses) => {
      const links: string[] = [];
      for (const other of IDS.filter((node) => node !== id)) {
        const proxy = await LinkProxy.start(addresses.get(other) as string);
        proxies.set(`${id}>${other}`, proxy);
        links.push(`${other}=${proxy.address}`);
      }
      return ['--peer-addresses', links.join(',')];
    },
  });
}, 30_000);

afterAll(() => {
  cluster?.stop();
  for (const proxy of proxies.values()) proxy.close();
});

/** The proxies of every link to or from `node`. */
const linksOf = (node: string) =>
  [...proxies].filter(([link]) => link.split('>').includes(node)).map(([, proxy]) => proxy);

/** Calls that only reach these nodes (the test's own connections bypass the proxies). */
function callsTo(nodes: readonly string[]): ClusterCalls {
  return new ClusterCalls(() =>
    cluster.nodes.filter((n) => nodes.includes(n.id)).map((n) => n.address),
  );
}

/** All keys of a node (keys per shard summed); an error counts as none. */
const total = (keys: Map<number, number> | Error) =>
  keys instanceof Map ? [...keys.values()].reduce((sum, n) => sum + n, 0) : 0;

/** Keys per shard on the node at `address`, or the error that came instead. */
async function keysByShard(address: string): Promise<Map<number, number> | Error> {
  return cluster.calls.shardStats(address).then(
    (stats) =>
      new Map(stats.map((s: { shard_id: number; keys: string }) => [s.shard_id, Number(s.keys)])),
    (error: Error) => error,
  );
}

it('a node cut off from its peers: the majority keeps writing, the cut-off node serves no stale linearizable read, and healed it catches up', async () => {
  const all = cluster.calls;
  await all.leader('Set', { key: 'warm-up', value: Buffer.from('x') });
  for (let i = 0; i < 20; i++)
    await all.leader('Set', { key: `before-${i}`, value: Buffer.from('old') });

  for (const proxy of linksOf(CUT)) proxy.stall();
  const cutAt = performance.now();
  const majority = callsTo(IDS.filter((id) => id !== CUT));
  // Every shard takes writes again on the majority side, whatever the cut node led: new
  // values of old keys, and new keys.
  for (let i = 0; i < 20; i++) {
    for (const [key, value] of [
      [`before-${i}`, 'new'],
      [`during-${i}`, 'added'],
    ]) {
      const reply = await majority.leader('Set', { key, value: Buffer.from(value) });
      expect(reply.outcome).toBe('APPLIED');
    }
  }
  console.log(
    `40 writes on the majority side done ${Math.round(performance.now() - cutAt)} ms after the cut`,
  );

  // The cut-off node answers no linearizable read with the old value: it cannot confirm it
  // still leads, so it refuses (or names another leader, or runs out of time).
  const cutAddress = cluster.nodes.find((n) => n.id === CUT)?.address as string;
  for (let i = 0; i < 20; i += 5) {
    const read = await all.at(cutAddress, 'Get', { key: `before-${i}` }).catch((e) => e);
    if (read instanceof Error) {
      expect([
        grpc.status.FAILED_PRECONDITION,
        grpc.status.UNAVAILABLE,
        grpc.status.DEADLINE_EXCEEDED,
      ]).toContain((read as grpc.ServiceError).code);
    } else expect(read.entry.value.toString()).toBe('new');
  }
  // Held past the keepalive timeout, so links are cut and reopened into the stall too.
  const heldMs = 7_000 - (performance.now() - cutAt);
  if (heldMs > 0) await new Promise((resolve) => setTimeout(resolve, heldMs));

  const other = cluster.nodes.find((n) => n.id !== CUT)?.address as string;
  // It really was cut off: it lacks the new keys.
  const [cutOff, majoritySide] = await Promise.all([keysByShard(cutAddress), keysByShard(other)]);
  expect(total(cutOff)).toBeLessThan(total(majoritySide));

  for (const proxy of linksOf(CUT)) proxy.heal();
  const healedAt = performance.now();
  for (;;) {
    const [mine, theirs] = await Promise.all([keysByShard(cutAddress), keysByShard(other)]);
    const caughtUp =
      mine instanceof Map &&
      theirs instanceof Map &&
      [...theirs].every(([shard, keys]) => mine.get(shard) === keys);
    if (caughtUp) break;
    if (performance.now() - healedAt > 20_000)
      expect.fail(`not caught up: ${String(mine instanceof Map ? [...mine] : mine)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  console.log(`caught up ${Math.round(performance.now() - healedAt)} ms after the heal`);
  // Its own replicas hold the new values (a stale read is served by the replica asked).
  for (let i = 0; i < 20; i++) {
    const read = await all.at(cutAddress, 'Get', { key: `before-${i}`, consistency: 'STALE' });
    expect(read.entry.value.toString()).toBe('new');
  }
}, 60_000);
