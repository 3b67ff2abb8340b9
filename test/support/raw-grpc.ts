// gRPC calls made by hand over HTTP/2, for tests that must send what no well-behaved client
// sends: bytes that are not valid protobuf, several messages in one DATA frame, a stream that
// stays open. Frames are built with the SDK's framing; replies are decoded with the loaded
// .proto. Every call ends by itself: with the server's status, or after `timeoutMs` with
// `status: undefined` (a stream the server never ended).
import http2 from 'node:http2';
import { frameMessages, MessageReader } from '../../src/client/grpc-framing.ts';
import { publicApi } from '../../src/protocol/proto.ts';

export interface RawCallResult {
  // biome-ignore lint/suspicious/noExplicitAny: replies as proto-loader decodes them
  readonly replies: any[];
  /** `grpc-status`, or undefined when none came before the timeout. */
  readonly status: number | undefined;
  readonly message: string;
}

/** The bytes of `request` as the client of `service` would encode them for `method`. */
export function encode(service: 'Cache' | 'Admin', method: string, request: object): Buffer {
  const definition = publicApi[service].service[method];
  if (definition === undefined) throw new Error(`no method ${service}.${method}`);
  return definition.requestSerialize(request);
}

export interface RawCallOptions {
  /** How long to wait for the server to end the stream (default 3 s). */
  readonly timeoutMs?: number;
  /** Leave the stream open after the messages (no half-close). */
  readonly keepOpen?: boolean;
  /** Write each message on its own, this many ms apart, instead of all in one write. */
  readonly gapMs?: number;
  /** Bytes written as they are after the messages (a frame prefix of a message never sent). */
  readonly after?: Uint8Array;
}

/**
 * Sends `messages` (raw protobuf bodies, framed here) on one stream of a fresh HTTP/2
 * connection to `address`, then half-closes unless `keepOpen`, and collects what comes back
 * until the server ends the stream or `timeoutMs` passes.
 */
export function rawCall(
  address: string,
  service: 'Cache' | 'Admin',
  method: string,
  messages: readonly Uint8Array[],
  options: RawCallOptions = {},
): Promise<RawCallResult> {
  const definition = publicApi[service].service[method];
  if (definition === undefined) throw new Error(`no method ${service}.${method}`);
  const session = http2.connect(`http://${address}`);
  session.on('error', () => {});
  const stream = session.request({
    ':method': 'POST',
    ':path': definition.path,
    'content-type': 'application/grpc',
    te: 'trailers',
  });
  const reader = new MessageReader();
  // biome-ignore lint/suspicious/noExplicitAny: replies as proto-loader decodes them
  const replies: any[] = [];
  let status: number | undefined;
  let message = '';
  const takeStatus = (headers: http2.IncomingHttpHeaders) => {
    const code = headers['grpc-status'];
    if (code === undefined) return;
    status = Number(code);
    message = decodeURIComponent(String(headers['grpc-message'] ?? ''));
    // The status is the stream's last word; a stream left open on this side ends here.
    setImmediate(finish);
  };
  let finish = () => {};
  return new Promise((resolve) => {
    let finished = false;
    finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      stream.close();
      session.close();
      resolve({ replies, status, message });
    };
    const timer = setTimeout(finish, options.timeoutMs ?? 3_000);
    stream.on('response', takeStatus);
    stream.on('trailers', takeStatus);
    stream.on('data', (chunk: Buffer) => {
      for (const bytes of reader.push(chunk)) replies.push(definition.responseDeserialize(bytes));
    });
    stream.on('close', finish);
    stream.on('error', () => {});
    const send = async () => {
      if (options.gapMs === undefined) stream.write(frameMessages(messages));
      else
        for (const message of messages) {
          stream.write(frameMessages([message]));
          await new Promise((resolve) => setTimeout(resolve, options.gapMs));
        }
      if (options.after) stream.write(options.after);
      if (!options.keepOpen) stream.end();
    };
    void send();
  });
}
