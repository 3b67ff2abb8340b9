// The Cache service's per-key operations as the SDK sends them: their names on the Pipeline
// stream (the `oneof` field) and as unary methods, and which of them write.

import { CACHE_OPERATIONS, type PipelinedOperation } from '../protocol/proto.ts';

export type OpKind = PipelinedOperation;

export const UNARY_METHOD = CACHE_OPERATIONS;

const WRITES: ReadonlySet<OpKind> = new Set(['set', 'del', 'mset', 'expire']);

/** Writes carry a write id and may apply without the client hearing so; reads never change anything. */
export function isWrite(op: OpKind): boolean {
  return WRITES.has(op);
}

// biome-ignore lint/suspicious/noExplicitAny: replies as proto-loader decodes them (keepCase, longs as strings)
export type WireReply = any;

/** What carries a request to a node and brings its reply back. */
export interface Transport {
  /**
   * Sends one request; resolves with the reply, or rejects with a `RaftcacheError` (the
   * node's status, or a lost answer) once the reply or `timeoutMs` comes.
   */
  send(op: OpKind, request: object, timeoutMs: number): Promise<WireReply>;
  close(): void;
}
