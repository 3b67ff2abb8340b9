// Snapshots of a store as a stream of chunks, for the raft host to persist or send to a
// follower on its own stream.
//
// Consistency without a second copy: the stream is taken at the applied index when it
// begins, while later entries keep applying. The store's entry table keeps the capture
// consistent by copy-on-write (see entry-table.ts): an entry changed or removed before the
// walk reaches it is handed to the capture first (its value copied out). The extra memory
// is the entries overwritten during the snapshot, before the walk reached them, plus one
// chunk being built. Versions alone could not do it: an overwrite or delete destroys the old
// value, which the snapshot still owes. Pausing apply would stall the shard for the whole
// transfer, and a full copy would double the memory; copy-on-write costs a compare per write
// while a snapshot runs and nothing otherwise. The small, bounded parts (client
// sessions, counters) are copied when the stream begins.
//
// Stream: a header chunk, entry chunks, an end chunk. Each chunk carries its format version,
// its own crc32 and its sequence number; the end chunk carries the entry count and a crc32
// of every chunk before it, so a lost, repeated, reordered or damaged chunk is caught.

import { decodeChunk, encodeChunk, SNAPSHOT_FORMAT_VERSION, streamChecksum } from './codec.ts';
import type { CapturedEntry } from './entry-table.ts';
import { SnapshotCorruptError, UnsupportedFormatError } from './errors.ts';
import { CacheStore, type CacheStoreOptions, type StoreCapture } from './store.ts';

const TAG_HEADER = 1;
const TAG_ENTRIES = 2;
const TAG_END = 3;
const ENTRY_FIELDS = 5;

export const DEFAULT_CHUNK_BYTES = 1024 * 1024;

export interface SnapshotStream {
  /** The applied index the snapshot is consistent at. */
  readonly index: number;
  /** The next chunk, or null when the stream is complete (it then closes itself). */
  next(): Uint8Array | null;
  /** Ends the snapshot early and releases what it held. */
  close(): void;
}

/** Begins a snapshot of `store` at its applied index. One at a time per store. */
export function beginSnapshot(store: CacheStore, chunkBytes = DEFAULT_CHUNK_BYTES): SnapshotStream {
  return new SnapshotWriter(store.capture(), chunkBytes);
}

class SnapshotWriter implements SnapshotStream {
  readonly index: number;
  #capture: StoreCapture;
  #chunkBytes: number;
  #seq = 0;
  #crc = 0;
  #count = 0;
  #stage: 'header' | 'entries' | 'end' | 'done' = 'header';

  constructor(capture: StoreCapture, chunkBytes: number) {
    this.#capture = capture;
    this.index = capture.index;
    this.#chunkBytes = chunkBytes;
  }

  next(): Uint8Array | null {
    const capture = this.#capture;
    switch (this.#stage) {
      case 'header': {
        this.#stage = 'entries';
        const { index, capacityBytes, evictions, expirations, sessions } = capture;
        return this.#emit([
          TAG_HEADER,
          this.#seq,
          index,
          capacityBytes,
          evictions,
          expirations,
          sessions.clock,
          sessions.lastId,
          sessions.sessions,
        ]);
      }
      case 'entries': {
        const flat: unknown[] = [];
        const more = capture.entries.take(this.#chunkBytes, (entry) => {
          flat.push(entry.key, entry.value, entry.expiresAt, entry.createdAt, entry.version);
        });
        if (!more) this.#stage = 'end';
        if (flat.length > 0) {
          this.#count += flat.length / ENTRY_FIELDS;
          return this.#emit([TAG_ENTRIES, this.#seq, flat]);
        }
        return this.next();
      }
      case 'end': {
        this.#stage = 'done';
        const chunk = this.#emit([TAG_END, this.#seq, this.#count, this.#crc]);
        this.close();
        return chunk;
      }
      case 'done':
        return null;
    }
  }

  close(): void {
    this.#stage = 'done';
    this.#capture.entries.close();
  }

  #emit(body: unknown[]): Uint8Array {
    const chunk = encodeChunk(body);
    this.#seq++;
    this.#crc = streamChecksum(this.#crc, chunk);
    return chunk;
  }
}

export interface SnapshotHeader {
  index: number;
  capacityBytes: number;
  evictions: number;
  expirations: number;
  sessions: StoreCapture['sessions'];
}

/** Verifies a stream chunk by chunk and hands out its parts; throws SnapshotCorruptError. */
class SnapshotParser {
  header: SnapshotHeader | null = null;
  done = false;
  #seq = 0;
  #crc = 0;
  #count = 0;

