// Requests whose bytes are not valid protobuf for their message, sent over raw HTTP/2 to a real
// node: each is refused with INVALID_ARGUMENT naming the problem, and none is applied.
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CACHE_REQUEST_LIMITS, MAX_RECEIVE_BYTES } from '../../src/server/grpc-limits.ts';
import { encode, rawCall } from '../support/raw-grpc.ts';
import { startTestNode, type TestNode } from '../support/test-node.ts';

let node: TestNode;

beforeAll(async () => {
  node = await startTestNode();
});

afterAll(async () => {
  await node.node.close();
});

type Service = 'Cache' | 'Admin';
const bytes = (...values: number[]) => Buffer.from(values);

/** Cases every message gets: field 1 (known or not) and field 15 (unknown everywhere). */
const COMMON: Readonly<Record<string, Buffer>> = {
  'a length-delimited field declaring 10 bytes more than sent': bytes(0x0a, 13, 0x61, 0x62, 0x63),
  'wire type 6': bytes(0x0e, 0),
  'wire type 7': bytes(0x0f, 1),
  'wire type 7 after a valid field': bytes(0x78, 1, 0x0f),
  'a varint of 11 bytes': bytes(0x78, ...new Array(10).fill(0xff), 0x01),
  'a varint cut short': bytes(0x78, 0xff),
  'a fixed64 cut short': bytes(0x79, 1, 2, 3),
  'a fixed32 cut short': bytes(0x7d, 1),
  'field number 0': bytes(0x00, 1),
  'an end of group without its start': bytes(0x7c),
  'a group never ended': bytes(0x7b, 0x08, 1),
};

/** Per method: a known field sent with another wire type, and invalid UTF-8 in a string. */
const METHODS: readonly {
  readonly service: Service;
  readonly method: string;
  readonly wrongWireType?: Buffer;
  readonly invalidUtf8?: Buffer;
}[] = [
  {
    service: 'Cache',
    method: 'Get',
    wrongWireType: bytes(0x0d, 1, 2, 3, 4),
    invalidUtf8: bytes(0x0a, 2, 0xff, 0xfe),
  },
  {
    service: 'Cache',
    method: 'Set',
    wrongWireType: bytes(0x0d, 1, 2, 3, 4),
    invalidUtf8: bytes(0x0a, 2, 0xc3, 0x28),
  },
  {
    service: 'Cache',
    method: 'Del',
    wrongWireType: bytes(0x08, 1),
    invalidUtf8: bytes(0x0a, 1, 0x80),
  },
  {
    service: 'Cache',
    method: 'MGet',
    wrongWireType: bytes(0x15, 1, 2, 3, 4),
    invalidUtf8: bytes(0x0a, 3, 0xed, 0xa0, 0x80),
  },
  {
    service: 'Cache',
    method: 'MSet',
    wrongWireType: bytes(0x0a, 2, 0x08, 1),
    invalidUtf8: bytes(0x0a, 4, 0x0a, 2, 0xff, 0xfe),
  },
  {
    service: 'Cache',
    method: 'Expire',
    wrongWireType: bytes(0x18, 1, 0x0a, 1, 0x61, 0x12, 0),
    invalidUtf8: bytes(0x0a, 1, 0xff),
  },
  {
    service: 'Cache',
    method: 'Ttl',
    wrongWireType: bytes(0x12, 0),
    invalidUtf8: bytes(0x0a, 1, 0xfe),
  },
  { service: 'Cache', method: 'Stats' },
  { service: 'Admin', method: 'ClusterMap' },
  {
    service: 'Admin',
    method: 'GetStats',
    wrongWireType: bytes(0x0a, 0),
    invalidUtf8: bytes(0x12, 1, 0xff),
  },
];

/** The applied index of every shard this node holds: it moves whenever anything is applied. */
async function appliedIndexes(): Promise<string[]> {
  const { replies, status } = await rawCall(node.address, 'Cache', 'Stats', [
    encode('Cache', 'Stats', {}),
  ]);
  expect(status).toBe(grpc.status.OK);
  return replies[0].shards.map((s: { applied_index: string }) => s.applied_index);
}

