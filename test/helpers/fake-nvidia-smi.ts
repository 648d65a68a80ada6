/**
 * A fake `nvidia-smi` for tests: a temp folder holding an executable shell script that prints a
 * recorded output (test/fixtures/nvidia-smi/*.csv) and logs its arguments. Put `fake.dir` first
 * on PATH (or pass `fake.env()` as a child's environment) and discovery runs it instead of the
 * real one. Uses only shell builtins, so PATH may hold nothing else.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** test/fixtures/nvidia-smi, found from the compiled file (dist/test/helpers). */
export const NVIDIA_SMI_FIXTURES = fileURLToPath(
  new URL('../../../test/fixtures/nvidia-smi/', import.meta.url),
);

/** The recorded output `name` (e.g. "2x-l4" or "2x-l4.csv"). */
export function readNvidiaSmiFixture(name: string): string {
  const file = name.endsWith('.csv') ? name : `${name}.csv`;
  return readFileSync(join(NVIDIA_SMI_FIXTURES, file), 'utf8');
}

export interface FakeNvidiaSmiOptions {
  /** A fixture name; its content is what the fake prints on stdout. */
  fixture?: string;
  /** Printed on stdout instead of a fixture. */
  stdout?: string;
  stderr?: string;
  /** Default 0. */
  exitCode?: number;
  /**
   * What the driver version query (`--query-gpu=driver_version`, which doctor runs) prints,
   * one line per GPU line of stdout. Default "550.54.15".
   */
  driverVersion?: string;
}

export interface FakeNvidiaSmi {
  /** The folder holding `nvidia-smi`. */
  readonly dir: string;
  /** `base` (default process.env) with `dir` first on PATH. */
  env(base?: NodeJS.ProcessEnv, extra?: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
  /** The arguments of every call so far, one array per call. */
  calls(): string[][];
  /** Removes the folder. */
  cleanup(): void;
}

const quote = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`;

/** Makes a fake nvidia-smi from a fixture name, or from explicit output and exit code. */
export function fakeNvidiaSmi(source: string | FakeNvidiaSmiOptions): FakeNvidiaSmi {
  const opts: FakeNvidiaSmiOptions = typeof source === 'string' ? { fixture: source } : source;
  const dir = mkdtempSync(join(tmpdir(), 'bento-fake-nvidia-smi-'));
  const stdout =
    opts.fixture === undefined ? (opts.stdout ?? '') : readNvidiaSmiFixture(opts.fixture);
  writeFileSync(join(dir, 'stdout.txt'), stdout);
  writeFileSync(join(dir, 'stderr.txt'), opts.stderr ?? '');
  const gpuLines = stdout.split('\n').filter((l) => /^\s*\d+\s*,/.test(l));
  writeFileSync(
    join(dir, 'driver.txt'),
    gpuLines.map(() => `${opts.driverVersion ?? '550.54.15'}\n`).join(''),
  );
  const log = join(dir, 'calls.log');
  const print = (file: string, redirect = '') =>
    `while IFS= read -r line || [ -n "$line" ]; do printf '%s\\n' "$line"${redirect}; done < ${quote(join(dir, file))}`;
  const script = [
    '#!/bin/sh',
    '# fake nvidia-smi (bento-run tests): logs its arguments, prints a recorded output',
    `for a in "$@"; do printf '%s\\t' "$a"; done >> ${quote(log)}`,
    `printf '\\n' >> ${quote(log)}`,
    // The driver version query gets its own answer; every other query the recorded output.
    'case "$*" in',
    `  *driver_version*) ${print('driver.txt')} ;;`,
    `  *) ${print('stdout.txt')} ;;`,
    'esac',
    print('stderr.txt', ' >&2'),
    `exit ${opts.exitCode ?? 0}`,
    '',
  ].join('\n');
  const bin = join(dir, 'nvidia-smi');
  writeFileSync(bin, script);
  chmodSync(bin, 0o755);
  return {
    dir,
    env(base = process.env, extra = {}) {
      const path =
        base.PATH === undefined || base.PATH === '' ? dir : `${dir}${delimiter}${base.PATH}`;
      return { ...base, ...extra, PATH: path };
    },
    calls() {
      let text: string;
      try {
        text = readFileSync(log, 'utf8');
      } catch {
        return [];
      }
      return text
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => l.split('\t').filter((a) => a !== ''));
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** An environment whose PATH is an empty folder: no nvidia-smi can be found. */
export function envWithoutNvidiaSmi(extra: NodeJS.ProcessEnv = {}): {
  env: NodeJS.ProcessEnv;
  cleanup(): void;
} {
  const dir = mkdtempSync(join(tmpdir(), 'bento-no-nvidia-smi-'));
  return {
    env: { ...extra, PATH: dir },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
