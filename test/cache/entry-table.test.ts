// The table keeps a copy of each key it owns (a decoded key is a slice of the entry's
// strings): the copy must be the same key, whatever its characters.
import { describe, expect, it } from 'vitest';
import { EntryTable } from '../../src/cache/entry-table.ts';

describe('entry table keys', () => {
  it.each([
    ['short', 'k1'],
    ['long', 'user:session:0000000042'],
    ['non-ASCII', 'clé:ユーザー:😀:0000000042'],
    ['lone surrogate', `\ud800${'x'.repeat(20)}\udfff`],
  ])('a %s key is found again and read back unchanged', (_, key) => {
    const table = new EntryTable();
    const slice = `${'#'.repeat(50)}${key}${'#'.repeat(50)}`.slice(50, 50 + key.length);
    const slot = table.insert(slice, new Uint8Array([1]), 10, 0, 1, 1);
    expect(table.slotOf(key)).toBe(slot);
    expect(table.key(slot)).toBe(key);
    table.remove(slot);
    expect(table.slotOf(key)).toBe(-1);
  });
});
