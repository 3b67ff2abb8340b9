// How a Pipeline stream's replies are written: those settled in one turn leave together.
//
// grpc-js writes a stream's messages one at a time: its Writable hands the next message to
// HTTP/2 only once the last one's write has completed. Replies settle in bursts (an entry
// applying answers every write in it, a read round serves every read that waited on it), and
// each would wait a write cycle behind the others. Node's Writable contract lets a stream
// take all its buffered messages at once through `_writev`: the call gets one that hands
// them to grpc-js's own `_write` together, and is corked from its first reply of a turn to
// the end of that turn, so that the turn's replies reach HTTP/2 in one go.
//
// Back-pressure: a burst passes the 16 buffered messages past which `write()` reports false,
// so that is not the signal. Reading pauses when more than `maxBuffered` replies wait (the
// client reads slower than it asks), and resumes, once, when they have drained (the bound is
// never below the stream's high-water mark, so a 'drain' is sure to come).
/** What of a grpc-js server stream this uses: a Node Writable that can pause its reading. */
interface ReplyStream {
  cork(): void;
  uncork(): void;
  write(chunk: unknown): boolean;
  readonly writableLength: number;
  readonly writableHighWaterMark: number;
  pause(): unknown;
  resume(): unknown;
  once(event: 'drain', listener: () => void): unknown;
}

type WriteCallback = (error?: Error | null) => void;
interface Batchable {
  _write(chunk: unknown, encoding: BufferEncoding, callback: WriteCallback): void;
  _writev?:
    | ((chunks: { chunk: unknown; encoding: BufferEncoding }[], cb: WriteCallback) => void)
    | null;
}

export class ReplyWriter {
  readonly #call: ReplyStream;
  readonly #maxBuffered: number;
  #corked = false;
  #paused = false;

  constructor(call: ReplyStream, maxBuffered = 1024) {
    this.#call = call;
    // At or below the high-water mark, the write that crossed the bound may have reported no
    // back-pressure, and then no 'drain' would come to resume reading.
    this.#maxBuffered = Math.max(maxBuffered, call.writableHighWaterMark);
    writeBufferedTogether(call as ReplyStream & Batchable);
  }

  write(reply: unknown): void {
    const call = this.#call;
    if (!this.#corked) {
      this.#corked = true;
      call.cork();
      // Replies settle in promise callbacks; a tick runs after all those of the turn.
      process.nextTick(() => {
        this.#corked = false;
        call.uncork();
      });
    }
    call.write(reply);
    if (!this.#paused && call.writableLength > this.#maxBuffered) {
      this.#paused = true;
      call.pause();
      call.once('drain', () => {
        this.#paused = false;
        call.resume();
      });
    }
  }
}

/** Gives `stream` a `_writev` handing every buffered chunk to its own `_write` at once. */
function writeBufferedTogether(stream: Batchable): void {
  if (typeof stream._writev === 'function') return; // it batches by itself
  stream._writev = (chunks, done) => {
    let left = chunks.length;
    let failed = false;
    for (const { chunk, encoding } of chunks) {
      stream._write(chunk, encoding, (error) => {
        if (failed) return;
        if (error) {
          failed = true;
          done(error);
        } else if (--left === 0) done();
      });
    }
  };
}
