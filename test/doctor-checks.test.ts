// The doctor's parts: version ranges, ldd's output, onnxruntime's log, the checks, and runDoctor
// with the machine replaced where a test needs a state this machine is not in (a provider
// installed, libraries missing, a probe that passes). The hang test uses a real child process.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  doctorToJson,
  formatDoctorText,
  probeCudaSession,
  runDoctor,
} from '../src/doctor/index.js';
import type { CudaSessionProbe } from '../src/doctor/probe.js';
import { onnxruntimeLogErrors } from '../src/doctor/probe.js';
import { compareVersions, satisfiesRange } from '../src/doctor/versions.js';
import {
  CUDA_PROVIDER_LIBRARIES,
  cudaLibrariesFix,
  cudaProviderMissingLibraries,
  cudaProviderStatus,
  parseLddNotFound,
} from '../src/runtime/cuda.js';
import { fakeNvidiaSmi } from './helpers/fake-nvidia-smi.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FIXTURES = join(ROOT, 'test/fixtures/doctor');
const fixture = (name: string) => readFileSync(join(FIXTURES, name), 'utf8');
const spec = (name: string) => join(ROOT, 'specs', name);
/** Probe children that behave as a crashing or hanging CUDA driver would (test/fixtures/). */
const CRASHING_PROBE = join(ROOT, 'dist/test/fixtures/cuda-probe-crash.js');
const HANGING_PROBE = join(ROOT, 'dist/test/fixtures/cuda-probe-hang.js');

/** A folder holding (empty) provider files, as if the CUDA provider were installed. */
function fakeRuntimeDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'bento-fake-ort-'));
  for (const f of CUDA_PROVIDER_LIBRARIES) writeFileSync(join(dir, f), '');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function gpuEnv(t: { after(fn: () => void): void }, extra: NodeJS.ProcessEnv = {}) {
  const fake = fakeNvidiaSmi('2x-l4');
  t.after(() => fake.cleanup());
  const base = { ...process.env };
  delete base.CUDA_VISIBLE_DEVICES;
  return fake.env(base, extra);
}

