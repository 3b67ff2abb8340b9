// Property: whatever a peer sends — raft messages with a field of the wrong kind or out of
// range (NaN, negative, fractions, 1e300, strings), unknown or local message types (and
// `constructor` / `__proto__` as a type), senders and receivers that are not where they say,
// shards not hosted, entry lists huge or malformed, acknowledgements and commit indexes past
// the receiver's log, a `snap` without its data, frames that do not decode or break the wire —
// sent into a running cluster of three hosts over real TCP peer links on loopback, no host
// crashes and no replica fails, every shard still takes writes and serves linearizable reads,
// and in the end the replicas of every shard agree (same applied index, same state digest).
import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FrameKind, frameHeader } from '../../src/transport/peer-wire.ts';
import {
  type ForgedLink,
  type RawMessage,
  rawMessage,
  TCP_NODES,
  TCP_SHARDS,
  TcpHosts,
  TYPE_CODE,
} from '../support/tcp-hosts.ts';
import { until } from '../support/until.ts';
import { bytes, keyOf, text } from './host-cluster.ts';

let cluster: TcpHosts;
beforeAll(async () => {
  cluster = await TcpHosts.start({}, 7);
  await cluster.waitForLeaders();
});
afterAll(() => cluster.close());

/** Replica ids are placement order: n1 holds replica 1 of every shard, n2 replica 2... */
const replicaOf = (node: string) => TCP_NODES.indexOf(node as (typeof TCP_NODES)[number]) + 1;

const BAD_VALUES: unknown[] = [
  Number.NaN,
  -1,
  1.5,
  1e300,
  Number.POSITIVE_INFINITY,
  2 ** 53,
  '3',
  true,
  [1],
  { n: 1 },
];
const BAD_TYPES: unknown[] = [
  'constructor',
  '__proto__',
  'toString',
  'app',
  -1,
  16,
  255,
  1.5,
  Number.NaN,
  0, // hup: local to a node
  1, // beat: local to a node
  2, // prop: this host's followers never forward one
  TYPE_CODE.snap, // a snap on a raft link, without its data
];
/** Stands for a list of 200,000 things that are not entries (made when sent, not printed). */
const HUGE_LIST = 'a huge list';
const FIELDS = ['term', 'logTerm', 'index', 'commit', 'rejectHint', 'context', 'from', 'to'];

/** A message changed so that no correct peer could have sent it. */
type Mutation =
  | { readonly kind: 'field'; readonly field: string; readonly value: unknown }
  | { readonly kind: 'type'; readonly value: unknown }
  | { readonly kind: 'shard'; readonly value: unknown }
  | { readonly kind: 'sender-elsewhere' }
  | { readonly kind: 'entries'; readonly value: unknown }
  | { readonly kind: 'snapshot'; readonly value: unknown };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({
    kind: fc.constant('field' as const),
    field: fc.constantFrom(...FIELDS),
    value: fc.constantFrom(...BAD_VALUES),
  }),
  fc.record({ kind: fc.constant('type' as const), value: fc.constantFrom(...BAD_TYPES) }),
  fc.record({
    kind: fc.constant('shard' as const),
    value: fc.constantFrom(2 ** 53, -1, Number.NaN, 'constructor', 1e300),
  }),
  fc.constant({ kind: 'sender-elsewhere' as const }),
  fc.record({
    kind: fc.constant('entries' as const),
    value: fc.constantFrom<unknown>(
      HUGE_LIST,
      [[Number.NaN, 1, 0, Buffer.from('x')]],
      [[1, 1, 7, Buffer.from('x')]],
      [[1, 1, 0, 'not bytes']],
      [[1, 5, 0, Buffer.from('x')]], // not after the append's index
      [[1, 1, 1, Buffer.from('{"voters":"all"}')]], // a configuration that is none
      'entries',
    ),
  }),
  fc.record({
    kind: fc.constant('snapshot' as const),
    value: fc.constantFrom<unknown>([1e6, Number.NaN, [1], []], [5, 1, 'all', []], 'x', [1, 2]),
  }),
);

/** A message as a peer would send it, in term 0: stale everywhere, so harmless unchanged. */
const template = fc.record({
  shardId: fc.constantFrom(...TCP_SHARDS),
  type: fc.integer({ min: TYPE_CODE.app, max: 14 }),
  logTerm: fc.nat(3),
  index: fc.nat(50),
  commit: fc.nat(50),
  reject: fc.boolean(),
  rejectHint: fc.nat(50),
  context: fc.nat(5),
});

