export type { ProposeResult, RaftConfig, ReadMode, TransferResult } from './config.ts';
export { InvariantError } from './invariant.ts';
export type { ConfChange } from './membership.ts';
export { RaftNode } from './raft.ts';
export type { RandomSource } from './random.ts';
export { SeededRandom } from './random.ts';
export type { Ready, SoftState } from './ready.ts';
export type {
  ConfState,
  Entry,
  EntryType,
  HardState,
  Message,
  MessageType,
  NodeId,
  Role,
} from './types.ts';
export { NONE } from './types.ts';
