// What the Membership service accepts from the network, checked before anything is stored
// in the metadata group: every field of a request by name, type and length (a request's
// other fields are dropped, never copied into the map), and the size of the cluster map.
// With these bounds the metadata group's store holds a few hundred KiB at most, so it never
// comes near its capacity, and it never evicts besides (cluster-membership.ts).

import { isHostPort } from '../transport/shared-port.ts';
import type { MapNode } from './cluster-map.ts';

/** A node's id: what `--node-id` takes. */
export const NODE_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
/** A region's name: what `--region` takes. */
export const REGION_NAME = /^[a-zA-Z0-9_.-]{1,64}$/;
/** A process tag (node id and a random suffix), at most. */
const MAX_PROCESS_CHARS = 128;
/** An address, `host:port` (a DNS name is at most 253 characters). */
const MAX_ADDRESS_CHARS = 261;
/** A Membership request's bytes at most: an introduction or a report is far smaller. */
export const MEMBERSHIP_REQUEST_BYTES = 64 * 1024;
/**
 * How far above the hint the metadata group holds a reported term may be. Terms grow by one
 * an election, and a leader reports its term within half a second of winning: a report
 * thousands of elections ahead is forged or corrupt, and would otherwise pin the hint to a
 * node for good (newer terms win).
 */
export const MAX_TERM_STEP = 1_000;

/** A node as it introduces itself: its configuration, before the map gives it an incarnation. */
export type NodeIntro = Omit<MapNode, 'incarnation'>;

/** A shard a node reports leading, in which term. */
export interface Leadership {
  readonly shardId: number;
  readonly term: number;
}

export interface LeadershipReport {
  readonly node: string;
  readonly leaders: readonly Leadership[];
}

/** A field that is not what it must be: `problem` says which and why. */
export class MembershipRequestError extends Error {
  override name = 'MembershipRequestError';
  readonly code = 'BAD_MEMBERSHIP_REQUEST';
}

type Fields = Readonly<Record<string, unknown>>;

const isObject = (value: unknown): value is Fields =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** A term or a shard id: an integer arithmetic keeps exact. */
const isCount = (value: unknown): value is number =>
  Number.isSafeInteger(value) && (value as number) >= 0;

/** The introduction in `value`, its fields checked and copied; throws what is wrong. */
export function readIntro(value: unknown): NodeIntro {
  if (!isObject(value)) throw new MembershipRequestError('a join carries a node introduction');
  const { nodeId, address, region, process, capacityBytes } = value;
  if (typeof nodeId !== 'string' || !NODE_NAME.test(nodeId))
    throw new MembershipRequestError('node id: 1 to 64 letters, digits, _ or -');
  const where = `node ${nodeId}`;
  if (typeof address !== 'string' || address.length > MAX_ADDRESS_CHARS || !isHostPort(address))
    throw new MembershipRequestError(`${where}: address must be host:port`);
  if (typeof region !== 'string' || !REGION_NAME.test(region))
    throw new MembershipRequestError(`${where}: region: 1 to 64 letters, digits, _, . or -`);
  if (typeof process !== 'string' || process.length > MAX_PROCESS_CHARS)
    throw new MembershipRequestError(`${where}: process: a string of at most 128 characters`);
  if (!Number.isSafeInteger(capacityBytes) || (capacityBytes as number) <= 0)
    throw new MembershipRequestError(`${where}: capacity must be a positive number of bytes`);
  return { nodeId, address, region, process, capacityBytes: capacityBytes as number };
}

/** The report in `value`, its fields checked and copied; throws what is wrong. */
export function readReport(value: unknown): LeadershipReport {
  if (!isObject(value) || typeof value.node !== 'string' || !NODE_NAME.test(value.node))
    throw new MembershipRequestError('a report names its node by id');
  if (!Array.isArray(value.leaders))
    throw new MembershipRequestError('a report lists the {shardId, term} its node leads');
  const leaders: Leadership[] = [];
  const seen = new Set<number>();
  for (const led of value.leaders as unknown[]) {
    if (!isObject(led) || !isCount(led.shardId) || !isCount(led.term) || led.term === 0)
      throw new MembershipRequestError('a leadership is a shard id and a term from 1');
    if (seen.has(led.shardId))
      throw new MembershipRequestError(`shard ${led.shardId} is reported twice`);
    seen.add(led.shardId);
    leaders.push({ shardId: led.shardId, term: led.term });
  }
  return { node: value.node, leaders };
}
