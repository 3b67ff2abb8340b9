// The wire contract's room (ARCHITECTURE.md): src/protocol depends on neither the server nor
// the SDK, and the SDK does not import the server.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';

const src = path.join(import.meta.dirname, '..', '..', 'src');

function importsOf(room: string): { file: string; target: string }[] {
  const dir = path.join(src, room);
  return readdirSync(dir)
    .filter((file) => file.endsWith('.ts'))
    .flatMap((file) =>
      [...readFileSync(path.join(dir, file), 'utf8').matchAll(/from '(\.[^']+)'/g)].map((m) => ({
        file: `${room}/${file}`,
        target: path.relative(src, path.resolve(dir, m[1] ?? '')),
      })),
    );
}

it('the SDK imports nothing of the server', () => {
  const crossing = importsOf('client').filter(({ target }) => target.startsWith('server'));
  expect(crossing).toEqual([]);
});

it('src/protocol imports neither the server nor the SDK', () => {
  const crossing = importsOf('protocol').filter(
    ({ target }) => target.startsWith('server') || target.startsWith('client'),
  );
  expect(crossing).toEqual([]);
  expect(importsOf('client').some(({ target }) => target.startsWith('protocol'))).toBe(true);
});
