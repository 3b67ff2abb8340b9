// One node's Pipeline stream, spoken directly over HTTP/2 so that requests issued in the same
// event-loop turn leave in one stream write (auto-pipelining): they are queued, and framed
// together when the turn's I/O is done (setImmediate). grpc-js would write each message on
// its own. Replies come back tagged, in any order; each request has its own timeout.
import http2 from 'node:http2';
import { publicApi } from '../protocol/proto.ts';
import {
  ClientClosedError,
  InternalError,
  InvalidArgumentError,
  type RaftcacheError,
  UnavailableError,
} from './errors.ts';
import { frameMessages, MessageReader } from './grpc-framing.ts';
import type { ClientMetrics } from './metrics.ts';
import type { OpKind, Transport, WireReply } from './operations.ts';
import { errorFromStatus, noAnswer, unreachable } from './status-errors.ts';

const PIPELINE = publicApi.Cache.service.Pipeline;
const HEADERS = {
  ':method': 'POST',
  ':path': PIPELINE.path,
  'content-type': 'application/grpc',
  te: 'trailers',
};

interface Pending {
  readonly op: OpKind;
  readonly tag: number;
  readonly resolve: (reply: WireReply) => void;
  readonly reject: (error: RaftcacheError) => void;
  readonly timer: NodeJS.Timeout;
  /** The serialized request until it is written, then the stream it went out on. */
  bytes: Uint8Array | undefined;
  stream: http2.ClientHttp2Stream | undefined;
}

interface Session {
  readonly http2: http2.ClientHttp2Session;
  connected: boolean;
  lastError: Error | undefined;
}

export class PipelineConnection implements Transport {
  readonly #address: string;
  readonly #metrics: ClientMetrics;
  #session: Session | undefined;
  #stream: http2.ClientHttp2Stream | undefined;
  #queue: Pending[] = [];
  readonly #inFlight = new Map<number, Pending>();
  #nextTag = 1;
  #flushScheduled = false;
  #waitingForDrain = false;
  #closed = false;

  /** `address` is the one to dial (after any address mapping). */
  constructor(address: string, metrics: ClientMetrics) {
    this.#address = address;
    this.#metrics = metrics;
  }

