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
  node(path: readonly PathSegment[]): Node | undefined;
}

export function locator(parsed: ParsedSpec): Locator {
  return {
    node: (path) => nodeAt(parsed, path),
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

export function suggest(word: string, choices: readonly string[]): string | undefined {
  if (choices.length === 0) return undefined;
  const best = closest(word, [...choices]);
  const limit = Math.max(1, Math.floor(Math.max(word.length, best.length) / 3));
  return distance(word, best) <= limit ? best : undefined;
}

export function asRecord(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : {};
}