describe('a request that is not valid protobuf is refused with INVALID_ARGUMENT and not applied', () => {
  for (const { service, method, wrongWireType, invalidUtf8 } of METHODS) {
    it(`${service}.${method}`, async () => {
      const before = await appliedIndexes();
      const cases = Object.entries({
        ...COMMON,
        ...(wrongWireType ? { 'a known field with another wire type': wrongWireType } : {}),
        ...(invalidUtf8 ? { 'invalid UTF-8 in a string field': invalidUtf8 } : {}),
      });
      for (const [problem, body] of cases) {
        const result = await rawCall(node.address, service, method, [body]);
        expect(result.status, problem).toBe(grpc.status.INVALID_ARGUMENT);
        expect(result.message, problem).toMatch(/not valid protobuf/);
        expect(result.replies, problem).toEqual([]);
      }
      expect(await appliedIndexes()).toEqual(before);
    });
  }

  it('the Set a fuzzer found stored (its key declaring 10 bytes more than sent) is not stored', async () => {
    const truncated = bytes(0x0a, 13, 0x61, 0x62, 0x63, 0x12, 1, 0x76);
    const withWireType7 = Buffer.concat([
      encode('Cache', 'Set', { key: 'abc', value: Buffer.from('v') }),
      bytes(0x0f),
    ]);
    for (const body of [truncated, withWireType7]) {
      expect((await rawCall(node.address, 'Cache', 'Set', [body])).status).toBe(
        grpc.status.INVALID_ARGUMENT,
      );
    }
    const stats = await rawCall(node.address, 'Cache', 'Stats', [encode('Cache', 'Stats', {})]);
    expect(stats.replies[0].shards.map((s: { keys: string }) => s.keys)).toEqual(['0', '0']);
  });

  it('random bytes get a status, INVALID_ARGUMENT when not protobuf, never INTERNAL, and the node lives on', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('Get', 'Set', 'Del', 'MGet', 'MSet', 'Expire', 'Ttl'),
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        async (method, body) => {
          const result = await rawCall(node.address, 'Cache', method, [body]);
          expect(result.status).toBeDefined();
          expect([grpc.status.INTERNAL, grpc.status.UNKNOWN]).not.toContain(result.status);
        },
      ),
      { numRuns: 60, seed: 21 },
    );
    expect(
      (await rawCall(node.address, 'Cache', 'Stats', [encode('Cache', 'Stats', {})])).status,
    ).toBe(grpc.status.OK);
  });
});

describe('request sizes', () => {
  it('a request larger than its method could need is refused before it is decoded', async () => {
    const limit = CACHE_REQUEST_LIMITS.Set;
    const set = encode('Cache', 'Set', { key: 'big', value: Buffer.alloc(limit) });
    const result = await rawCall(node.address, 'Cache', 'Set', [set]);
    expect(result.status).toBe(grpc.status.INVALID_ARGUMENT);
    expect(result.message).toMatch(
      new RegExp(`a Set request of ${set.length} bytes; the limit is ${limit}`),
    );
  });

  it('a message over the node limit is refused from its length prefix, unread: a 60 MiB Set', async () => {
    expect(MAX_RECEIVE_BYTES).toBeLessThan(60 << 20);
    // Only the prefix is sent: the node must answer without waiting for the 60 MiB.
    const prefix = bytes(0, 0x03, 0xc0, 0, 0);
    const result = await rawCall(node.address, 'Cache', 'Set', [], {
      after: prefix,
      keepOpen: true,
    });
    expect(result.status).toBe(grpc.status.RESOURCE_EXHAUSTED);
  });

  it('the largest legal MSET (pairs up to the MSET limit) is taken', async () => {
    const pairs = 16;
    const value = Buffer.alloc(Math.floor((16 << 20) / pairs) - 2048);
    const entries = Array.from({ length: pairs }, (_, i) => ({ key: `{big}${i}`, value }));
    const result = await rawCall(
      node.address,
      'Cache',
      'MSet',
      [encode('Cache', 'MSet', { entries })],
      {
        timeoutMs: 10_000,
      },
    );
    expect(result.message).toBe('OK');
    expect(result.replies[0].outcome).toBe('APPLIED');
  });
});