  send(op: OpKind, request: object, timeoutMs: number): Promise<WireReply> {
    if (this.#closed) return Promise.reject(new ClientClosedError());
    const tag = this.#nextTag++;
    let bytes: Uint8Array;
    try {
      bytes = PIPELINE.requestSerialize({ tag, [op]: request });
    } catch (error) {
      return Promise.reject(
        new InvalidArgumentError(`cannot encode the ${op} request: ${(error as Error).message}`),
      );
    }
    return new Promise((resolve, reject) => {
      const pending: Pending = {
        op,
        tag,
        resolve,
        reject,
        timer: setTimeout(() => this.#timeOut(pending), timeoutMs),
        bytes,
        stream: undefined,
      };
      this.#inFlight.set(tag, pending);
      this.#queue.push(pending);
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        setImmediate(this.#flush);
      }
    });
  }

  /** Fails what is in flight and closes the connection. */
  close(): void {
    this.#closed = true;
    for (const pending of [...this.#inFlight.values()]) {
      this.#settle(pending);
      pending.reject(
        pending.stream
          ? noAnswer(pending.op, this.#address, 'the client closed')
          : new ClientClosedError(),
      );
    }
    this.#queue = [];
    // The stream never ends by itself: close the connection now rather than wait for it.
    this.#session?.http2.destroy();
  }

  /** Writes every queued request in one stream write. */
  readonly #flush = () => {
    this.#flushScheduled = false;
    if (this.#waitingForDrain || this.#closed) return;
    const batch = this.#queue.filter((p) => this.#inFlight.get(p.tag) === p);
    this.#queue = [];
    if (batch.length === 0) return;
    const stream = this.#openStream();
    const framed = frameMessages(batch.map((p) => p.bytes as Uint8Array));
    for (const pending of batch) {
      pending.bytes = undefined;
      pending.stream = stream;
    }
    this.#metrics.pipelineWrites++;
    this.#metrics.pipelinedRequests += batch.length;
    if (!stream.write(framed)) {
      // The stream is full: requests queue up meanwhile and leave together after the drain.
      this.#waitingForDrain = true;
      const resume = () => {
        stream.off('drain', resume);
        stream.off('close', resume);
        this.#waitingForDrain = false;
        this.#flush();
      };
      stream.once('drain', resume);
      stream.once('close', resume);
    }
  };

  #openStream(): http2.ClientHttp2Stream {
    if (this.#stream && !this.#stream.closed && !this.#stream.destroyed) return this.#stream;
    const session = this.#openSession();
    const stream = session.http2.request(HEADERS, { endStream: false });
    const reader = new MessageReader();
    let ended = 'the stream closed';
    stream.on('data', (chunk: Buffer) => {
      try {
        for (const message of reader.push(chunk))
          this.#answer(PIPELINE.responseDeserialize(message));
      } catch (error) {
        ended = `the server sent what cannot be read: ${(error as Error).message}`;
        stream.close(http2.constants.NGHTTP2_PROTOCOL_ERROR);
      }
    });
    const noteStatus = (headers: http2.IncomingHttpHeaders) => {
      const code = headers['grpc-status'];
      if (code !== undefined && code !== '0')
        ended = `the stream ended with status ${code}: ${headers['grpc-message'] ?? ''}`;
    };
    stream.on('response', noteStatus);
    stream.on('trailers', noteStatus);
    stream.on('error', (error) => {
      session.lastError ??= error;
    });
    stream.on('close', () => {
      if (this.#stream === stream) this.#stream = undefined;
      this.#failWrittenTo(stream, session, ended);
    });
    this.#stream = stream;
    return stream;
  }

  #openSession(): Session {
    const current = this.#session;
    if (current && !current.http2.closed && !current.http2.destroyed) return current;
    const session: Session = {
      http2: http2.connect(`http://${this.#address}`),
      connected: false,
      lastError: undefined,
    };
    session.http2.once('connect', () => {
      session.connected = true;
    });
    session.http2.on('error', (error) => {
      session.lastError = error;
    });
    session.http2.on('close', () => {
      if (this.#session === session) this.#session = undefined;
    });
    // An idle connection does not keep the process alive; pending requests' timers do.
    session.http2.unref();
    this.#session = session;
    return session;
  }

  /** Requests written to a stream that closed: never answered now. */
  #failWrittenTo(stream: http2.ClientHttp2Stream, session: Session, reason: string): void {
    for (const pending of [...this.#inFlight.values()]) {
      if (pending.stream !== stream) continue;
      this.#settle(pending);
      // Over a connection never made, nothing left: the request surely did not apply.
      pending.reject(
        session.connected
          ? noAnswer(pending.op, this.#address, reason)
          : unreachable(this.#address, session.lastError?.message ?? 'connection closed'),
      );
    }
  }

  #answer(reply: WireReply): void {
    const pending = this.#inFlight.get(Number(reply.tag));
    if (!pending) return; // timed out meanwhile
    this.#settle(pending);
    if (reply.reply === 'status') {
      pending.reject(errorFromStatus(reply.status.code, reply.status.message, reply.status.leader));
    } else if (reply.reply === pending.op) {
      pending.resolve(reply[pending.op]);
    } else {
      pending.reject(new InternalError(`a ${pending.op} request was answered with ${reply.reply}`));
    }
  }

  #timeOut(pending: Pending): void {
    this.#inFlight.delete(pending.tag);
    pending.reject(
      pending.stream
        ? noAnswer(pending.op, this.#address, 'timed out')
        : new UnavailableError(`${pending.op} could not be sent to ${this.#address} in time`),
    );
  }

  #settle(pending: Pending): void {
    this.#inFlight.delete(pending.tag);
    clearTimeout(pending.timer);
  }
}