const passingProbe = async (deviceId: number): Promise<CudaSessionProbe> => ({
  deviceId,
  ok: true,
  error: null,
  outcome: 'ok',
  ms: 5,
  pid: null,
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('version ranges (engines.node, the driver)', () => {
  const cases: [string, string, boolean][] = [
    ['20.20.2', '>=20.10', true],
    ['20.10.0', '>=20.10', true],
    ['20.9.0', '>=20.10', false],
    ['18.19.1', '>=20.10', false],
    ['22.1.0', '^20.10 || >=22', true],
    ['21.0.0', '^20.10 || >=22', false],
    ['20.11.0', '>=18 <21', true],
    ['20.11.0', '20', true],
    ['20.11.0', '~20.10', false],
    ['20.11.0', 'not a range', false],
  ];
  for (const [version, range, ok] of cases) {
    test(`${version} ${ok ? 'meets' : 'does not meet'} "${range}"`, () => {
      assert.equal(satisfiesRange(version, range), ok);
    });
  }
  test('driver versions compare numerically', () => {
    assert.ok(compareVersions('550.54.15', '525.60.13') > 0);
    assert.ok(compareVersions('525.60.9', '525.60.13') < 0);
    assert.equal(compareVersions('v20.10', '20.10.0'), 0);
  });
});

describe('what the CUDA provider cannot load', () => {
  test("ldd's not-found lines", () => {
    assert.deepEqual(parseLddNotFound(fixture('ldd-providers-cuda-missing.txt')), [
      'libcublasLt.so.12',
      'libcublas.so.12',
      'libcudnn.so.9',
      'libcurand.so.10',
      'libcufft.so.11',
      'libcudart.so.12',
      'libonnxruntime_providers_shared.so',
    ]);
    assert.deepEqual(parseLddNotFound(fixture('ldd-all-found.txt')), []);
  });

  test('a library beside the runtime is not missing: onnxruntime loads it from there', (t) => {
    const dir = fakeRuntimeDir(t);
    const results = cudaProviderMissingLibraries(cudaProviderStatus(dir), (file) =>
      file.endsWith('providers_cuda.so')
        ? fixture('ldd-providers-cuda-missing.txt')
        : fixture('ldd-all-found.txt'),
    );
    assert.deepEqual(
      results.map((r) => [r.file.slice(dir.length + 1), r.missing.length, r.error]),
      [
        ['libonnxruntime_providers_shared.so', 0, null],
        ['libonnxruntime_providers_cuda.so', 6, null],
      ],
    );
    assert.ok(!results[1]!.missing.includes('libonnxruntime_providers_shared.so'));
  });

  test('no ldd, or a file it cannot read, is reported, not thrown', (t) => {
    const dir = fakeRuntimeDir(t);
    const noLdd = () => {
      throw Object.assign(new Error('spawn ldd ENOENT'), { code: 'ENOENT' });
    };
    const results = cudaProviderMissingLibraries(cudaProviderStatus(dir), noLdd);
    assert.match(results[0]!.error ?? '', /ldd was not found on PATH/);
    const real = cudaProviderMissingLibraries(cudaProviderStatus(dir));
    assert.equal(real.length, 2);
    for (const r of real) assert.deepEqual(r.missing, []);
  });

  test('the fix says where CUDA 12 and cuDNN 9 come from', () => {
    const fix = cudaLibrariesFix(['libcublasLt.so.12', 'libcudnn.so.9', 'libcudart.so.12']);
    assert.match(fix, /cuDNN 9, cuBLAS 12, the CUDA 12 runtime/);
    assert.match(fix, /libcudnn9-cuda-12/);
    assert.match(fix, /pip: nvidia-cudnn-cu12 nvidia-cublas-cu12 nvidia-cuda-runtime-cu12/);
    assert.match(fix, /LD_LIBRARY_PATH/);
    assert.match(cudaLibrariesFix(['libcuda.so.1']), /comes with the NVIDIA driver/);
  });
});

describe("onnxruntime's own error", () => {
  test('read from its log on stderr, colours removed', () => {
    assert.deepEqual(onnxruntimeLogErrors(fixture('ort-stderr-no-provider.txt')), [
      'Failed to load library /home/user/app/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_shared.so with error: /home/user/app/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_shared.so: cannot open shared object file: No such file or directory',
    ]);
    assert.deepEqual(onnxruntimeLogErrors('plain text\n'), []);
  });
});

describe('the probe child process', () => {
  test('a crash ends the child, not the caller', async () => {
    const p = await probeCudaSession(0, { childFile: CRASHING_PROBE });
    assert.equal(p.ok, false);
    assert.equal(p.outcome, 'crash');
    assert.match(p.error ?? '', /crashed creating a CUDA session on cuda:0 \(signal SIGSEGV\)/);
  });

  test('a hang is cut off at the timeout and the child killed', async () => {
    const p = await probeCudaSession(1, {
      childFile: HANGING_PROBE,
      timeoutMs: 500,
    });
    assert.equal(p.outcome, 'timeout');
    assert.match(
      p.error ?? '',
      /cuda:1 did not finish within 0\.5 s \(hung; the probe process was killed\)/,
    );
    assert.ok(p.pid !== null && !isAlive(p.pid));
  });

  test('without the provider: the provider error, in its own words', {
    skip: cudaProviderStatus().installed && 'the CUDA provider is installed here',
  }, async () => {
    const p = await probeCudaSession(0);
    assert.equal(p.outcome, 'error');
    assert.match(
      p.error ?? '',
      /^OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library \(Failed to load library .*libonnxruntime_providers_shared\.so with error: .*cannot open shared object file/,
    );
  });
});

describe('runDoctor', () => {
  test('a hanging probe makes a GPU spec fail, and doctor still answers', async (t) => {
    const report = await runDoctor({
      specFile: spec('workers.yaml'),
      env: gpuEnv(t),
      probeChild: HANGING_PROBE,
      probeTimeoutMs: 500,
      runtimeDir: fakeRuntimeDir(t),
      ldd: () => fixture('ldd-all-found.txt'),
    });
    assert.equal(report.exitCode, 1);
    const session = report.checks.find((c) => c.name === 'cuda-session[cuda:1]');
    assert.equal(session?.ok, false);
    assert.match(session?.message ?? '', /did not finish within 0\.5 s/);
    assert.match(session?.fix ?? '', /dmesg/);
    const placement = report.checks.find((c) => c.name === 'placement[classifier/1/classifier]');
    assert.match(placement?.message ?? '', /the CUDA session on cuda:1 failed/);
    assert.match(formatDoctorText(report), /FAIL \(timeout\)/);
  });

  test('provider installed but CUDA libraries missing: exit 1 naming them', async (t) => {
    const report = await runDoctor({
      specFile: spec('multi-gpu.yaml'),
      env: gpuEnv(t),
      runtimeDir: fakeRuntimeDir(t),
      ldd: () => fixture('ldd-providers-cuda-missing.txt'),
      probe: passingProbe,
    });
    assert.equal(report.exitCode, 1);
    const libraries = report.checks.find((c) => c.name === 'cuda-libraries');
    assert.equal(libraries?.ok, false);
    assert.match(
      libraries?.message ?? '',
      /libonnxruntime_providers_cuda\.so needs libcublasLt\.so\.12, libcublas\.so\.12, libcudnn\.so\.9/,
    );
    assert.match(libraries?.fix ?? '', /nvidia-cudnn-cu12/);
    const json = doctorToJson(report);
    assert.equal(json.onnxruntime.cuda_provider.installed, true);
    assert.deepEqual(json.onnxruntime.cuda_provider.missing_libraries, [
      'libcublasLt.so.12',
      'libcublas.so.12',
      'libcudnn.so.9',
      'libcurand.so.10',
      'libcufft.so.11',
      'libcudart.so.12',
    ]);
    const placement = json.checks.find((c) => c.name === 'placement[multi_gpu/0/model2]');
    assert.match(placement?.message ?? '', /cannot load libcublasLt\.so\.12/);
  });

  test('every CUDA check passing: a GPU spec exits 0', async (t) => {
    const report = await runDoctor({
      specFile: spec('workers.yaml'),
      env: gpuEnv(t),
      runtimeDir: fakeRuntimeDir(t),
      ldd: () => fixture('ldd-all-found.txt'),
      probe: passingProbe,
    });
    assert.equal(report.exitCode, 0, formatDoctorText(report));
    assert.ok(
      report.checks.every((c) => c.ok),
      formatDoctorText(report),
    );
    assert.deepEqual(
      report.checks.filter((c) => c.name.startsWith('placement[')).map((c) => c.name),
      [0, 1, 2, 3].map((w) => `placement[classifier/${w}/classifier]`),
    );
    assert.match(formatDoctorText(report), /everything .*workers\.yaml needs is here \(exit 0\)/);
  });

  test('CUDA_VISIBLE_DEVICES that names no GPU is a failed check with a fix', async (t) => {
    const report = await runDoctor({
      env: gpuEnv(t, { CUDA_VISIBLE_DEVICES: '1,7' }),
      probe: passingProbe,
    });
    const cvd = report.checks.find((c) => c.name === 'cuda-visible-devices');
    assert.equal(cvd?.ok, false);
    assert.match(cvd?.message ?? '', /"7" names no GPU/);
    assert.match(cvd?.fix ?? '', /CUDA_VISIBLE_DEVICES=0,1/);
    assert.deepEqual(
      report.gpus.map((g) => [g.physicalIndex, g.visibleIndex]),
      [
        [0, null],
        [1, 0],
      ],
    );
    assert.equal(report.exitCode, 0);
  });
});
