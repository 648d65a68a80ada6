// `bento-run doctor` through the real CLI on this machine (no GPU, no CUDA provider), with a fake
// nvidia-smi where a test needs GPUs. The CUDA session probes are real child processes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { cudaProviderStatus } from '../src/runtime/cuda.js';
import { fakeNvidiaSmi } from './helpers/fake-nvidia-smi.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BAD = 'test/fixtures/bad-specs/57-many-problems-resources.yaml';
const PROVIDER_INSTALLED = cudaProviderStatus().installed;
const NO_PROVIDER = { skip: PROVIDER_INSTALLED && 'the CUDA provider is installed here' };

/** bento-run with the test switches; FIXTURE_CUDA_PROBE=crash gives it a crashing probe child. */
const FIXTURE_BIN = 'dist/test/fixtures/bento-run-fixture.js';

function cli(args: string[], env: NodeJS.ProcessEnv, bin = 'bin/bento-run.js') {
  const r = spawnSync(process.execPath, [bin, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env,
    timeout: 60_000,
  });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** This machine's environment without any nvidia-smi on PATH: no GPU, whatever the host has. */
function withoutGpus(t: { after(fn: () => void): void }, extra: NodeJS.ProcessEnv = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'bento-doctor-no-gpu-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return { ...process.env, CUDA_VISIBLE_DEVICES: undefined, ...extra, PATH: dir };
}

function withGpus(
  t: { after(fn: () => void): void },
  fixture: Parameters<typeof fakeNvidiaSmi>[0],
  extra: NodeJS.ProcessEnv = {},
) {
  const fake = fakeNvidiaSmi(fixture);
  t.after(() => fake.cleanup());
  const base = { ...process.env };
  delete base.CUDA_VISIBLE_DEVICES;
  return fake.env(base, extra);
}

/** The report's check lines: name -> "ok" | "FAIL". */
function statuses(stdout: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of stdout.matchAll(/^(ok|FAIL) {2,}(\S+): /gm)) out.set(m[2]!, m[1]!);
  return out;
}

const noStack = (stderr: string) => assert.doesNotMatch(stderr, /\n {4}at /);

interface DoctorJson {
  checks: { name: string; ok: boolean; message: string; fix?: string }[];
  gpus: Record<string, unknown>[];
  onnxruntime: {
    version: string;
    path: string;
    cuda_provider: { installed: boolean; missing_libraries: string[]; error: string | null };
  };
  cuda_visible_devices: string | null;
}

