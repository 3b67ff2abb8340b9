import fc from 'fast-check';
import { expect, it } from 'vitest';
import { InternalError } from '../../src/client/errors.ts';
import { frameMessages, MessageReader } from '../../src/client/grpc-framing.ts';

it('messages framed into one buffer come out whole and in order, however the bytes are cut', () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }),
      fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 50 }),
      (messages, cuts) => {
        const bytes = frameMessages(messages);
        const reader = new MessageReader();
        const out: Buffer[] = [];
        for (let offset = 0, i = 0; offset < bytes.length; i++) {
          const size = cuts[i % cuts.length];
          out.push(...reader.push(bytes.subarray(offset, offset + size)));
          offset += size;
        }
        expect(out.map((m) => [...m])).toEqual(messages.map((m) => [...m]));
      },
    ),
  );
});

it('a compressed message (which the SDK never asks for) is refused', () => {
  const framed = frameMessages([new Uint8Array([1, 2])]);
  framed[0] = 1;
  expect(() => new MessageReader().push(framed)).toThrow(InternalError);
});
