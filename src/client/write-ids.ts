import { randomUUID } from 'node:crypto';

/** A write's identity on the wire: a retry carries the same, so the cluster applies it once. */
export interface WireWriteId {
  readonly client_id: string;
  readonly sequence: number;
}

/**
 * Write ids of one client. Sequence numbers count per shard: a shard remembers the outcomes
 * of each client's last 32 sequence numbers, so dense numbers per shard make that window
 * cover the client's last 32 writes to it (one count over all shards would cover a few).
 */
export class WriteIds {
  readonly clientId: string;
  readonly #sequences = new Map<number, number>();

  constructor(clientId: string = `sdk-${randomUUID()}`) {
    this.clientId = clientId;
  }

  next(shardId: number): WireWriteId {
    const sequence = (this.#sequences.get(shardId) ?? 0) + 1;
    this.#sequences.set(shardId, sequence);
    return { client_id: this.clientId, sequence };
  }
}
