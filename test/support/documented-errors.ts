// The errors the public API documents (proto/raftcache.proto, "Errors"), as requests that
// must earn them and checks of the answers: one list for every test that serves the API,
// whether its nodes run in the test's process or in their own.
import * as grpc from '@grpc/grpc-js';
import { expect } from 'vitest';
import { LEADER_METADATA_KEY } from '../../src/protocol/metadata.ts';

export interface BadRequest {
  /** What is wrong with it. */
  readonly problem: string;
  readonly method: string;
  readonly request: object;
  readonly code: grpc.status;
  /** What the status message must say. */
  readonly message: RegExp;
}

export interface ClusterShape {
  shardOf(key: string): number;
  /**
   * A shard's capacity, when it is below the largest value a write may carry: then an entry
   * can be larger than its shard.
   */
  readonly smallShardBytes?: number;
}

const MAX_VALUE_BYTES = 1024 * 1024;

/** Every documented bad input, one request each. */
export function badRequests(shape: ClusterShape): BadRequest[] {
  const value = Buffer.from('v');
  // 513 characters, 1026 bytes of UTF-8: the limit counts bytes.
  const longKey = 'é'.repeat(513);
  const [a, b] = keysOnTwoShards(shape.shardOf);
  const invalid = (problem: string, method: string, request: object, message: RegExp) => ({
    problem,
    method,
    request,
    code: grpc.status.INVALID_ARGUMENT,
    message,
  });
  const requests: BadRequest[] = [
    invalid('empty key (write)', 'Set', { key: '', value }, /key must be a non-empty string/),
    invalid('empty key (read)', 'Get', { key: '' }, /key must be a non-empty string/),
    invalid('key over 1 KiB (write)', 'Set', { key: longKey, value }, /1026 bytes.*limit is 1024/),
    invalid('key over 1 KiB (read)', 'Ttl', { key: longKey }, /1026 bytes.*limit is 1024/),
    invalid(
      'value over the limit',
      'Set',
      { key: 'k', value: Buffer.alloc(MAX_VALUE_BYTES + 1) },
      /value is 1048577 bytes; the limit is 1048576/,
    ),
    invalid('negative TTL', 'Set', { key: 'k', value, ttl_ms: '-1' }, /ttl_ms -1 is negative/),
    invalid(
      'keep_ttl with a TTL',
      'Set',
      { key: 'k', value, ttl_ms: '1000', keep_ttl: true },
      /keep_ttl .* takes no ttl_ms/,
    ),
    invalid(
      'MSET across shards without a hash tag',
      'MSet',
      { entries: [a, b].map((key) => ({ key, value })) },
      /must share a shard/,
    ),
    invalid('MGET across shards', 'MGet', { keys: [a, b] }, /must share a shard/),
    // An enum value this API does not define, as a client built from a newer .proto may send.
    invalid('unknown consistency', 'Get', { key: 'k', consistency: 7 }, /unknown consistency 7/),
  ];
  if (shape.smallShardBytes !== undefined && shape.smallShardBytes < MAX_VALUE_BYTES) {
    requests.push({
      problem: 'entry larger than its shard',
      method: 'Set',
      request: { key: 'k', value: Buffer.alloc(shape.smallShardBytes) },
      code: grpc.status.RESOURCE_EXHAUSTED,
      message: /can never fit/,
    });
  }
  return requests;
}

/** Sends each request (`send` finds the key's leader) and checks the status it gets back. */
export async function expectDocumentedErrors(
  send: (method: string, request: object) => Promise<unknown>,
  requests: readonly BadRequest[],
): Promise<void> {
  for (const bad of requests) {
    const answer = await send(bad.method, bad.request).then(
      (reply) => ({ reply }),
      (error: grpc.ServiceError) => error,
    );
    expect(answer, bad.problem).toMatchObject({ code: bad.code });
    expect((answer as grpc.ServiceError).details, bad.problem).toMatch(bad.message);
  }
}

/**
 * Asks every node the same read: exactly one (the shard's leader) answers, and every other
 * answers FAILED_PRECONDITION naming that one's address in `raftcache-leader`. Returns it.
 */
export async function expectRedirectsToTheLeader(
  addresses: readonly string[],
  ask: (address: string) => Promise<unknown>,
): Promise<string> {
  const answers = await Promise.allSettled(addresses.map(ask));
  const leaders = addresses.filter((_, i) => answers[i].status === 'fulfilled');
  expect(leaders).toHaveLength(1);
  for (const answer of answers) {
    if (answer.status === 'fulfilled') continue;
    const error = answer.reason as grpc.ServiceError;
    expect(error.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(error.metadata.get(LEADER_METADATA_KEY)).toEqual(leaders);
  }
  return leaders[0];
}

function keysOnTwoShards(shardOf: (key: string) => number): [string, string] {
  for (let i = 1; i < 1000; i++) {
    if (shardOf(`key-${i}`) !== shardOf('key-0')) return ['key-0', `key-${i}`];
  }
  throw new Error('every key maps to one shard: a cross-shard request needs two shards');
}
