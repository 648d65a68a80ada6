import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PlanError } from '../src/errors.js';
import { applyCudaVisibleDevices, parseNvidiaSmiCsv } from '../src/plan/discover.js';
import { formatPlanTable, planToJson } from '../src/plan/format.js';
import { CUDA_CONTEXT_MIB, MEMORY_FACTOR, planPlacement } from '../src/plan/plan.js';
import type { DeviceInfo, Placement, Plan } from '../src/plan/types.js';
import { readNvidiaSmiFixture } from './helpers/fake-nvidia-smi.js';
import { MIB, makeSpec, multiGpuSpec, SPEC_DIR } from './helpers/spec-factory.js';

/** The GPUs a process sees on a machine recorded in `fixture`, under CUDA_VISIBLE_DEVICES `cvd`. */
function visible(fixture: string, cvd?: string): DeviceInfo[] {
  return applyCudaVisibleDevices(parseNvidiaSmiCsv(readNvidiaSmiFixture(fixture)), cvd).devices;
}

/** Placements as compact rows: service, worker, model, local GPU, device, physical GPU. */
function rows(plan: Plan): (string | number | null)[][] {
  return plan.placements.map((p: Placement) => [
    p.service,
    p.worker,
    p.model,
    p.localGpu,
    p.device,
    p.physicalGpu,
  ]);
}

