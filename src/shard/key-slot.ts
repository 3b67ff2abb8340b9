/**
 * Keys to slots, exactly as `proto/raftcache.proto` specifies for clients in any language
 * (the scheme of Redis Cluster): CRC-16/XMODEM of the key's hashed part, modulo 16384. The
 * cluster map assigns slots to shards.
 */

export const SLOT_COUNT = 16384;

/** CRC-16/XMODEM (polynomial 0x1021, initial 0, no reflection), one table lookup a byte. */
const CRC16_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1;
    table[byte] = crc & 0xffff;
  }
  return table;
})();

export function crc16(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let crc = 0;
  for (let i = start; i < end; i++)
    crc = ((crc << 8) ^ CRC16_TABLE[((crc >> 8) ^ bytes[i]) & 0xff]) & 0xffff;
  return crc;
}

const encoder = new TextEncoder();
const OPEN = 0x7b; // {
const CLOSE = 0x7d; // }

/**
 * The slot of a key. A hash tag (what lies between the first `{` and the first `}` after
 * it, when not empty) is hashed instead of the whole key, so keys sharing a tag share a slot,
 * and so a shard: that is what makes a multi-key write atomic.
 */
export function keySlot(key: string): number {
  const bytes = encoder.encode(key);
  const open = bytes.indexOf(OPEN);
  if (open >= 0) {
    const close = bytes.indexOf(CLOSE, open + 1);
    if (close > open + 1) return crc16(bytes, open + 1, close) % SLOT_COUNT;
  }
  return crc16(bytes) % SLOT_COUNT;
}

/** Slots `first..last`, both included. */
export interface SlotRange {
  readonly first: number;
  readonly last: number;
}

/**
 * The slots of shard `shardId` of `shardCount`: one contiguous range, the ranges covering
 * every slot once, their sizes differing by at most one.
 */
export function slotsOf(shardId: number, shardCount: number): SlotRange {
  return {
    first: Math.floor((shardId * SLOT_COUNT) / shardCount),
    last: Math.floor(((shardId + 1) * SLOT_COUNT) / shardCount) - 1,
  };
}