  push(chunk: Uint8Array, onEntry: (entry: CapturedEntry) => void): void {
    if (this.done) throw new SnapshotCorruptError('chunk after the end of the stream');
    const decoded = decodeChunk(chunk);
    if (decoded.kind === 'unsupported')
      throw new UnsupportedFormatError(decoded.version, SNAPSHOT_FORMAT_VERSION);
    if (decoded.kind === 'corrupt')
      throw new SnapshotCorruptError(`chunk ${this.#seq}: ${decoded.reason}`);
    const body = decoded.body;
    if (!Array.isArray(body) || body[1] !== this.#seq) {
      throw new SnapshotCorruptError(`chunk ${this.#seq} is missing or out of order`);
    }
    const tag = body[0];
    if ((tag === TAG_HEADER) !== (this.#seq === 0))
      throw new SnapshotCorruptError('the header must come first, once');
    if (tag === TAG_HEADER) this.#readHeader(body);
    else if (tag === TAG_ENTRIES) this.#readEntries(body, onEntry);
    else if (tag === TAG_END) this.#readEnd(body);
    else throw new SnapshotCorruptError(`chunk ${this.#seq} has unknown tag ${String(tag)}`);
    this.#seq++;
    this.#crc = streamChecksum(this.#crc, chunk);
  }

  #readHeader(body: unknown[]): void {
    const [, , index, capacityBytes, evictions, expirations, clock, lastId, sessions] = body;
    const counts = [index, capacityBytes, evictions, expirations, clock, lastId];
    if (
      body.length !== 9 ||
      !counts.every((n) => Number.isSafeInteger(n) && (n as number) >= 0) ||
      !Array.isArray(sessions)
    ) {
      throw new SnapshotCorruptError('malformed header chunk');
    }
    this.header = {
      index: index as number,
      capacityBytes: capacityBytes as number,
      evictions: evictions as number,
      expirations: expirations as number,
      sessions: { clock: clock as number, lastId: lastId as number, sessions },
    };
  }

  #readEntries(body: unknown[], onEntry: (entry: CapturedEntry) => void): void {
    const flat = body[2];
    if (body.length !== 3 || !Array.isArray(flat) || flat.length % ENTRY_FIELDS !== 0) {
      throw new SnapshotCorruptError(`malformed entries chunk ${this.#seq}`);
    }
    for (let i = 0; i < flat.length; i += ENTRY_FIELDS) {
      const [key, value, expiresAt, createdAt, version] = flat.slice(i, i + ENTRY_FIELDS);
      if (
        typeof key !== 'string' ||
        !(value instanceof Uint8Array) ||
        ![expiresAt, createdAt, version].every(Number.isSafeInteger)
      ) {
        throw new SnapshotCorruptError(`malformed entry in chunk ${this.#seq}`);
      }
      onEntry({ key, value, expiresAt, createdAt, version });
      this.#count++;
    }
  }

  #readEnd(body: unknown[]): void {
    const [, , count, crc] = body;
    if (count !== this.#count)
      throw new SnapshotCorruptError(
        `stream has ${this.#count} entries; its end says ${String(count)}`,
      );
    if (crc !== this.#crc) throw new SnapshotCorruptError('stream checksum mismatch');
    this.done = true;
  }
}

/** Everything but the capacity, which comes from the snapshot. */
export type RestoreOptions = Omit<CacheStoreOptions, 'capacityBytes'>;

/**
 * Builds a new store from a stream, verifying as it goes. The store is usable only after
 * `finish`; on any error, drop the restorer (the store it was building is discarded).
 */
export class SnapshotRestorer {
  #parser = new SnapshotParser();
  #store: CacheStore | null = null;
  #options: RestoreOptions;

  constructor(options: RestoreOptions = {}) {
    this.#options = options;
  }

  push(chunk: Uint8Array): void {
    this.#parser.push(chunk, (entry) => {
      if (!(this.#store as CacheStore).restoreEntry(entry)) {
        throw new SnapshotCorruptError(
          `entry ${JSON.stringify(entry.key)} is a duplicate, invalid or over capacity`,
        );
      }
    });
    const header = this.#parser.header;
    if (this.#store === null && header !== null) {
      this.#store = new CacheStore({ capacityBytes: header.capacityBytes, ...this.#options });
    }
  }

  finish(): CacheStore {
    const header = this.#parser.header;
    const store = this.#store;
    if (!this.#parser.done || header === null || store === null)
      throw new SnapshotCorruptError('stream ended early');
    if (!store.restoreFinish(header)) throw new SnapshotCorruptError('malformed client sessions');
    return store;
  }
}

export function restoreSnapshot(
  chunks: Iterable<Uint8Array>,
  options: RestoreOptions = {},
): CacheStore {
  const restorer = new SnapshotRestorer(options);
  for (const chunk of chunks) restorer.push(chunk);
  return restorer.finish();
}

export interface SnapshotContents extends SnapshotHeader {
  /** Sorted by key, so two snapshots of the same state compare equal. */
  entries: CapturedEntry[];
}

/** Reads a whole stream into memory, entries sorted: for tests and tools, not for big stores. */
export function readSnapshot(chunks: Iterable<Uint8Array>): SnapshotContents {
  const parser = new SnapshotParser();
  const entries: CapturedEntry[] = [];
  for (const chunk of chunks) parser.push(chunk, (entry) => entries.push(entry));
  if (!parser.done || parser.header === null) throw new SnapshotCorruptError('stream ended early');
  entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { ...parser.header, entries };
}

/** Every chunk of a snapshot of `store`, taken now. */
export function snapshotChunks(store: CacheStore, chunkBytes = DEFAULT_CHUNK_BYTES): Uint8Array[] {
  const stream = beginSnapshot(store, chunkBytes);
  const chunks: Uint8Array[] = [];
  for (let chunk = stream.next(); chunk !== null; chunk = stream.next()) chunks.push(chunk);
  return chunks;
}