/** What one forged frame holds. */
type Forgery =
  | { readonly kind: 'messages'; readonly messages: (readonly [MessageTemplate, Mutation])[] }
  | { readonly kind: 'past-the-log'; readonly what: 'ack' | 'commit' | 'snap' }
  | {
      readonly kind: 'junk';
      readonly frame: 'bytes' | 'not-a-list' | 'bad-tuple' | 'chunk' | 'huge';
    }
  | { readonly kind: 'bytes'; readonly payload: Uint8Array };

type MessageTemplate = typeof template extends fc.Arbitrary<infer T> ? T : never;

const forgery: fc.Arbitrary<Forgery> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('messages' as const),
      messages: fc.array(fc.tuple(template, mutation), { minLength: 1, maxLength: 10 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('past-the-log' as const),
      what: fc.constantFrom('ack' as const, 'commit' as const, 'snap' as const),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('junk' as const),
      frame: fc.constantFrom(
        'bytes' as const,
        'not-a-list' as const,
        'bad-tuple' as const,
        'chunk' as const,
        'huge' as const,
      ),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('bytes' as const),
      payload: fc.uint8Array({ minLength: 1, maxLength: 64 }),
    }),
  },
);

/** The message of `t` sent from `sender` to `target`, with `m` applied. */
function mutated(t: MessageTemplate, m: Mutation, sender: string, target: string): RawMessage {
  const fields: Record<string, unknown> = {
    ...t,
    from: replicaOf(sender),
    to: replicaOf(target),
    term: 0,
  };
  if (m.kind === 'field') fields[m.field] = m.value;
  else if (m.kind === 'type') fields.type = m.value;
  else if (m.kind === 'shard') fields.shardId = m.value;
  else if (m.kind === 'sender-elsewhere') fields.from = replicaOf(target);
  else if (m.kind === 'entries')
    fields.entries = m.value === HUGE_LIST ? new Array(200_000).fill(0) : m.value;
  else fields.snapshot = m.value;
  return rawMessage(fields as Parameters<typeof rawMessage>[0]);
}

/**
 * A well-typed message in the current term that no correct peer sends: an acknowledgement
 * past the leader's log, a commit index past the follower's, a snap whose data never came.
 * Sent from the node it names as the sender, into the one it names as the receiver.
 */
function pastTheLog(
  what: 'ack' | 'commit' | 'snap',
  linkTo: (to: string, as: string) => ForgedLink,
): { link: ForgedLink; message: RawMessage } {
  const shardId = TCP_SHARDS[what.length % TCP_SHARDS.length] as number;
  const leaderNode = cluster.leaderOf(shardId) as string;
  const followerNode = TCP_NODES.find((n) => n !== leaderNode) as string;
  const leader = cluster.host(leaderNode).replica(shardId).node;
  const follower = cluster.host(followerNode).replica(shardId).node;
  const base = { shardId, term: leader.term };
  if (what === 'ack') {
    return {
      link: linkTo(leaderNode, followerNode),
      message: rawMessage({
        ...base,
        type: TYPE_CODE.appResp,
        from: follower.id,
        to: leader.id,
        index: leader.log.lastIndex() + 1_000,
      }),
    };
  }
  return {
    link: linkTo(followerNode, leaderNode),
    message: rawMessage({
      ...base,
      type: what === 'commit' ? TYPE_CODE.heartbeat : TYPE_CODE.snap,
      from: leader.id,
      to: follower.id,
      commit: what === 'commit' ? follower.log.lastIndex() + 100 : 0,
      snapshot: what === 'snap' ? [1e6, leader.term, [1, 2, 3], []] : null,
    }),
  };
}

function sendJunk(
  link: ForgedLink,
  frame: 'bytes' | 'not-a-list' | 'bad-tuple' | 'chunk' | 'huge',
) {
  if (frame === 'bytes') link.frame(FrameKind.batch, Buffer.from([1, 0xc1, 0xff, 0x00]));
  else if (frame === 'not-a-list') link.batch({ __proto__: [1], constructor: 'Array' });
  else if (frame === 'bad-tuple') link.batch([[1, 3, 1, 2]]);
  else if (frame === 'chunk') link.frame(FrameKind.chunk, Buffer.from('data'));
  else link.socket.write(frameHeader(FrameKind.batch, 60 << 20));
}