function planError(fn: () => unknown): PlanError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof PlanError, `expected a PlanError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a PlanError, nothing was thrown');
}

describe('planPlacement: GPU blocks', () => {
  test('services get disjoint blocks of visible GPUs in declaration order', () => {
    const spec = makeSpec({
      services: {
        a: { models: ['ma'], gpu: 2, workers: 2 },
        cpu_side: { models: ['mc'], workers: 1 },
        b: { models: ['mb'], gpu: 1 },
      },
    });
    const plan = planPlacement(spec, visible('4x-a100-80gb'));
    assert.deepEqual(
      plan.services.map((s) => [s.name, s.gpus]),
      [
        ['a', [0, 1]],
        ['cpu_side', []],
        ['b', [2]],
      ],
    );
    assert.deepEqual(rows(plan), [
      ['a', 0, 'ma', 0, 'cuda:0', 0],
      ['a', 1, 'ma', 1, 'cuda:1', 1],
      ['cpu_side', 0, 'mc', null, 'cpu', null],
      ['b', 0, 'mb', 0, 'cuda:2', 2],
    ]);
    assert.equal(plan.cpuOnly, false);
    assert.equal(plan.devices.length, 4);
  });

  test('MultiGPUService on 2 GPUs: one worker, model1 on its GPU 0, model2 on its GPU 1', () => {
    const plan = planPlacement(multiGpuSpec(), visible('2x-l4'));
    assert.deepEqual(rows(plan), [
      ['multi_gpu', 0, 'model1', 0, 'cuda:0', 0],
      ['multi_gpu', 0, 'model2', 1, 'cuda:1', 1],
    ]);
    const [worker] = plan.services[0]?.workers ?? [];
    assert.deepEqual(
      worker?.sessions.map((s) => [s.model, s.device, s.deviceId, s.path]),
      [
        ['model1', 'cuda:0', 0, `${SPEC_DIR}/models/model1.onnx`],
        ['model2', 'cuda:1', 1, `${SPEC_DIR}/models/model2.onnx`],
      ],
    );
  });

  test('MultiGPUService with CUDA_VISIBLE_DEVICES=1,2 on 4 GPUs: deviceId 0/1, physical 1/2', () => {
    const plan = planPlacement(multiGpuSpec(), visible('4x-a100-80gb', '1,2'), {
      cudaVisibleDevices: '1,2',
    });
    assert.deepEqual(
      plan.placements.map((p) => [p.model, p.device, p.deviceId, p.physicalGpu, p.gpuName]),
      [
        ['model1', 'cuda:0', 0, 1, 'NVIDIA A100-SXM4-80GB'],
        ['model2', 'cuda:1', 1, 2, 'NVIDIA A100-SXM4-80GB'],
      ],
    );
    assert.deepEqual(
      plan.services[0]?.workers[0]?.sessions.map((s) => s.deviceId),
      [0, 1],
    );
    assert.equal(plan.cudaVisibleDevices, '1,2');
  });

  test('4 workers on 2 GPUs: worker i on local GPU i mod 2', () => {
    const spec = makeSpec({ services: { rr: { models: ['m'], gpu: 2, workers: 4 } } });
    const plan = planPlacement(spec, visible('2x-l4'));
    assert.deepEqual(rows(plan), [
      ['rr', 0, 'm', 0, 'cuda:0', 0],
      ['rr', 1, 'm', 1, 'cuda:1', 1],
      ['rr', 2, 'm', 0, 'cuda:0', 0],
      ['rr', 3, 'm', 1, 'cuda:1', 1],
    ]);
    assert.equal(plan.services[0]?.workers.length, 4);
  });

  test("placements follow the service's model order; sessions carry the model's options", () => {
    const batching = { maxBatchSize: 8, maxLatencyMs: 2, policy: 'adaptive' as const };
    const spec = makeSpec({
      models: { zeta: { batching } },
      services: { s: { models: ['zeta', 'alpha'], gpu: 1, workers: 2 } },
    });
    const plan = planPlacement(spec, visible('1x-h100'));
    assert.deepEqual(
      plan.placements.map((p) => `${p.worker}:${p.model}`),
      ['0:zeta', '0:alpha', '1:zeta', '1:alpha'],
    );
    const sessions = plan.services[0]?.workers[1]?.sessions ?? [];
    assert.deepEqual(sessions[0]?.batching, batching);
    assert.equal(sessions[1]?.batching, null);
    assert.equal(sessions[0]?.session.graphOptimization, 'all');
  });
});

describe('planPlacement: problems', () => {
  test('too few GPUs: one diagnostic per service that cannot be served, at resources.gpu', () => {
    const spec = makeSpec({
      services: {
        small: { models: ['m1'], gpu: 1 },
        big: { models: ['m2'], gpu: 2 },
        bigger: { models: ['m3'], gpu: 3 },
      },
    });
    const e = planError(() => planPlacement(spec, visible('2x-l4')));
    assert.equal(e.code, 'BENTO_ERR_PLAN_TOO_FEW_GPUS');
    assert.deepEqual(
      e.diagnostics.map((d) => [d.code, d.path, d.line, d.column]),
      [
        ['too-few-gpus', 'services.big.resources.gpu', 23, 12],
        ['too-few-gpus', 'services.bigger.resources.gpu', 33, 12],
      ],
    );
    const [big] = e.diagnostics;
    assert.match(big?.message ?? '', /^service `big` needs 2 GPUs but 2 GPUs are visible: /);
    assert.match(
      big?.message ?? '',
      /cuda:0 \(physical 0, NVIDIA L4\), cuda:1 \(physical 1, NVIDIA L4\)/,
    );
    assert.match(big?.message ?? '', /services declared before it take 1 \(`small`: 1\)/);
    assert.match(big?.message ?? '', /need 6 in all\. Run with --cpu/);
    assert.equal(big?.suggestion, '--cpu');
    assert.equal(big?.file, 'specs/test.yaml');
  });

  test('too few GPUs names CUDA_VISIBLE_DEVICES when it hides them', () => {
    const e = planError(() =>
      planPlacement(multiGpuSpec(), visible('4x-a100-80gb', '3'), { cudaVisibleDevices: '3' }),
    );
    assert.match(
      e.message,
      /needs 2 GPUs but 1 GPU is visible with CUDA_VISIBLE_DEVICES="3": cuda:0 \(physical 3, NVIDIA A100-SXM4-80GB\)/,
    );
  });

  test('no GPU at all', () => {
    const e = planError(() => planPlacement(multiGpuSpec(), []));
    assert.equal(e.code, 'BENTO_ERR_PLAN_TOO_FEW_GPUS');
    assert.match(e.message, /`multi_gpu` needs 2 GPUs but no GPU is visible; .*--cpu/);
  });

  const mixedSpec = () =>
    makeSpec({
      services: {
        fast: { models: ['m1'], gpu: 2, gpuType: 'nvidia-l4' },
        slow: { models: ['m2'], gpu: 2, gpuType: 'nvidia-tesla-t4' },
      },
    });

  test('gpu_type mismatch on mixed GPUs: the service, the type, the GPUs, the types there are', () => {
    const e = planError(() => planPlacement(mixedSpec(), visible('mixed-2x-t4-2x-l4')));
    assert.equal(e.code, 'BENTO_ERR_PLAN_GPU_TYPE');
    assert.deepEqual(
      e.diagnostics.map((d) => [d.code, d.path, d.line]),
      [
        ['gpu-type-mismatch', 'services.fast.resources.gpu_type', 14],
        ['gpu-type-mismatch', 'services.slow.resources.gpu_type', 24],
      ],
    );
    const fast = e.diagnostics[0]?.message ?? '';
    assert.match(fast, /^service `fast` wants gpu_type nvidia-l4, but /);
    assert.match(fast, /its GPU 0 is cuda:0 \(physical 0, Tesla T4\), of type nvidia-tesla-t4; /);
    assert.match(fast, /its GPU 1 is cuda:1 \(physical 1, Tesla T4\), of type nvidia-tesla-t4\./);
    assert.match(
      fast,
      /Visible GPU types: nvidia-tesla-t4 \(cuda:0, cuda:1\), nvidia-l4 \(cuda:2, cuda:3\)/,
    );
    assert.equal(e.diagnostics[0]?.suggestion, 'CUDA_VISIBLE_DEVICES=2,3,0,1');
    assert.match(e.diagnostics[1]?.message ?? '', /its GPU 0 is cuda:2 \(physical 2, NVIDIA L4\)/);
  });

  test('the suggested CUDA_VISIBLE_DEVICES does plan', () => {
    const plan = planPlacement(mixedSpec(), visible('mixed-2x-t4-2x-l4', '2,3,0,1'));
    assert.deepEqual(
      plan.placements.map((p) => [p.service, p.device, p.physicalGpu, p.gpuName]),
      [
        ['fast', 'cuda:0', 2, 'NVIDIA L4'],
        ['slow', 'cuda:2', 0, 'Tesla T4'],
      ],
    );
  });

  test('gpu_type with no possible order: no CUDA_VISIBLE_DEVICES suggestion', () => {
    const spec = makeSpec({ services: { s: { models: ['m'], gpu: 1, gpuType: 'nvidia-h200' } } });
    const e = planError(() => planPlacement(spec, visible('1x-l4')));
    assert.equal(e.code, 'BENTO_ERR_PLAN_GPU_TYPE');
    assert.match(
      e.message,
      /wants gpu_type nvidia-h200.*Visible GPU types: nvidia-l4 \(cuda:0\)\. Change gpu_type/,
    );
    assert.equal(e.diagnostics[0]?.suggestion, 'change gpu_type');
  });

  test('gpu_type aliases match', () => {
    const spec = makeSpec({
      services: { s: { models: ['m'], gpu: 8, gpuType: 'nvidia-h100-80gb', workers: 8 } },
    });
    assert.equal(planPlacement(spec, visible('8x-h100')).placements.length, 8);
  });

  test('every problem at once; the code is the most basic one', () => {
    const spec = makeSpec({
      services: {
        typed: { models: ['m1'], gpu: 1, gpuType: 'nvidia-h100' },
        hungry: { models: ['m2'], gpu: 4 },
      },
    });
    const e = planError(() => planPlacement(spec, visible('2x-l4')));
    assert.equal(e.code, 'BENTO_ERR_PLAN_TOO_FEW_GPUS');
    assert.deepEqual(
      e.diagnostics.map((d) => d.code),
      ['gpu-type-mismatch', 'too-few-gpus'],
    );
  });
});

describe('planPlacement: options', () => {
  test('--cpu: every worker on the CPU, no GPU checks', () => {
    const spec = makeSpec({
      services: {
        multi: { models: ['m1', 'm2'], gpu: 2, gpuType: 'nvidia-h200', workers: 2 },
        plain: { models: ['m3'] },
      },
    });
    const plan = planPlacement(spec, [], { cpu: true });
    assert.equal(plan.cpuOnly, true);
    assert.deepEqual(rows(plan), [
      ['multi', 0, 'm1', null, 'cpu', null],
      ['multi', 0, 'm2', null, 'cpu', null],
      ['multi', 1, 'm1', null, 'cpu', null],
      ['multi', 1, 'm2', null, 'cpu', null],
      ['plain', 0, 'm3', null, 'cpu', null],
    ]);
    assert.ok(plan.placements.every((p) => p.deviceId === null && p.gpuName === null));
    assert.ok(
      plan.services.every(
        (s) =>
          s.gpus.length === 0 &&
          s.workers.every((w) => w.sessions.every((x) => x.deviceId === null)),
      ),
    );
    assert.deepEqual(plan.memory, []);
  });

  test('--service keeps the named services and gives GPUs to them only', () => {
    const spec = makeSpec({
      services: {
        a: { models: ['ma'], gpu: 2 },
        b: { models: ['mb'], gpu: 1 },
        c: { models: ['mc'], gpu: 1 },
      },
    });
    // 1 GPU would not serve a and b and c, but it serves c alone, on visible 0.
    const plan = planPlacement(spec, visible('1x-l4'), { services: ['c'] });
    assert.deepEqual(
      plan.services.map((s) => [s.name, s.gpus]),
      [['c', [0]]],
    );
    assert.deepEqual(rows(plan), [['c', 0, 'mc', 0, 'cuda:0', 0]]);
    const two = planPlacement(spec, visible('2x-l4'), { services: ['c', 'b'] });
    assert.deepEqual(
      two.services.map((s) => [s.name, s.gpus]),
      [
        ['b', [0]],
        ['c', [1]],
      ],
    );
  });

  test('--service with an unknown name lists the valid ones', () => {
    const spec = makeSpec({ services: { a: { models: ['m'] }, b: { models: ['n'] } } });
    const e = planError(() => planPlacement(spec, [], { services: ['a', 'nope', 'zip'] }));
    assert.equal(e.code, 'BENTO_ERR_PLAN_UNKNOWN_SERVICE');
    assert.deepEqual(
      e.diagnostics.map((d) => d.message),
      [
        '--service nope: no service `nope` in the spec (valid: a, b)',
        '--service zip: no service `zip` in the spec (valid: a, b)',
      ],
    );
  });
});

describe('planPlacement: GPU memory estimate', () => {
  test('context plus MEMORY_FACTOR x model size per session, per GPU used', () => {
    const spec = makeSpec({
      models: { m: { sizeBytes: 100 * MIB }, tiny: { sizeBytes: 1 } },
      services: { s: { models: ['m', 'tiny'], gpu: 2, workers: 3 } },
    });
    const plan = planPlacement(spec, visible('4x-a100-80gb'));
    // Workers 0 and 2 on GPU 0, worker 1 on GPU 1; tiny rounds up to 1 MiB per GPU.
    assert.deepEqual(
      plan.memory.map((m) => [
        m.device,
        m.physicalGpu,
        m.sessions,
        m.estimatedMiB,
        m.totalMiB,
        m.fits,
      ]),
      [
        ['cuda:0', 0, 4, CUDA_CONTEXT_MIB + 2 * 100 * MEMORY_FACTOR + 1, 81920, true],
        ['cuda:1', 1, 2, CUDA_CONTEXT_MIB + 100 * MEMORY_FACTOR + 1, 81920, true],
      ],
    );
    assert.deepEqual(plan.warnings, []);
  });

  const hungry = () =>
    makeSpec({
      models: { big: { sizeBytes: 3000 * MIB } },
      services: { s: { models: ['big'], gpu: 1, workers: 4 } },
    });

  test('over the GPU memory: a warning', () => {
    const plan = planPlacement(hungry(), visible('1x-l4'));
    const expected = CUDA_CONTEXT_MIB + 4 * 3000 * MEMORY_FACTOR;
    assert.ok(expected > 23034, 'the test needs an estimate over an L4');
    assert.deepEqual(
      plan.memory.map((m) => [m.estimatedMiB, m.fits]),
      [[expected, false]],
    );
    assert.deepEqual(
      plan.warnings.map((w) => [w.code, w.severity, w.path, w.line]),
      [['gpu-memory', 'warning', 'services.s.resources.gpu', 13]],
    );
    assert.match(
      plan.warnings[0]?.message ?? '',
      new RegExp(
        `GPU cuda:0 \\(physical 0, NVIDIA L4\\) may not have enough memory: estimated ${expected} MiB of 23034 MiB .*4 sessions`,
      ),
    );
  });

  test('over the GPU memory with strictMemory: BENTO_ERR_PLAN_GPU_MEMORY', () => {
    const e = planError(() => planPlacement(hungry(), visible('1x-l4'), { strictMemory: true }));
    assert.equal(e.code, 'BENTO_ERR_PLAN_GPU_MEMORY');
    assert.deepEqual(
      e.diagnostics.map((d) => [d.code, d.severity]),
      [['gpu-memory', 'error']],
    );
  });

  test('the same plan fits an H100', () => {
    const plan = planPlacement(hungry(), visible('1x-h100'), { strictMemory: true });
    assert.equal(plan.memory[0]?.fits, true);
    assert.deepEqual(plan.warnings, []);
  });
});

describe('plan output', () => {
  const plan = () =>
    planPlacement(multiGpuSpec(), visible('4x-a100-80gb', '1,2'), { cudaVisibleDevices: '1,2' });

  test('planToJson: snake_case, the placements DESIGN.md fixes, devices, memory', () => {
    const json = planToJson(plan());
    assert.deepEqual(Object.keys(json), [
      'name',
      'cpu_only',
      'cuda_visible_devices',
      'devices',
      'services',
      'placements',
      'memory',
      'warnings',
      'pipelines',
    ]);
    assert.equal(json.name, 'multi');
    assert.equal(json.cpu_only, false);
    assert.equal(json.cuda_visible_devices, '1,2');
    assert.deepEqual(json.placements, [
      {
        service: 'multi_gpu',
        worker: 0,
        model: 'model1',
        device: 'cuda:0',
        physical_gpu: 1,
        gpu_name: 'NVIDIA A100-SXM4-80GB',
        local_gpu: 0,
        device_id: 0,
      },
      {
        service: 'multi_gpu',
        worker: 0,
        model: 'model2',
        device: 'cuda:1',
        physical_gpu: 2,
        gpu_name: 'NVIDIA A100-SXM4-80GB',
        local_gpu: 1,
        device_id: 1,
      },
    ]);
    assert.deepEqual(json.devices[0], {
      index: 0,
      physical_index: 1,
      name: 'NVIDIA A100-SXM4-80GB',
      type: 'nvidia-a100-80gb',
      memory_total_mib: 81920,
      uuid: 'GPU-9823beb1-e6ba-4ad7-8de4-5321ad915a36',
    });
    assert.deepEqual(json.memory[1], {
      device: 'cuda:1',
      device_id: 1,
      physical_gpu: 2,
      gpu_name: 'NVIDIA A100-SXM4-80GB',
      total_mib: 81920,
      estimated_mib: CUDA_CONTEXT_MIB,
      sessions: 1,
      fits: true,
    });
    const session = json.services[0]?.workers[0]?.sessions[1];
    assert.deepEqual(session, {
      model: 'model2',
      path: `${SPEC_DIR}/models/model2.onnx`,
      device: 'cuda:1',
      device_id: 1,
      batching: null,
      session: {
        intra_op_threads: null,
        inter_op_threads: null,
        graph_optimization: 'all',
        execution_mode: 'sequential',
      },
    });
    assert.deepEqual(JSON.parse(JSON.stringify(json)), json, 'survives JSON as is');
  });

  test('planToJson: warnings as DESIGN.md diagnostics', () => {
    const spec = makeSpec({
      models: { big: { sizeBytes: 20000 * MIB } },
      services: { s: { models: ['big'], gpu: 1 } },
    });
    const json = planToJson(planPlacement(spec, visible('1x-l4')));
    assert.equal(json.warnings.length, 1);
    assert.deepEqual(Object.keys(json.warnings[0] ?? {}).slice(0, 5), [
      'file',
      'line',
      'column',
      'path',
      'message',
    ]);
    assert.equal(json.warnings[0]?.severity, 'warning');
  });

  test('formatPlanTable: one row per session, then memory', () => {
    const text = formatPlanTable(plan());
    const lines = text.split('\n');
    assert.match(
      text,
      /^plan for multi: 2 sessions in 1 service, 2 of 2 visible GPUs \(CUDA_VISIBLE_DEVICES="1,2"\)\n/,
    );
    assert.match(
      text,
      /^SERVICE\s+WORKER\s+MODEL\s+LOCAL GPU\s+DEVICE\s+PHYSICAL GPU\s+GPU NAME$/m,
    );
    assert.match(text, /^multi_gpu\s+0\s+model1\s+0\s+cuda:0\s+1\s+NVIDIA A100-SXM4-80GB$/m);
    assert.match(text, /^multi_gpu\s+0\s+model2\s+1\s+cuda:1\s+2\s+NVIDIA A100-SXM4-80GB$/m);
    assert.match(text, /^cuda:1\s+2\s+NVIDIA A100-SXM4-80GB\s+1\s+500 \/ 81920\s+ok$/m);
    // Columns line up: every value starts where its header does.
    const header = lines.find((l) => l.startsWith('SERVICE')) ?? '';
    const row = lines.find((l) => l.includes('model2')) ?? '';
    assert.equal(row.indexOf('cuda:1'), header.indexOf('DEVICE'));
    assert.ok(
      lines.every((l) => l === l.trimEnd()),
      'no trailing spaces',
    );
    assert.doesNotMatch(text, /warnings:/);
  });

  test('formatPlanTable: CPU rows show dashes; warnings are listed', () => {
    const cpu = formatPlanTable(planPlacement(multiGpuSpec(), [], { cpu: true }));
    assert.match(cpu, /every worker on the CPU \(--cpu\)/);
    assert.match(cpu, /^multi_gpu\s+0\s+model1\s+-\s+cpu\s+-\s+-$/m);
    assert.doesNotMatch(cpu, /GPU memory/);

    const spec = makeSpec({
      models: { big: { sizeBytes: 20000 * MIB } },
      services: { s: { models: ['big'], gpu: 1 } },
    });
    const over = formatPlanTable(planPlacement(spec, visible('1x-l4')));
    assert.match(over, /\s+OVER$/m);
    assert.match(
      over,
      /\nwarnings:\nspecs\/test\.yaml:13:12: warning: services\.s\.resources\.gpu: service `s`: GPU cuda:0/,
    );
  });
});
