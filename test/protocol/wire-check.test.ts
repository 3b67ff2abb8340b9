import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { publicApi, publicPackage } from '../../src/protocol/proto.ts';
import { readVarintField, wireProblem, wireSchemas } from '../../src/protocol/wire-check.ts';

const schemas = wireSchemas(publicPackage);
const schema = (name: string) => {
  const found = schemas.get(`raftcache.v1.${name}`);
  if (found === undefined) throw new Error(`no schema ${name}`);
  return found;
};
const cache = publicApi.Cache.service;
const serialize = (method: string, request: object) => {
  const definition = cache[method];
  if (definition === undefined) throw new Error(`no method ${method}`);
  return definition.requestSerialize(request);
};

describe('the strict wire check', () => {
  it('passes every message the real encoder writes (property: valid encodings are valid)', () => {
    const text = fc.string({ unit: 'grapheme', maxLength: 20 });
    const u64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(String);
    const i64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String);
    const writeId = fc.record({ client_id: text, sequence: u64 });
    const request = fc.oneof(
      fc.record({
        tag: u64,
        set: fc.record({
          key: text,
          value: fc.uint8Array({ maxLength: 40 }),
          ttl_ms: i64,
          keep_ttl: fc.boolean(),
          condition: fc.constantFrom('ALWAYS', 'IF_ABSENT', 'IF_PRESENT'),
          if_version: u64,
          write_id: writeId,
        }),
      }),
      fc.record({
        tag: u64,
        mset: fc.record({
          entries: fc.array(fc.record({ key: text, value: fc.uint8Array({ maxLength: 10 }) })),
          ttl_ms: i64,
          write_id: writeId,
        }),
      }),
      fc.record({
        tag: u64,
        mget: fc.record({
          keys: fc.array(text),
          consistency: fc.constantFrom('LINEARIZABLE', 'LEASE', 'STALE'),
          max_staleness_ms: u64,
        }),
      }),
      fc.record({ tag: u64, del: fc.record({ keys: fc.array(text), write_id: writeId }) }),
    );
    fc.assert(
      fc.property(request, (r) => {
        const bytes = serialize('Pipeline', r);
        expect(wireProblem(bytes, schema('PipelineRequest'))).toBeUndefined();
        expect(readVarintField(bytes, 1) ?? '0').toBe(r.tag);
      }),
      { numRuns: 300, seed: 21 },
    );
  });

  it('accepts unknown fields of every wire type, groups included, and packed repeated numbers', () => {
    const unknown = Buffer.from([
      0x0a, 1, 0x61, 0x78, 5, 0x79, 1, 2, 3, 4, 5, 6, 7, 8, 0x7d, 1, 2, 3, 4, 0x7a, 0, 0x7b, 0x08,
      1, 0x7c,
    ]);
    expect(wireProblem(unknown, schema('GetRequest'))).toBeUndefined();
    // ShardStats.voters (13) is a repeated uint32: packed or one by one.
    expect(wireProblem(Buffer.from([0x6a, 3, 1, 0x80, 1]), schema('ShardStats'))).toBeUndefined();
    expect(wireProblem(Buffer.from([0x68, 1, 0x68, 2]), schema('ShardStats'))).toBeUndefined();
    expect(wireProblem(Buffer.from([0x6a, 3, 1, 0x80]), schema('ShardStats'))).toMatch(
      /declares 3 bytes where 2 remain/,
    );
  });

  it('names the problem: field, wire type, position', () => {
    expect(wireProblem(Buffer.from([0x0a, 13, 0x61]), schema('SetRequest'))).toBe(
      'a field declares 13 bytes where 1 remain (raftcache.v1.SetRequest, byte 2)',
    );
    expect(wireProblem(Buffer.from([0x0f]), schema('SetRequest'))).toMatch(/wire type 7/);
    expect(wireProblem(Buffer.from([0x3a, 2, 0x0a, 5]), schema('SetRequest'))).toMatch(
      /declares 5 bytes where 0 remain/,
    );
  });

  it('refuses nesting deeper than 100 without overflowing the stack', () => {
    // Unknown groups nested 10,000 deep.
    const deep = Buffer.concat([Buffer.alloc(10_000, 0x7b), Buffer.alloc(10_000, 0x7c)]);
    expect(wireProblem(deep, schema('GetRequest'))).toMatch(/nested deeper than 100/);
  });
});
