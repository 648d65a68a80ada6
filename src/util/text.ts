/** Small text helpers for messages and tables people read. */

/** `1 GPU`, `2 GPUs`: a count and its noun, plural when it is not one. */
export function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/** Left-aligned columns two spaces apart, one string per row; no trailing spaces. */
export function renderTable(rows: readonly (readonly string[])[], indent = ''): string[] {
  const columns = Math.max(0, ...rows.map((r) => r.length));
  const widths = Array.from({ length: columns }, (_, i) =>
    Math.max(0, ...rows.map((r) => (r[i] ?? '').length)),
  );
  return rows.map((r) =>
    `${indent}${r.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ')}`.trimEnd(),
  );
}
