#!/usr/bin/env node
// Lists the longest functions under src/ (declarations, methods, arrows, function expressions),
// lines counted from the function's first line to its last. Exit 1 when one exceeds the limit.
// Usage: node scripts/check-function-length.mjs [--max N] [--top N] [DIR|FILE...]  (default: src, 120)
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import ts from 'typescript';

const { values, positionals } = parseArgs({
  options: { max: { type: 'string', default: '120' }, top: { type: 'string', default: '10' } },
  allowPositionals: true,
});
const max = Number(values.max);
const top = Number(values.top);

/** @param {string} dir a folder, or one file @returns {string[]} */
function walk(dir) {
  if (!statSync(dir).isDirectory()) return [dir];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? walk(join(dir, e.name))
      : /\.(ts|mts)$/.test(e.name) && !e.name.endsWith('.d.ts')
        ? [join(dir, e.name)]
        : [],
  );
}

/** @param {ts.Node} node @param {ts.SourceFile} sf */
function nameOf(node, sf) {
  if ('name' in node && node.name) return node.name.getText(sf);
  const parent = node.parent;
  if (parent && ts.isVariableDeclaration(parent)) return parent.name.getText(sf);
  if (parent && ts.isPropertyAssignment(parent)) return parent.name.getText(sf);
  return '(anonymous)';
}

/** @type {{ file: string, line: number, name: string, lines: number }[]} */
const found = [];
for (const file of (positionals.length > 0 ? positionals : ['src']).flatMap(walk)) {
  const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  /** @param {ts.Node} node */
  const visit = (node) => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const end = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
      found.push({ file, line: start + 1, name: nameOf(node, sf), lines: end - start + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
}
found.sort((a, b) => b.lines - a.lines);
for (const f of found.slice(0, top)) console.log(`${f.lines}\t${f.file}:${f.line}\t${f.name}`);
const over = found.filter((f) => f.lines > max);
if (over.length > 0) {
  console.error(`${over.length} function(s) over ${max} lines`);
  process.exit(1);
}