describe('bento-run doctor on this machine', () => {
  test('no spec: the report, exit 0', (t) => {
    const r = cli(['doctor'], withoutGpus(t));
    assert.equal(r.code, 0, r.stderr);
    const s = statuses(r.stdout);
    assert.equal(s.get('node'), 'ok');
    assert.equal(s.get('onnxruntime-node'), 'ok');
    assert.ok(s.has('cuda-provider'));
    assert.equal(s.get('gpus'), 'FAIL');
    assert.equal(s.get('cuda-visible-devices'), 'ok');
    assert.match(r.stdout, /no GPUs: nvidia-smi was not found on PATH/);
    assert.match(r.stdout, /no spec given: report only \(exit 0\)/);
    assert.equal(r.stderr, '');
  });

  test('a CPU-only spec without GPUs or the CUDA provider: exit 0', (t) => {
    const r = cli(['doctor', 'specs/quickstart.yaml'], withoutGpus(t));
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const s = statuses(r.stdout);
    assert.equal(s.get('spec'), 'ok');
    assert.equal(s.get('plan'), 'ok');
    assert.match(r.stdout, /every session runs on the CPU \(2 sessions\); no GPU needed/);
    assert.ok(![...s.keys()].some((n) => n.startsWith('placement[')));
    assert.match(r.stdout, /everything specs\/quickstart\.yaml needs is here \(exit 0\)/);
  });

  test(
    'a GPU spec on two GPUs without the CUDA provider: exit 1, the provider and its fix',
    NO_PROVIDER,
    (t) => {
      const r = cli(['doctor', 'specs/multi-gpu.yaml'], withGpus(t, '2x-l4'));
      assert.equal(r.code, 1, r.stdout + r.stderr);
      noStack(r.stderr);
      const s = statuses(r.stdout);
      assert.equal(s.get('cuda-provider'), 'FAIL');
      assert.equal(s.get('gpus'), 'ok');
      assert.equal(s.get('plan'), 'ok');
      assert.equal(s.get('placement[multi_gpu/0/model1]'), 'FAIL');
      assert.equal(s.get('placement[multi_gpu/0/model2]'), 'FAIL');
      assert.match(
        r.stdout,
        /no CUDA provider: libonnxruntime_providers_shared\.so, libonnxruntime_providers_cuda\.so missing/,
      );
      assert.match(r.stdout, /fix: ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node/);
      assert.match(r.stdout, /CUDA 12 and cuDNN 9/);
      // The probe ran for real on each visible GPU, and reports the provider's own words.
      for (const id of [0, 1]) {
        assert.equal(s.get(`cuda-session[cuda:${id}]`), 'FAIL');
        assert.match(
          r.stdout,
          new RegExp(
            `cuda-session\\[cuda:${id}\\]: .*Failed to load shared library .*libonnxruntime_providers_shared\\.so`,
          ),
        );
      }
      assert.match(
        r.stdout,
        /model `model2` on cuda:1 \(physical 1, NVIDIA L4\): the CUDA provider is not installed/,
      );
      assert.match(
        r.stdout,
        /needs what is missing: placement\[multi_gpu\/0\/model1\], placement\[multi_gpu\/0\/model2\] \(exit 1\)/,
      );
    },
  );

  test('a GPU spec without GPUs: exit 1, the plan does not fit; --cpu: exit 0', (t) => {
    const env = withoutGpus(t);
    const r = cli(['doctor', 'specs/multi-gpu.yaml'], env);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.equal(statuses(r.stdout).get('plan'), 'FAIL');
    assert.match(r.stdout, /service `multi_gpu` needs 2 GPUs but no GPU is visible/);
    assert.match(r.stdout, /fix: make more GPUs visible .*--cpu/);
    const cpu = cli(['doctor', 'specs/multi-gpu.yaml', '--cpu'], env);
    assert.equal(cpu.code, 0, cpu.stdout + cpu.stderr);
    assert.match(cpu.stdout, /every session runs on the CPU \(2 sessions, --cpu\)/);
  });

  test('the plan must fit: gpu_type and the memory estimate', (t) => {
    const a100 = cli(['doctor', 'specs/two-services.yaml'], withGpus(t, '4x-a100-80gb'));
    assert.equal(a100.code, 1);
    assert.equal(statuses(a100.stdout).get('plan'), 'FAIL');
    assert.match(a100.stdout, /wants gpu_type nvidia-h100/);
    const small = withGpus(t, {
      stdout: '0, NVIDIA L4, 400 MiB, GPU-5d96cf7f-265b-4da9-8f0c-26ef4243ed52\n',
    });
    const r = cli(['doctor', 'specs/cpu-and-gpu.yaml'], small);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /FAIL {2}plan: .*estimated 501 MiB of 400 MiB/);
    assert.match(r.stdout, /fix: fewer workers or models per GPU/);
  });

  test('an NVIDIA driver too old for CUDA 12 fails the gpus check', (t) => {
    const r = cli(['doctor'], withGpus(t, { fixture: '1x-l4', driverVersion: '470.82.01' }));
    assert.equal(r.code, 0);
    assert.match(
      r.stdout,
      /FAIL {2}gpus: nvidia-smi lists 1 GPU \(NVIDIA L4\), driver 470\.82\.01; CUDA 12 needs driver 525\.60\.13 or newer/,
    );
  });
});

describe('bento-run doctor --format json', () => {
  test('the shape issue 7 gives, with the visible -> physical mapping', (t) => {
    const env = withGpus(t, '2x-l4', { CUDA_VISIBLE_DEVICES: '1' });
    const r = cli(['doctor', '--format', 'json', 'specs/cpu-and-gpu.yaml'], env);
    assert.equal(r.code, PROVIDER_INSTALLED ? r.code : 1, r.stderr);
    const report = JSON.parse(r.stdout) as DoctorJson;
    assert.deepEqual(Object.keys(report), [
      'checks',
      'gpus',
      'onnxruntime',
      'cuda_visible_devices',
    ]);
    for (const c of report.checks) {
      assert.deepEqual(
        Object.keys(c).filter((k) => !['name', 'ok', 'message', 'fix'].includes(k)),
        [],
      );
      assert.equal(typeof c.name, 'string');
      assert.equal(typeof c.ok, 'boolean');
      assert.equal(typeof c.message, 'string');
      if (!c.ok) assert.equal(typeof c.fix, 'string', `${c.name} has a fix`);
    }
    assert.deepEqual(
      report.gpus.map((g) => [
        g.index,
        g.visible_index,
        g.name,
        g.memory_total_mib,
        g.driver_version,
      ]),
      [
        [0, null, 'NVIDIA L4', 23034, '550.54.15'],
        [1, 0, 'NVIDIA L4', 23034, '550.54.15'],
      ],
    );
    assert.equal(report.gpus[0]!.cuda_session, null);
    assert.equal(typeof (report.gpus[1]!.cuda_session as { ok: unknown }).ok, 'boolean');
    assert.equal(report.cuda_visible_devices, '1');
    assert.match(report.onnxruntime.version, /^\d+\.\d+\.\d+/);
    assert.match(report.onnxruntime.path, /onnxruntime-node/);
    const provider = report.onnxruntime.cuda_provider;
    assert.deepEqual(Object.keys(provider), ['installed', 'missing_libraries', 'error']);
    assert.ok(Array.isArray(provider.missing_libraries));
    if (!PROVIDER_INSTALLED) {
      assert.equal(provider.installed, false);
      assert.deepEqual(provider.missing_libraries, [
        'libonnxruntime_providers_shared.so',
        'libonnxruntime_providers_cuda.so',
      ]);
      assert.match(provider.error ?? '', /Failed to load shared library/);
    }
    const placement = report.checks.find((c) => c.name === 'placement[scorer/0/scorer]');
    assert.match(placement?.message ?? '', /on cuda:0 \(physical 1, NVIDIA L4\)/);
    assert.equal(r.stderr, '');
  });

  test('without GPUs: an empty gpus list and null CUDA_VISIBLE_DEVICES', (t) => {
    const r = cli(['doctor', '--format', 'json'], withoutGpus(t));
    assert.equal(r.code, 0);
    const report = JSON.parse(r.stdout) as DoctorJson;
    assert.deepEqual(report.gpus, []);
    assert.equal(report.cuda_visible_devices, null);
  });
});

