/**
 * YAML text -> a document that keeps every node's position. Syntax errors and duplicate keys
 * become diagnostics here; nothing below this module parses YAML.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import {
  Alias,
  type Document,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  parseDocument,
  type YAMLError,
} from 'yaml';
import { SpecError } from '../errors.js';
import { type Diagnostic, joinPath } from './diagnostics.js';
import type { SourcePosition } from './types.js';

export interface ParsedSpec {
  /** The file name as given (used in messages). */
  readonly file: string;
  /** Absolute folder of the file; model paths are relative to it. */
  readonly dir: string;
  readonly text: string;
  readonly doc: Document.Parsed;
  readonly lineCounter: LineCounter;
  /** The document as plain data (aliases resolved). */
  readonly value: unknown;
  /** YAML problems: syntax errors, duplicate keys. */
  readonly diagnostics: readonly Diagnostic[];
  /** True when the YAML could not be read well enough to validate its content. */
  readonly fatal: boolean;
}

export type PathSegment = string | number;

/** Reads and parses a spec file. A file that cannot be read is a spec error, not a crash. */
export function readSpecFile(file: string): ParsedSpec {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : String(e);
    throw new SpecError([
      {
        code: 'unreadable-file',
        severity: 'error',
        message: `cannot read the spec: ${reason}`,
        path: '',
        file,
        line: 0,
        column: 0,
      },
    ]);
  }
  return parseSpec(text, file);
}

export function parseSpec(text: string, file: string): ParsedSpec {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const diagnostics: Diagnostic[] = [];
  let fatal = false;
  const keyPaths = doc.errors.some((e) => e.code === 'DUPLICATE_KEY')
    ? keyPathsByOffset(doc)
    : new Map();
  for (const e of [...doc.errors, ...doc.warnings]) {
    const isError = doc.errors.includes(e);
    if (isError && e.code !== 'DUPLICATE_KEY') fatal = true;
    diagnostics.push(yamlDiagnostic(e, file, text, lineCounter, keyPaths, isError));
  }
  let value: unknown = null;
  if (!fatal) {
    try {
      value = doc.toJS({ maxAliasCount: 10_000 });
    } catch (e) {
      fatal = true;
      diagnostics.push({
        code: 'yaml',
        severity: 'error',
        message: `cannot read the YAML: ${(e as Error).message}`,
        path: '',
        file,
        line: 1,
        column: 1,
      });
    }
  }
  return {
    file,
    dir: dirname(resolve(file)),
    text,
    doc,
    lineCounter,
    value,
    diagnostics,
    fatal,
  };
}

function yamlDiagnostic(
  e: YAMLError,
  file: string,
  text: string,
  lc: LineCounter,
  keyPaths: ReadonlyMap<number, string>,
  isError: boolean,
): Diagnostic {
  const { line, col } = lc.linePos(e.pos[0]);
  let message = e.message.split('\n')[0] ?? e.message;
  let path = '';
  if (e.code === 'DUPLICATE_KEY') {
    const key = text.slice(e.pos[0], e.pos[1]).trim();
    path = keyPaths.get(e.pos[0]) ?? '';
    message = `duplicate key \`${key}\`: each key may appear once in a mapping`;
  } else {
    message = `YAML syntax error: ${message.replace(/ at line \d+, column \d+:?$/, '')}`;
  }
  return {
    code: e.code === 'DUPLICATE_KEY' ? 'duplicate-key' : 'yaml-syntax',
    severity: isError ? 'error' : 'warning',
    message,
    path,
    file,
    line,
    column: col,
  };
}

function keyPathsByOffset(doc: Document.Parsed): Map<number, string> {
  const out = new Map<number, string>();
  walk(doc.contents, [], (_node, segments, keyNode) => {
    if (keyNode?.range) out.set(keyNode.range[0], joinPath(segments));
  });
  return out;
}

type Visitor = (node: Node, segments: PathSegment[], keyNode: Node | null) => void;

/** Visits every node with its path; `keyNode` is the mapping key that leads to it, if any. */
function walk(node: unknown, segments: PathSegment[], visit: Visitor, keyNode: Node | null = null) {
  if (node instanceof Alias || node === null || typeof node !== 'object') return;
  visit(node as Node, segments, keyNode);
  if (isMap(node)) {
    for (const pair of node.items) {
      if (!isPair(pair)) continue;
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      const k = (isScalar(pair.key) ? pair.key : null) as Node | null;
      if (pair.value === null || pair.value === undefined) {
        // `key:` with nothing after it: record the key's position for the path.
        if (k) visit(k, [...segments, key], k);
        continue;
      }
      walk(pair.value, [...segments, key], visit, k);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => walk(item, [...segments, i], visit));
  }
}

/** Every node's dotted path -> position, for errors raised after validation (plan, runtime). */
export function collectPositions(parsed: ParsedSpec): Map<string, SourcePosition> {
  const out = new Map<string, SourcePosition>();
  walk(parsed.doc.contents, [], (node, segments) => {
    if (!node.range) return;
    const { line, col } = parsed.lineCounter.linePos(node.range[0]);
    out.set(joinPath(segments), { line, column: col });
  });
  return out;
}

/** The node at `segments`, or undefined. Aliases are followed. */
export function nodeAt(parsed: ParsedSpec, segments: readonly PathSegment[]): Node | undefined {
  let node: unknown = parsed.doc.contents;
  for (const s of segments) {
    if (node instanceof Alias) node = node.resolve(parsed.doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(s));
      if (!pair) return undefined;
      node = pair.value ?? pair.key;
    } else if (isSeq(node) && typeof s === 'number') {
      node = node.items[s];
    } else {
      return undefined;
    }
  }
  if (node instanceof Alias) node = node.resolve(parsed.doc);
  return (node ?? undefined) as Node | undefined;
}

/** The key node of `segments` (the last segment must be a mapping key), or undefined. */
export function keyAt(parsed: ParsedSpec, segments: readonly PathSegment[]): Node | undefined {
  const parent = segments.length === 0 ? undefined : nodeAt(parsed, segments.slice(0, -1));
  if (!isMap(parent)) return undefined;
  const last = String(segments[segments.length - 1]);
  const pair = parent.items.find((p) => isScalar(p.key) && String(p.key.value) === last);
  return (pair?.key ?? undefined) as Node | undefined;
}

export function positionOf(parsed: ParsedSpec, node: Node | undefined): SourcePosition {
  if (!node?.range) return { line: 1, column: 1 };
  const { line, col } = parsed.lineCounter.linePos(node.range[0]);
  return { line, column: col };
}
