#!/usr/bin/env node
// Runs every compiled test file with Node's own test runner. Node 20 does not expand globs and
// Node 22 treats arguments as globs, so the files are listed here, explicitly, for both.
// Usage: node scripts/run-tests.mjs [filter...]  (filters match file paths as substrings)
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = 'dist/test';
const filters = process.argv.slice(2);
/** @param {string} dir @returns {string[]} */
function walk(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? walk(join(dir, e.name))
      : e.name.endsWith('.test.js')
        ? [join(dir, e.name)]
        : [],
  );
}
const files = walk(root)
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
if (files.length === 0) {
  console.error(`no test files found under ${root} (did the build run?)`);
  process.exit(1);
}
const concurrency = process.env.CI ? '1' : '2';
const r = spawnSync(process.execPath, ['--test', `--test-concurrency=${concurrency}`, ...files], {
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
