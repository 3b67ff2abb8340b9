import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc16, keySlot, SLOT_COUNT } from '../../src/shard/key-slot.ts';

describe('key to slot, as the .proto specifies it', () => {
  it('CRC-16/XMODEM has its published check value', () => {
    expect(crc16(new TextEncoder().encode('123456789'))).toBe(0x31c3);
  });

  it('gives the same slots as Redis Cluster for known keys', () => {
    expect(keySlot('foo')).toBe(12182);
    expect(keySlot('bar')).toBe(5061);
    expect(keySlot('hello')).toBe(866);
  });

  it('hashes only a non-empty hash tag: the first { and the first } after it', () => {
    expect(keySlot('user:{42}:name')).toBe(keySlot('user:{42}:mail'));
    expect(keySlot('user:{42}:name')).toBe(keySlot('42'));
    expect(keySlot('{a}{b}')).toBe(keySlot('a'));
    expect(keySlot('a{b}c}')).toBe(keySlot('b'));
    // An empty tag, or no closing brace, hashes the whole key.
    expect(keySlot('{}x')).toBe(crc16(new TextEncoder().encode('{}x')) % SLOT_COUNT);
    expect(keySlot('x{')).toBe(crc16(new TextEncoder().encode('x{')) % SLOT_COUNT);
  });

  it('property: every key lands in [0, 16384), and a key with a tag lands where the tag does', () => {
    fc.assert(
      fc.property(
        fc.string(),
        fc.string({ minLength: 1 }).filter((t) => !t.includes('}') && !t.includes('{')),
        fc.string(),
        (key, tag, rest) => {
          const slot = keySlot(key);
          expect(slot).toBeGreaterThanOrEqual(0);
          expect(slot).toBeLessThan(SLOT_COUNT);
          expect(keySlot(`${rest.replaceAll('{', '')}{${tag}}${key}`)).toBe(keySlot(tag));
        },
      ),
    );
  });
});
