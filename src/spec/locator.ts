/**
 * Diagnostics at YAML nodes, and the small helpers the validator and the checks share.
 */
import { closest, distance } from 'fastest-levenshtein';
import type { Node } from 'yaml';
import { type Diagnostic, joinPath } from './diagnostics.js';
import { keyAt, nodeAt, type ParsedSpec, type PathSegment, positionOf } from './parse.js';

/** Builds diagnostics at YAML nodes. */
export interface Locator {
  diag(
    code: string,
    path: readonly PathSegment[],
    message: string,
    opts?: { key?: boolean; suggestion?: string; severity?: 'error' | 'warning' },
  ): Diagnostic;
}

export function locator(parsed: ParsedSpec): Locator {
  return {
    diag(code, path, message, opts = {}) {
      const node = opts.key ? (keyAt(parsed, path) ?? nodeAt(parsed, path)) : nodeAt(parsed, path);
      const { line, column } = positionOf(parsed, node ?? nearestNode(parsed, path));
      const d: Diagnostic = {
        code,
        severity: opts.severity ?? 'error',
        message,
        path: joinPath(path),
        file: parsed.file,
        line,
        column,
      };
      return opts.suggestion === undefined ? d : { ...d, suggestion: opts.suggestion };
    },
  };
}

/** The deepest existing node on `path` (a missing key points at its parent mapping). */
function nearestNode(parsed: ParsedSpec, path: readonly PathSegment[]): Node | undefined {
  for (let n = path.length; n >= 0; n--) {
    const node = nodeAt(parsed, path.slice(0, n));
    if (node) return node;
  }
  return undefined;
}

/** The choice `word` was probably meant to be: same letters in another case, or a near miss. */
export function suggest(word: string, choices: readonly string[]): string | undefined {
  return suggester(choices)(word);
}

/** `suggest` over one list of choices, prepared once for many words (a spec's model names). */
export function suggester(choices: readonly string[]): (word: string) => string | undefined {
  const byLower = new Map(choices.map((c) => [c.toLowerCase(), c]));
  const lowered = [...byLower.keys()];
  return (word) => {
    if (lowered.length === 0) return undefined;
    const lower = word.toLowerCase();
    const best = byLower.has(lower) ? lower : closest(lower, lowered);
    const limit = Math.max(1, Math.floor(Math.max(word.length, best.length) / 3));
    const near = distance(lower, best) <= limit || isSwap(lower, best);
    return near ? byLower.get(best) : undefined;
  };
}

/** Two neighbouring letters typed in the wrong order (`prot`): one slip, though Levenshtein counts 2. */
function isSwap(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  const diff = [...a].flatMap((ch, i) => (ch === b[i] ? [] : [i]));
  const [i, j] = diff;
  return diff.length === 2 && j === i! + 1 && a[i!] === b[j] && a[j] === b[i!];
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** `v` as a mapping, or an empty one: the checks read shapes the schema may have rejected. */
export function asRecord(v: unknown): Record<string, unknown> {
  return isRecord(v) ? v : {};
}
