import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Prints rows as an aligned table. */
export function printTable(rows: readonly Record<string, string | number>[]): void {
  if (rows.length === 0) return;
  const columns = Object.keys(rows[0]);
  const cell = (v: string | number) => (typeof v === 'number' ? v.toLocaleString('en-US') : v);
  const widths = columns.map((c) =>
    Math.max(c.length, ...rows.map((r) => String(cell(r[c])).length)),
  );
  const line = (values: string[]) => values.map((v, i) => v.padStart(widths[i])).join('  ');
  console.log(line(columns));
  for (const row of rows) console.log(line(columns.map((c) => String(cell(row[c])))));
}

/** Writes a benchmark's results, with the machine they ran on, to bench/results/<name>.json. */
export function writeResults(name: string, results: unknown): string {
  const dir = path.join(import.meta.dirname, '..', 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.json`);
  const machine = { node: process.version, cpus: os.cpus().length, cpu: os.cpus()[0]?.model };
  writeFileSync(
    file,
    `${JSON.stringify({ name, date: new Date().toISOString(), machine, results }, null, 2)}\n`,
  );
  return file;
}
