import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { type FakeNvidiaSmi, fakeNvidiaSmi } from './helpers/fake-nvidia-smi.js';
import { BIN, ROOT } from './helpers/server.js';

const run = promisify(execFile);

// Every example spec plans, through the real CLI, against a recorded GPU list that fits it.
// Each row: spec, nvidia-smi fixture, env, and the placements as `service/worker/model@device`.
const CASES: readonly [spec: string, gpus: string, env: Record<string, string>, want: string[]][] =
  [
    ['quickstart.yaml', '1x-l4', {}, ['api/0/classifier@cpu', 'api/1/classifier@cpu']],
    ['multi-gpu.yaml', '2x-l4', {}, ['multi_gpu/0/model1@cuda:0', 'multi_gpu/0/model2@cuda:1']],
    [
      'multi-gpu.yaml',
      '4x-a100-80gb',
      { CUDA_VISIBLE_DEVICES: '2,3' },
      ['multi_gpu/0/model1@cuda:0=gpu2', 'multi_gpu/0/model2@cuda:1=gpu3'],
    ],
    [
      'workers.yaml',
      '2x-l4',
      {},
      [
        'classifier/0/classifier@cuda:0',
        'classifier/1/classifier@cuda:1',
        'classifier/2/classifier@cuda:0',
        'classifier/3/classifier@cuda:1',
      ],
    ],
    [
      'two-services.yaml',
      '8x-h100',
      {},
      ['embedder/0/embedder@cuda:0', 'embedder/1/embedder@cuda:1', 'reranker/0/reranker@cuda:2'],
    ],
    [
      'cpu-and-gpu.yaml',
      '1x-l4',
      {},
      ['features/0/features@cpu', 'features/1/features@cpu', 'scorer/0/scorer@cuda:0'],
    ],
    [
      'pipeline.yaml',
      '1x-l4',
      {},
      [
        'members/0/model1@cpu',
        'members/0/model2@cpu',
        'members/1/model1@cpu',
        'members/1/model2@cpu',
        'combiner/0/average@cpu',
      ],
    ],
    ['pipeline-gpu.yaml', '2x-l4', {}, ['multi_gpu/0/model1@cuda:0', 'multi_gpu/0/model2@cuda:1']],
  ];

interface PlanJson {
  placements: {
    service: string;
    worker: number;
    model: string;
    device: string;
    physical_gpu: number | null;
  }[];
}

describe('every example spec plans against a given GPU list', () => {
  const fakes: FakeNvidiaSmi[] = [];
  after(() => {
    for (const f of fakes) f.cleanup();
  });

  test('the table covers every spec in specs/', () => {
    const specs = readdirSync(join(ROOT, 'specs')).filter((f) => f.endsWith('.yaml'));
    assert.deepEqual(new Set(CASES.map((c) => c[0])), new Set(specs));
  });

  for (const [spec, gpus, extra, want] of CASES) {
    const label = Object.keys(extra).length ? ` with ${JSON.stringify(extra)}` : '';
    test(`${spec} on ${gpus}${label}`, async () => {
      const fake = fakeNvidiaSmi(gpus);
      fakes.push(fake);
      const { stdout } = await run(
        process.execPath,
        [BIN, 'plan', join('specs', spec), '--format', 'json'],
        { cwd: ROOT, env: fake.env(process.env, extra) },
      );
      const plan = JSON.parse(stdout) as PlanJson;
      const got = plan.placements.map((p) => {
        const physical =
          extra.CUDA_VISIBLE_DEVICES && p.physical_gpu !== null ? `=gpu${p.physical_gpu}` : '';
        return `${p.service}/${p.worker}/${p.model}@${p.device}${physical}`;
      });
      assert.deepEqual(got, want);
    });
  }
});
