// `engines` names the Node releases the code runs on, no older: for each release line, the
// first version with every feature below (from the version history in the Node docs). A line
// that lacks a feature is left out; the last line listed covers every later one.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';

/** First version of each release line with the feature; later lines inherit it. */
const FEATURES: Readonly<Record<string, Readonly<Record<number, string>>>> = {
  // `node file.ts` strips types with no flag (docs/api/typescript.md, "enabled by default").
  'type stripping without flags': { 22: '22.18.0', 23: '23.6.0', 24: '24.0.0' },
  // src/server/main.ts and dev.ts start only `if (import.meta.main)` (docs/api/esm.md).
  'import.meta.main': { 22: '22.18.0', 24: '24.2.0' },
};
const LINES = [22, 23, 24];

function versionKey(version: string): number {
  const [major = 0, minor = 0, patch = 0] = version.split('.').map(Number);
  return (major * 1000 + minor) * 1000 + patch;
}

function neededRange(): string {
  const minimums: string[] = [];
  for (const line of LINES) {
    const firsts = Object.values(FEATURES).map((first) => first[line]);
    if (firsts.some((version) => version === undefined)) continue;
    const defined = firsts.filter((version) => version !== undefined);
    minimums.push(defined.reduce((a, b) => (versionKey(a) >= versionKey(b) ? a : b)));
  }
  return minimums
    .map((version, i) => (i === minimums.length - 1 ? `>=${version}` : `^${version}`))
    .join(' || ');
}

const repo = path.join(import.meta.dirname, '..');

it('engines names the first Node releases with unflagged type stripping and import.meta.main', () => {
  const pkg = JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8')) as {
    engines: { node: string };
  };
  expect(pkg.engines.node).toBe(neededRange());
  expect(readFileSync(path.join(repo, 'README.md'), 'utf8')).toContain(
    `\`engines\` is \`${neededRange()}\``,
  );
});
