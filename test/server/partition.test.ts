// Three node processes whose every peer link runs through a proxy of its own (`--peer-addresses`,
// as the chaos suite will route links through Toxiproxy). The leader of a shard is cut off by
// stalling its links both ways: the other two elect a leader and keep taking writes, the
// deposed leader never answers a read with a value older than a write acknowledged before the
// read was sent, and once healed it catches up.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LinkProxy } from '../support/link-proxy.ts';
import { ClusterCalls, type NodeProcess, ProcessCluster } from '../support/node-processes.ts';
import { until } from '../support/until.ts';

const IDS = ['n1', 'n2', 'n3'];
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
function callsTo(nodes: readonly NodeProcess[]): ClusterCalls {
  return new ClusterCalls(() => nodes.map((n) => n.address));
}

interface ShardState {
  readonly keys: number;
  readonly applied: number;
}

/** Keys and applied index of each shard replica on the node at `address`. */
async function shardsOf(address: string): Promise<Map<number, ShardState> | Error> {
  return cluster.calls.shardStats(address).then(
    (stats) =>
      new Map(
        stats.map((s: { shard_id: number; keys: string; applied_index: string }) => [
          s.shard_id,
          { keys: Number(s.keys), applied: Number(s.applied_index) },
        ]),
      ),
    (error: Error) => error,
  );
}

const sameShards = (a: Map<number, ShardState> | Error, b: Map<number, ShardState> | Error) =>
  a instanceof Map &&
  b instanceof Map &&
  [...b].every(
    ([shard, s]) => a.get(shard)?.keys === s.keys && a.get(shard)?.applied === s.applied,
  );

it("a shard's leader cut off from its peers: the others elect a leader and keep writing, the deposed leader serves no read older than an acknowledged write, and healed it catches up", async () => {
  const all = cluster.calls;
  await all.leader('Set', { key: 'warm-up', value: Buffer.from('x') });
  for (let i = 0; i < 20; i++)
    await all.leader('Set', { key: `before-${i}`, value: Buffer.from('old') });
  // Cut off the node that leads `before-0`'s shard now (the one that takes a write of it).
  const { address: cutAddress } = await all.leaderAt('Set', {
    key: 'before-0',
    value: Buffer.from('old'),
  });
  const cut = cluster.node(cutAddress);
  const majority = callsTo(cluster.nodes.filter((n) => n !== cut));

  const links = linksOf(cut.id);
  const acceptedBeforeCut = links.map((proxy) => proxy.accepted);
  for (const proxy of links) proxy.stall();
  const cutAt = performance.now();
  // From the cut on, `before-0` is read at the deposed leader again and again.
  let newAcknowledgedAt = Number.POSITIVE_INFINITY;
  const stale: string[] = [];
  const refusals = new Set<number>();
  let reading = true;
  const reader = (async () => {
    while (reading) {
      const sentAt = performance.now();
      const read = await all.at(cutAddress, 'Get', { key: 'before-0' }).catch((e) => e);
      if (read instanceof Error) refusals.add((read as grpc.ServiceError).code);
      else if (read.entry.value.toString() === 'old' && sentAt > newAcknowledgedAt)
        stale.push(`read sent ${Math.round(sentAt - newAcknowledgedAt)} ms after the write`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  // The majority side takes writes again, once it has elected a leader for the cut shard:
  // new values of old keys, and new keys.
  for (let i = 0; i < 20; i++) {
    for (const [key, value] of [
      [`before-${i}`, 'new'],
      [`during-${i}`, 'added'],
    ]) {
      const reply = await majority.leader('Set', { key, value: Buffer.from(value) });
      expect(reply.outcome).toBe('APPLIED');
      if (i === 0 && key === 'before-0') newAcknowledgedAt = performance.now();
    }
  }
  console.log(
    `cut ${cut.id}; 40 writes on the majority side done ${Math.round(performance.now() - cutAt)} ms after the cut`,
  );
  // Held until the keepalive timeout broke every link and each was dialled again into the
  // stall: reconnects must not let anything through either.
  await until(
    () =>
      links.every((proxy, i) => proxy.accepted > (acceptedBeforeCut[i] ?? 0)) ? true : undefined,
    30_000,
  ).finally(() => {
    reading = false;
  });
  await reader;
  expect(stale).toEqual([]);
  for (const code of refusals)
    expect([
      grpc.status.FAILED_PRECONDITION,
      grpc.status.UNAVAILABLE,
      grpc.status.DEADLINE_EXCEEDED,
    ]).toContain(code);

  // It really was cut off: it lacks the new keys.
  const other = cluster.nodes.find((n) => n !== cut) as NodeProcess;
  const [cutOff, majoritySide] = await Promise.all([shardsOf(cutAddress), shardsOf(other.address)]);
  expect(cutOff).toBeInstanceOf(Map);
  expect(majoritySide).toBeInstanceOf(Map);
  expect(sameShards(cutOff, majoritySide)).toBe(false);

  for (const proxy of linksOf(cut.id)) proxy.heal();
  const healedAt = performance.now();
  for (;;) {
    const [mine, theirs] = await Promise.all([shardsOf(cutAddress), shardsOf(other.address)]);
    if (sameShards(mine, theirs)) break;
    if (performance.now() - healedAt > 20_000)
      expect.fail(
        `not caught up: ${JSON.stringify(mine instanceof Map ? [...mine] : String(mine))}`,
      );
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  console.log(`caught up ${Math.round(performance.now() - healedAt)} ms after the heal`);
  // Its own replicas hold the new values (a stale read is served by the replica asked).
  for (let i = 0; i < 20; i++) {
    const read = await all.at(cutAddress, 'Get', { key: `before-${i}`, consistency: 'STALE' });
    expect(read.entry.value.toString()).toBe('new');
  }
}, 60_000);
