/**
 * A problem in a spec, as data: a code, where it is, what it is, and maybe a fix.
 * All problems are collected and reported together, sorted by position.
 */

export type Severity = 'error' | 'warning';

export interface Diagnostic {
  /** Stable code, e.g. `unknown-key`, `gpu-out-of-range`. Tests match on it. */
  readonly code: string;
  readonly severity: Severity;
  readonly message: string;
  /** Dotted path of the offending node, e.g. `services.classifier.workers[1].gpus[0]`. */
  readonly path: string;
  readonly file: string;
  /** 1-based; 0 when the problem has no position (e.g. the file cannot be read). */
  readonly line: number;
  readonly column: number;
  readonly suggestion?: string;
}

export function compareDiagnostics(a: Diagnostic, b: Diagnostic): number {
  return (
    a.file.localeCompare(b.file) ||
    a.line - b.line ||
    a.column - b.column ||
    a.path.localeCompare(b.path) ||
    a.message.localeCompare(b.message)
  );
}

/** `file:line:col: error: path: message`, the format DESIGN.md fixes. */
export function formatDiagnostic(d: Diagnostic): string {
  const where = d.line > 0 ? `${d.file}:${d.line}:${d.column}` : d.file;
  const path = d.path === '' ? '' : `${d.path}: `;
  return `${where}: ${d.severity}: ${path}${d.message}`;
}

/** The JSON shape DESIGN.md fixes: `[{"file","line","column","path","message"}]`, plus extras. */
export function diagnosticToJson(d: Diagnostic): Record<string, string | number> {
  const out: Record<string, string | number> = {
    file: d.file,
    line: d.line,
    column: d.column,
    path: d.path,
    message: d.message,
    severity: d.severity,
    code: d.code,
  };
  if (d.suggestion !== undefined) out.suggestion = d.suggestion;
  return out;
}

/** Renders `path` segments the way messages show them: `a.b[0].c`. */
export function joinPath(segments: readonly (string | number)[]): string {
  let out = '';
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else out += out === '' ? s : `.${s}`;
  }
  return out;
}
