import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { runScenario } from './scenario-script.ts';

/** Each script in scenarios/ runs; its transcript must equal the golden file beside it. */
const dir = path.join(import.meta.dirname, 'scenarios');
for (const file of readdirSync(dir).filter((f) => f.endsWith('.txt'))) {
  it(`scenario ${file}`, async () => {
    const transcript = runScenario(readFileSync(path.join(dir, file), 'utf8'));
    await expect(transcript).toMatchFileSnapshot(path.join(dir, 'golden', file));
  });
}