describe('bento-run doctor: the CUDA session probe runs in a child process', () => {
  test('a probe that crashes is a failed check, not a dead doctor', (t) => {
    const env = withGpus(t, '2x-l4', { FIXTURE_CUDA_PROBE: 'crash' });
    const r = cli(['doctor'], env, FIXTURE_BIN);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.signal, null);
    noStack(r.stderr);
    for (const id of [0, 1]) {
      assert.match(
        r.stdout,
        new RegExp(
          `FAIL {2}cuda-session\\[cuda:${id}\\]: .*the probe process crashed creating a CUDA session on cuda:${id} \\(signal SIGSEGV\\)`,
        ),
      );
    }
    assert.match(r.stdout, /FAIL \(crash\)/);
    const gpuSpec = cli(['doctor', 'specs/workers.yaml'], env, FIXTURE_BIN);
    assert.equal(gpuSpec.code, 1);
    assert.equal(statuses(gpuSpec.stdout).get('placement[classifier/0/classifier]'), 'FAIL');
  });
});

describe('bento-run doctor: usage and invalid specs', () => {
  test('an invalid spec: exit 2, its problems on stderr as validate prints them', (t) => {
    const env = withoutGpus(t);
    const r = cli(['doctor', BAD], env);
    assert.equal(r.code, 2);
    const validate = cli(['validate', BAD], env);
    assert.equal(r.stderr, validate.stderr);
    assert.match(
      r.stdout,
      /FAIL {2}spec: test\/fixtures\/bad-specs\/57-many-problems-resources\.yaml is invalid: \d+ problems/,
    );
    assert.match(r.stdout, /is invalid \(exit 2\)/);
    noStack(r.stderr);
    const json = cli(['doctor', '--format', 'json', BAD], env);
    assert.equal(json.code, 2);
    const report = JSON.parse(json.stdout) as DoctorJson;
    assert.equal(report.checks.find((c) => c.name === 'spec')?.ok, false);
  });

  test('a missing spec file: exit 2', (t) => {
    const r = cli(['doctor', 'specs/no-such-file.yaml'], withoutGpus(t));
    assert.equal(r.code, 2);
    noStack(r.stderr);
  });

  test('usage errors: exit 2', (t) => {
    const env = withoutGpus(t);
    assert.equal(cli(['doctor', 'specs/quickstart.yaml', 'specs/workers.yaml'], env).code, 2);
    assert.equal(cli(['doctor', '--port', '3000'], env).code, 2);
    assert.equal(cli(['doctor', '--format', 'yaml'], env).code, 2);
    const unknown = cli(['doctor', 'specs/quickstart.yaml', '--service', 'nope'], env);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /--service nope: no service `nope`/);
    const help = cli(['doctor', '--help'], env);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /bento-run doctor \[SPEC\.yaml\]/);
  });
});

describe('bento-run serve without the CUDA provider', () => {
  test(
    'refuses a GPU plan with exit 1 and the doctor explanation, before any worker starts',
    NO_PROVIDER,
    (t) => {
      const r = cli(['serve', 'specs/multi-gpu.yaml', '--port', '0'], withGpus(t, '2x-l4'));
      assert.equal(r.code, 1, r.stdout + r.stderr);
      noStack(r.stderr);
      assert.match(
        r.stderr,
        /model `model1` \(service `multi_gpu`\) on cuda:0, but the installed onnxruntime-node has no CUDA provider/,
      );
      assert.match(r.stderr, /ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node/);
      assert.match(r.stderr, /CUDA 12 and cuDNN 9/);
      assert.match(r.stderr, /bento-run doctor SPEC\.yaml/);
      assert.match(r.stderr, /--cpu/);
      assert.doesNotMatch(r.stderr, /loaded |serving/);
    },
  );
});
