// Checks of what the wire cannot check for the caller (types, integers), and values to bytes.
// Limits the cluster enforces (key length, value size) are left to it: its errors name them.
import { InvalidArgumentError } from './errors.ts';

/** A value as the SDK accepts it: bytes, or a string stored as its UTF-8 bytes. */
export type Value = Buffer | Uint8Array | string;

export function checkKey(key: unknown, what = 'key'): string {
  if (typeof key !== 'string')
    throw new InvalidArgumentError(`${what} must be a string, not ${describe(key)}`);
  return key;
}

export function checkKeys(keys: unknown, what = 'keys'): string[] {
  if (!Array.isArray(keys))
    throw new InvalidArgumentError(`${what} must be an array of strings, not ${describe(keys)}`);
  return keys.map((key, i) => checkKey(key, `${what}[${i}]`));
}

export function toBytes(value: unknown, key: string): Uint8Array {
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (value instanceof Uint8Array) return value;
  throw new InvalidArgumentError(
    `the value of ${JSON.stringify(key)} must be a Buffer, a Uint8Array or a string, not ${describe(value)}`,
  );
}

/** An integer option: a safe integer, at least `min`. */
export function checkInteger(value: unknown, what: string, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min)
    throw new InvalidArgumentError(
      `${what} must be an integer of at least ${min}, not ${describe(value)}`,
    );
  return value;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${value}`;
  return typeof value;
}
