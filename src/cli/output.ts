// How the CLI shows values and tables: text for people, JSON for scripts.

/** A value as text when it is UTF-8, else base64 (marked so). */
export function valueText(value: Buffer): string {
  return isUtf8(value) ? value.toString('utf8') : `(binary, base64) ${value.toString('base64')}`;
}

/** A value in JSON output: `value` when it is UTF-8 text, else `valueBase64`. */
export function valueJson(value: Buffer): { value: string } | { valueBase64: string } {
  return isUtf8(value)
    ? { value: value.toString('utf8') }
    : { valueBase64: value.toString('base64') };
}

function isUtf8(value: Buffer): boolean {
  return Buffer.from(value.toString('utf8'), 'utf8').equals(value);
}

/** Rows as aligned columns under a header (numbers right-aligned). */
export function table(rows: readonly Record<string, string | number>[]): string {
  if (rows.length === 0) return '';
  const columns = Object.keys(rows[0]);
  const cell = (v: string | number) => (typeof v === 'number' ? v.toLocaleString('en-US') : v);
  const widths = columns.map((c) =>
    Math.max(c.length, ...rows.map((r) => String(cell(r[c])).length)),
  );
  const line = (values: (string | number)[]) =>
    values
      .map((v, i) =>
        typeof v === 'number' ? cell(v).padStart(widths[i]) : String(v).padEnd(widths[i]),
      )
      .join('  ')
      .trimEnd();
  return [line(columns), ...rows.map((r) => line(columns.map((c) => r[c])))].join('\n');
}
