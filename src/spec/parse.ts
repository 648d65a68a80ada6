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
  type Pair,
  parseDocument,
  Scalar,
  type YAMLError,
  type YAMLMap,
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
  /** The document as plain data (aliases resolved; of duplicate keys, the first one). */
  readonly value: unknown;
  /** YAML problems: syntax errors, duplicate keys. */
  readonly diagnostics: readonly Diagnostic[];
  /** True when the YAML could not be read well enough to validate its content. */
  readonly fatal: boolean;
}

export type PathSegment = string | number;

const READ_ERRORS: Record<string, string> = {
  ENOENT: 'no such file',
  EISDIR: 'it is a directory',
  EACCES: 'permission denied',
};

/** Reads and parses a spec file. A file that cannot be read is a spec error, not a crash. */
export function readSpecFile(file: string): ParsedSpec {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new SpecError([
      {
        code: 'unreadable-file',
        severity: 'error',
        message: `cannot read the spec: ${READ_ERRORS[err.code ?? ''] ?? err.message}`,
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
  // Duplicate keys are found below, with the line of the first occurrence in the message.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false });
  const diagnostics: Diagnostic[] = [];
  const at = (offset: number) => {
    const { line, col } = lineCounter.linePos(offset);
    return { file, line, column: col };
  };
  const syntaxLines = new Set<number>();
  for (const e of doc.errors) {
    const d = { ...syntaxDiagnostic(e, doc, text, at), severity: 'error' as const };
    // One mistake often trips the parser twice on the same line; the first report is the clearest.
    if (syntaxLines.has(d.line)) continue;
    syntaxLines.add(d.line);
    diagnostics.push(d);
  }
  for (const e of doc.warnings)
    diagnostics.push({ ...syntaxDiagnostic(e, doc, text, at), severity: 'warning' });
  let fatal = doc.errors.length > 0;
  if (!fatal) diagnostics.push(...dropDuplicateKeys(doc, at));
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
  return { file, dir: dirname(resolve(file)), text, doc, lineCounter, value, diagnostics, fatal };
}

type At = (offset: number) => { file: string; line: number; column: number };

/**
 * A syntax error where the user can fix it. The parser notices an unclosed `[` or quote only at
 * the next line or at the end of the file, so those point back at the opening character; an
 * indentation error points at the misplaced key rather than at the spaces before it.
 */
function syntaxDiagnostic(
  e: YAMLError,
  doc: Document.Parsed,
  text: string,
  at: At,
): Omit<Diagnostic, 'severity'> {
  const pos = e.pos[0];
  const first = e.message.split('\n')[0] ?? e.message;
  let offset = pos;
  // yaml's sentences start in uppercase; after "YAML syntax error:" ours continue in lowercase.
  let message = first
    .replace(/ at line \d+, column \d+:?$/, '')
    .replace(/^[A-Z][a-z]/, (c) => c.toLowerCase());
  const flow = /^Flow (sequence|map)/.exec(first);
  if (flow) {
    const open = openedBefore(doc, pos, (n) => (isSeq(n) || isMap(n)) && n.flow === true);
    if (open?.range) {
      const [o, c] = flow[1] === 'sequence' ? ['[', ']'] : ['{', '}'];
      offset = open.range[0];
      message = `this ${o} is never closed: add ${c} after the last item`;
    }
  } else if (e.code === 'MISSING_CHAR' && first.includes('quote')) {
    const open = openedBefore(
      doc,
      pos,
      (n) => isScalar(n) && (n.type === Scalar.QUOTE_DOUBLE || n.type === Scalar.QUOTE_SINGLE),
    );
    if (open?.range) {
      offset = open.range[0];
      message = `this string is never closed: add the closing ${text[offset]}`;
    }
  } else if (e.code === 'BAD_INDENT') {
    while (text[offset] === ' ') offset++;
  } else if (e.code === 'BLOCK_AS_IMPLICIT_KEY' || e.code === 'MULTILINE_IMPLICIT_KEY') {
    // `version: 1` followed by a deeper-indented `name: x`: the parser reads both lines as one key.
    const next = text.indexOf('\n', pos);
    if (next >= 0) {
      offset = next + 1;
      while (text[offset] === ' ') offset++;
      message = 'this line is indented deeper than the key above it, which already has a value';
    }
  } else if (e.code === 'TAB_AS_INDENT') {
    message = `${message}; indent with spaces`;
  }
  return { code: 'yaml-syntax', message: `YAML syntax error: ${message}`, path: '', ...at(offset) };
}

/** The innermost node matching `match` that starts before `pos` and runs up to it. */
function openedBefore(doc: Document.Parsed, pos: number, match: (n: Node) => boolean) {
  let best: Node | undefined;
  walk(doc.contents, [], (node) => {
    const r = node.range;
    if (r && r[0] < pos && r[1] >= pos && match(node) && (!best || r[0] > best.range![0])) {
      best = node;
    }
  });
  return best;
}

/**
 * Reports each repeated key in a mapping and removes it, so that the rest of the validator sees
 * the first value, the one that the position lookups (`nodeAt`) also find.
 */
function dropDuplicateKeys(doc: Document.Parsed, at: At): Diagnostic[] {
  const out: Diagnostic[] = [];
  walk(doc.contents, [], (node, segments) => {
    if (!isMap(node)) return;
    const firstAt = new Map<string, number>();
    node.items = node.items.filter((pair) => {
      const key = keyName(pair.key);
      const offset = (pair.key as Node | null)?.range?.[0] ?? 0;
      const first = firstAt.get(key);
      if (first === undefined) {
        firstAt.set(key, offset);
        return true;
      }
      out.push({
        code: 'duplicate-key',
        severity: 'error',
        message: `duplicate key \`${key}\` (first set on line ${at(first).line}); a key may appear once in a mapping`,
        path: joinPath([...segments, key]),
        ...at(offset),
      });
      return false;
    });
  });
  return out;
}

function keyName(key: unknown): string {
  return isScalar(key) ? String(key.value) : String(key);
}

type Visitor = (node: Node, segments: PathSegment[], keyNode: Node | null) => void;

/** Visits every node with its path; `keyNode` is the mapping key that leads to it, if any. */
function walk(node: unknown, segments: PathSegment[], visit: Visitor, keyNode: Node | null = null) {
  if (node instanceof Alias || node === null || typeof node !== 'object') return;
  visit(node as Node, segments, keyNode);
  if (isMap(node)) {
    for (const pair of node.items) {
      if (!isPair(pair)) continue;
      const key = keyName(pair.key);
      const k = (isScalar(pair.key) ? pair.key : null) as Node | null;
      if (pair.value === null || pair.value === undefined) {
        // `key:` with nothing after it: record the key's position for the path.
        if (k) visit(k, [...segments, key], k);
        continue;
      }
      walk(pair.value, [...segments, key], visit, k);
    }
  } else if (isSeq(node)) {
    for (const [i, item] of node.items.entries()) walk(item, [...segments, i], visit);
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

/** Pairs of each mapping by key, built on first lookup: specs with thousands of models stay linear. */
const pairIndex = new WeakMap<YAMLMap, Map<string, Pair>>();

function pairOf(map: YAMLMap, key: string): Pair | undefined {
  let index = pairIndex.get(map);
  if (!index) {
    index = new Map();
    // The first pair wins, as in the value the validator sees.
    for (const p of map.items) if (!index.has(keyName(p.key))) index.set(keyName(p.key), p);
    pairIndex.set(map, index);
  }
  return index.get(key);
}

/** The node at `segments`, or undefined. Aliases are followed. */
export function nodeAt(parsed: ParsedSpec, segments: readonly PathSegment[]): Node | undefined {
  let node: unknown = parsed.doc.contents;
  for (const s of segments) {
    if (node instanceof Alias) node = node.resolve(parsed.doc);
    if (isMap(node)) {
      const pair = pairOf(node, String(s));
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
  return (pairOf(parent, String(segments[segments.length - 1]))?.key ?? undefined) as
    | Node
    | undefined;
}

export function positionOf(parsed: ParsedSpec, node: Node | undefined): SourcePosition {
  if (!node?.range) return { line: 1, column: 1 };
  const { line, col } = parsed.lineCounter.linePos(node.range[0]);
  return { line, column: col };
}