/** Bad messages dropped and connections closed for a fault, over the whole cluster. */
function totalFaults(): number {
  return TCP_NODES.reduce(
    (sum, n) =>
      sum +
      (cluster.transports.get(n)?.faults ?? 0) +
      TCP_SHARDS.reduce((s, id) => s + cluster.host(n).replica(id).faults, 0),
    0,
  );
}

/** A write and a linearizable read on every shard, at its leader; every replica running. */
async function expectServing(round: number): Promise<void> {
  await cluster.waitForLeaders();
  for (const shardId of TCP_SHARDS) {
    const leader = cluster.host(cluster.leaderOf(shardId) as string);
    const key = keyOf(leader, shardId, `fuzz${round % 5}-`);
    const value = `v${round}`;
    const outcome = await leader.set({ op: 'set', key, value: bytes(value) });
    expect(outcome.status).toBe('applied');
    expect(text((await leader.get(key))?.value)).toBe(value);
  }
  for (const node of TCP_NODES)
    for (const shardId of TCP_SHARDS)
      expect(cluster.host(node).stats(shardId).state).toBe('running');
}

it('property: no frame from a peer crashes a host or fails a replica; writes, reads and agreement hold', async () => {
  let round = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.array(forgery, { minLength: 1, maxLength: 15 }),
      fc.constantFrom(...TCP_NODES),
      fc.constantFrom(...TCP_NODES),
      async (forgeries, target, claimed) => {
        round++;
        const sender =
          claimed === target ? (TCP_NODES.find((n) => n !== target) as string) : claimed;
        const opened = new Map(
          TCP_NODES.map((n) => [n, cluster.transports.get(n)?.acceptedConnections ?? 0]),
        );
        // One link per pair of nodes (a node takes two raft links from one peer); a new one
        // once a forged frame closed it.
        const links = new Map<string, ForgedLink>();
        const linkTo = (to: string, as: string) => {
          let l = links.get(`${to}<${as}`);
          if (l === undefined || l.closed) {
            l = cluster.forge(to, as);
            links.set(`${to}<${as}`, l);
          }
          return l;
        };
        // A link is reused only once its earlier frames were handled (and it survived them).
        await linkTo(target, sender).settled();
        for (const f of forgeries) {
          // Each frame is sent alone, and must be seen to be refused: every message of it
          // dropped, or its link closed, each counted as a fault and logged.
          const before = totalFaults();
          let l: ForgedLink;
          let messages = 1;
          if (f.kind === 'messages') {
            l = linkTo(target, sender);
            l.batch(f.messages.map(([t, m]) => mutated(t, m, sender, target)));
            messages = f.messages.length;
          } else if (f.kind === 'past-the-log') {
            const forged = pastTheLog(f.what, linkTo);
            l = forged.link;
            l.batch([forged.message]);
          } else {
            l = linkTo(target, sender);
            if (f.kind === 'junk') sendJunk(l, f.frame);
            else l.frame(FrameKind.batch, f.payload);
          }
          await l.settled();
          const faults = totalFaults() - before;
          expect(faults).toBeGreaterThanOrEqual(l.closed ? 1 : messages);
        }
        await expectServing(round);
        for (const l of links.values()) l.socket.destroy();
        // The forged connections are gone before the next round opens its own.
        await until(() =>
          TCP_NODES.every(
            (n) => (cluster.transports.get(n)?.acceptedConnections ?? 0) <= (opened.get(n) ?? 0),
          )
            ? true
            : undefined,
        );
      },
    ),
    { numRuns: 40, seed: 21, endOnFailure: true },
  );
  expect(cluster.log.at('error')).toEqual([]);
  expect(cluster.log.at('warn', 'refused a peer link')).toEqual([]);
  // Agreement: once idle, every replica of a shard is at one applied index with one digest.
  for (const shardId of TCP_SHARDS) {
    const digests = await until(() => {
      const replicas = TCP_NODES.map((n) => cluster.host(n).replica(shardId));
      if (new Set(replicas.map((r) => r.store.appliedIndex)).size !== 1) return undefined;
      return new Set(replicas.map((r) => r.store.digest()));
    }, 10_000);
    expect(digests.size).toBe(1);
  }
});
