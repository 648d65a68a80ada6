// The bad-spec corpus: each test/fixtures/bad-specs/NN-name.yaml must produce exactly the lines of
// NN-name.expected, as `bento-run validate bad-specs/NN-name.yaml` prints them from test/fixtures.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SpecError } from '../src/errors.js';
import { formatDiagnostic, readSpecFile, validateSpec } from '../src/spec/index.js';

// Expected files name specs relative to test/fixtures, as the CLI would if run from there.
process.chdir(fileURLToPath(new URL('../../test/fixtures/', import.meta.url)));

const cases = readdirSync('bad-specs')
  .filter((f) => f.endsWith('.yaml'))
  .sort();

function validateLines(file: string): string[] {
  try {
    return validateSpec(readSpecFile(file)).warnings.map(formatDiagnostic);
  } catch (e) {
    if (!(e instanceof SpecError)) throw e;
    return e.diagnostics.map(formatDiagnostic);
  }
}

test('bad-spec corpus', async (t) => {
  assert.ok(cases.length >= 45, `only ${cases.length} cases`);
  const expectedFiles = readdirSync('bad-specs').filter((f) => f.endsWith('.expected'));
  assert.deepEqual(
    expectedFiles.sort(),
    cases.map((c) => c.replace(/\.yaml$/, '.expected')).sort(),
  );
  for (const name of cases) {
    await t.test(name, () => {
      assert.match(name, /^\d\d-[a-z0-9-]+\.yaml$/);
      const file = `bad-specs/${name}`;
      const expected = readFileSync(file.replace(/\.yaml$/, '.expected'), 'utf8')
        .trimEnd()
        .split('\n');
      const actual = validateLines(file);
      assert.deepEqual(actual, expected);
      assert.ok(
        actual.some((line) => line.includes(': error: ')),
        'a bad spec has at least one error',
      );
    });
  }
});
