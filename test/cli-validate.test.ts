// `bento-run validate` and friends through the real CLI: exit codes, output streams, formats.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BAD = 'test/fixtures/bad-specs/57-many-problems-resources.yaml';
const EXAMPLES = readdirSync(join(ROOT, 'specs'))
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => `specs/${f}`);

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/bento-run.js', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const lines = (text: string) => text.split('\n').filter((l) => l !== '');

/** The corpus' expected lines, with file names as seen from the repository root. */
function expectedLines(spec: string): string[] {
  const text = readFileSync(join(ROOT, spec.replace(/\.yaml$/, '.expected')), 'utf8');
  return lines(text).map((l) => `test/fixtures/${l}`);
}

describe('bento-run validate', () => {
  test('every example spec at once: exit 0, one ok line each', () => {
    const r = cli('validate', ...EXAMPLES);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      lines(r.stdout).map((l) => l.slice(0, l.indexOf(':'))),
      EXAMPLES,
    );
  });

  test('a bad spec: exit 2, every problem on stderr, no stack trace', () => {
    const r = cli('validate', BAD);
    assert.equal(r.code, 2);
    assert.deepEqual(lines(r.stderr), expectedLines(BAD));
    assert.equal(r.stdout, '');
    assert.doesNotMatch(r.stderr, /\n {4}at /);
  });

  test('--format json: exit 2, the same problems as data', () => {
    const text = cli('validate', BAD);
    const r = cli('validate', '--format', 'json', BAD);
    assert.equal(r.code, 2);
    const problems = JSON.parse(r.stdout) as Record<string, unknown>[];
    assert.ok(Array.isArray(problems));
    for (const p of problems) {
      assert.equal(typeof p.file, 'string');
      assert.equal(typeof p.line, 'number');
      assert.equal(typeof p.column, 'number');
      assert.equal(typeof p.path, 'string');
      assert.equal(typeof p.message, 'string');
    }
    assert.deepEqual(
      problems.map(
        (p) =>
          `${p.file}:${p.line}:${p.column}: ${p.severity}: ${p.path ? `${p.path}: ` : ''}${p.message}`,
      ),
      lines(text.stderr),
    );
  });

  test("several files, one bad: exit 2 with only that file's problems", () => {
    const bad = 'test/fixtures/bad-specs/33-worker-gpu-out-of-range.yaml';
    const r = cli('validate', 'specs/quickstart.yaml', bad, 'specs/multi-gpu.yaml');
    assert.equal(r.code, 2);
    assert.deepEqual(lines(r.stderr), expectedLines(bad));
    assert.deepEqual(
      lines(r.stdout).map((l) => l.slice(0, l.indexOf(':'))),
      ['specs/quickstart.yaml', 'specs/multi-gpu.yaml'],
    );
  });

  test('a missing file: exit 2, says so', () => {
    const r = cli('validate', 'specs/nope.yaml');
    assert.equal(r.code, 2);
    assert.equal(r.stderr, 'specs/nope.yaml: error: cannot read the spec: no such file\n');
  });

  test('without a file: exit 2 with usage', () => {
    const r = cli('validate');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /Usage: bento-run validate/);
  });
});

describe('the rest of the command line', () => {
  test('`schema` prints the schema file exactly', () => {
    const r = cli('schema');
    assert.equal(r.code, 0);
    assert.equal(r.stdout, readFileSync(join(ROOT, 'schema/bentofile.schema.json'), 'utf8'));
  });

  for (const args of [['--help'], ['validate', '--help'], ['--version']]) {
    test(`${args.join(' ')}: exit 0`, () => {
      const r = cli(...args);
      assert.equal(r.code, 0, r.stderr);
      assert.notEqual(r.stdout, '');
    });
  }

  test('--version prints the package version', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.equal(cli('--version').stdout, `${pkg.version}\n`);
  });

  test('an unknown command: exit 2 with usage', () => {
    const r = cli('frobnicate');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command `frobnicate`/);
    assert.match(r.stderr, /Usage:/);
    assert.doesNotMatch(r.stderr, /\n {4}at /);
  });

  test('an unknown option: exit 2 with usage', () => {
    const r = cli('validate', '--frobnicate', 'specs/quickstart.yaml');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--frobnicate/);
    assert.match(r.stderr, /Usage: bento-run validate/);
    assert.doesNotMatch(r.stderr, /\n {4}at /);
  });
});
