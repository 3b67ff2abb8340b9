// gRPC's message framing on an HTTP/2 stream: each message is a flag byte (0: not
// compressed), its length as 4 bytes big-endian, then its bytes. The pipeline connection
// frames many messages into one buffer so that one stream write carries them all.
import { InternalError } from './errors.ts';

const PREFIX = 5;

/** The messages framed one after the other in a single buffer. */
export function frameMessages(messages: readonly Uint8Array[]): Buffer {
  let total = 0;
  for (const message of messages) total += PREFIX + message.length;
  const out = Buffer.allocUnsafe(total);
  let offset = 0;
  for (const message of messages) {
    out[offset] = 0;
    out.writeUInt32BE(message.length, offset + 1);
    out.set(message, offset + PREFIX);
    offset += PREFIX + message.length;
  }
  return out;
}

/** Cuts the bytes of a stream, as they arrive in chunks of any size, into whole messages. */
export class MessageReader {
  #pending: Buffer = Buffer.alloc(0);

  /** The messages completed by `chunk` (none, one or many); the rest waits for more bytes. */
  push(chunk: Buffer): Buffer[] {
    const bytes = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const messages: Buffer[] = [];
    let offset = 0;
    while (bytes.length - offset >= PREFIX) {
      if (bytes[offset] !== 0) throw new InternalError('the server sent a compressed message');
      const length = bytes.readUInt32BE(offset + 1);
      if (bytes.length - offset - PREFIX < length) break;
      messages.push(bytes.subarray(offset + PREFIX, offset + PREFIX + length));
      offset += PREFIX + length;
    }
    this.#pending = bytes.subarray(offset);
    return messages;
  }
}
