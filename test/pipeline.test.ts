// Pipelines on the spec side: the order steps run in, the resolved PipelineSpec, the diagnostic
// codes of the bad-pipeline corpus (its lines are pinned by spec-corpus.test.ts), and `plan`.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SpecError } from '../src/errors.js';
import { applyCudaVisibleDevices, parseNvidiaSmiCsv } from '../src/plan/discover.js';
import { formatPlanTable, planToJson } from '../src/plan/format.js';
import { planPlacement } from '../src/plan/plan.js';
import { loadSpec, parseSpec, readSpecFile, validateSpec } from '../src/spec/index.js';
import { findCycles } from '../src/spec/pipeline-graph.js';
import { pipelineOrder } from '../src/spec/pipelines.js';
import type { PipelineStepSpec, StepSource } from '../src/spec/types.js';
import { readNvidiaSmiFixture } from './helpers/fake-nvidia-smi.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FIXTURES = join(ROOT, 'test', 'fixtures');

const fromInput = (input: string): StepSource => ({ kind: 'input', input });
const fromStep = (step: string, output = 'y'): StepSource => ({ kind: 'step', step, output });

/** Steps by name -> the steps they take outputs from, for `pipelineOrder`. */
function steps(
  deps: Record<string, string[]>,
): { name: string; inputs: Record<string, StepSource> }[] {
  return Object.entries(deps).map(([name, from]) => ({
    name,
    inputs: from.length
      ? Object.fromEntries(from.map((s, i) => [`in${i}`, fromStep(s)]))
      : { x: fromInput('x') },
  }));
}

describe('pipelineOrder: topological levels', () => {
  test('a diamond: the two branches run at the same time, the join after both', () => {
    const order = pipelineOrder({
      steps: steps({ left: [], right: [], join: ['left', 'right'] }),
    });
    assert.deepEqual(order, [['left', 'right'], ['join']]);
  });

  test('a chain runs one step per level, whatever the declaration order', () => {
    assert.deepEqual(pipelineOrder({ steps: steps({ c: ['b'], b: ['a'], a: [] }) }), [
      ['a'],
      ['b'],
      ['c'],
    ]);
  });

  test('a step runs one level after the last of its sources; a level keeps declaration order', () => {
    const order = pipelineOrder({
      steps: steps({ late: ['b'], b: ['a'], a: [], early: ['a'], solo: [] }),
    });
    assert.deepEqual(order, [['a', 'solo'], ['b', 'early'], ['late']]);
  });

  test('one input feeding a step twice is one dependency', () => {
    const order = pipelineOrder({
      steps: [
        { name: 'a', inputs: { x: fromInput('x') } },
        { name: 'b', inputs: { p: fromStep('a'), q: fromStep('a') } },
      ],
    });
    assert.deepEqual(order, [['a'], ['b']]);
  });

  test('a cycle throws: a validated pipeline never has one', () => {
    assert.throws(() => pipelineOrder({ steps: steps({ a: ['b'], b: ['a'] }) }), /cycle/);
  });

  test('works on a resolved PipelineSpec', () => {
    const { spec } = loadSpec(join(ROOT, 'specs', 'pipeline.yaml'));
    const ensemble = spec.pipelines.ensemble;
    assert.ok(ensemble);
    assert.deepEqual(pipelineOrder(ensemble), [['left', 'right'], ['join']]);
  });
});

describe('findCycles', () => {
  const deps = (d: Record<string, string[]>) => new Map(Object.entries(d));

  test('names each cycle along the data flow, from its first-declared step', () => {
    // b takes from a, c from b, a from c: a -> b -> c -> a.
    assert.deepEqual(findCycles(deps({ a: ['c'], b: ['a'], c: ['b'], d: [] })), [
      ['a', 'b', 'c', 'a'],
    ]);
  });

  test('a self-loop, and two separate cycles', () => {
    assert.deepEqual(findCycles(deps({ s: ['s'], x: ['y'], y: ['x'] })), [
      ['s', 's'],
      ['x', 'y', 'x'],
    ]);
  });

  test('the shortest way back when a component has several', () => {
    // a -> b -> a and a -> b -> c -> a: the first is named.
    assert.deepEqual(findCycles(deps({ a: ['b', 'c'], b: ['a'], c: ['b'] })), [['a', 'b', 'a']]);
  });

  test('no cycle, no report', () => {
    assert.deepEqual(findCycles(deps({ a: [], b: ['a'], c: ['a', 'b'] })), []);
  });
});

describe('the resolved PipelineSpec', () => {
  test('specs/pipeline.yaml: inputs as declared, steps with their services, typed outputs', () => {
    const { spec, warnings } = loadSpec(join(ROOT, 'specs', 'pipeline.yaml'));
    assert.deepEqual(warnings, []);
    assert.deepEqual(Object.keys(spec.pipelines), ['ensemble']);
    const p = spec.pipelines.ensemble!;
    assert.deepEqual(p.inputs, [{ name: 'features', datatype: 'FP32', shape: ['batch', 8] }]);
    assert.deepEqual(p.steps, [
      {
        name: 'left',
        model: 'model1',
        service: 'members',
        inputs: { input: fromInput('features') },
      },
      {
        name: 'right',
        model: 'model2',
        service: 'members',
        inputs: { input: fromInput('features') },
      },
      {
        name: 'join',
        model: 'average',
        service: 'combiner',
        inputs: { a: fromStep('left', 'output'), b: fromStep('right', 'output') },
      } satisfies PipelineStepSpec,
    ]);
    assert.deepEqual(p.outputs, [
      { name: 'mean', step: 'join', output: 'mean', datatype: 'FP32', shape: ['batch', 4] },
      { name: 'left', step: 'left', output: 'output', datatype: 'FP32', shape: ['batch', 4] },
    ]);
  });

  test('the serving fixture (test/fixtures/specs/pipeline.yaml) validates without warnings', () => {
    const { spec, warnings } = loadSpec(join(FIXTURES, 'specs', 'pipeline.yaml'));
    assert.deepEqual(warnings, []);
    assert.deepEqual(
      Object.values(spec.pipelines).map((p) => [p.name, pipelineOrder(p)]),
      [
        ['ensemble', [['left', 'right'], ['join']]],
        ['two_stage', [['first'], ['second']]],
      ],
    );
  });

  test('a spec without pipelines has an empty record', () => {
    const { spec } = loadSpec(join(ROOT, 'specs', 'quickstart.yaml'));
    assert.deepEqual(spec.pipelines, {});
  });

  test('output shapes carry the sizes the pipeline fixes, and its names', () => {
    const text = `version: 1
models:
  classifier: { path: ../models/classifier.onnx }
  two: { path: ../models/two-inputs.onnx }
services:
  api: { models: [classifier, two] }
pipelines:
  p:
    inputs:
      x: { datatype: FP32, shape: [n, 4] }
      y: { datatype: FP32, shape: [2, 3] }
    steps:
      classify: { model: classifier, inputs: { input: { input: x } } }
      join:
        model: two
        inputs: { a: { step: classify, output: probabilities }, b: { input: y } }
    outputs:
      probabilities: { step: classify, output: probabilities }
      sum: { step: join, output: sum }
  q:
    inputs: { x: { datatype: FP32, shape: [n, 4] } }
    steps: { classify: { model: classifier, inputs: { input: { input: x } } } }
    outputs: { probabilities: { step: classify, output: probabilities } }
`;
    const { spec } = validateSpec(parseSpec(text, join(FIXTURES, 'specs', 'inline.yaml')));
    // y fixes join's batch at 2, and classify's output is join's input a: 2 there too.
    assert.deepEqual(
      spec.pipelines.p?.outputs.map((o) => o.shape),
      [
        [2, 3],
        [2, 3],
      ],
    );
    // Nothing fixes the batch: the pipeline's name for it, which clients know, not the model's.
    assert.deepEqual(spec.pipelines.q?.outputs[0]?.shape, ['n', 3]);
  });

  test('without reading model files, outputs have no datatype or shape', () => {
    const { spec } = validateSpec(readSpecFile(join(ROOT, 'specs', 'pipeline-gpu.yaml')), {
      checkFiles: false,
    });
    assert.deepEqual(spec.pipelines.two_stage?.outputs, [
      {
        name: 'probabilities',
        step: 'second',
        output: 'probabilities',
        datatype: null,
        shape: null,
      },
    ]);
  });
});

describe('diagnostic codes of the bad-pipeline corpus', () => {
  // The lines are pinned by spec-corpus.test.ts; callers and tests match on the codes.
  const CASES: Record<string, string[]> = {
    '80-pipeline-named-like-model': ['pipeline-named-like-model'],
    '81-pipeline-unknown-model': ['pipeline-unknown-model', 'pipeline-unknown-model'],
    '82-pipeline-model-not-served': ['unused-model', 'pipeline-model-not-served'],
    '83-pipeline-unknown-model-input': ['pipeline-unknown-tensor', 'pipeline-unknown-tensor'],
    '84-pipeline-unknown-pipeline-input': [
      'pipeline-unused-input',
      'pipeline-unknown-input',
      'pipeline-unknown-input',
    ],
    '85-pipeline-unknown-step': ['pipeline-unknown-step'],
    '86-pipeline-unknown-step-output': ['pipeline-unknown-tensor', 'pipeline-unknown-tensor'],
    '87-pipeline-unfed-input': [
      'pipeline-unused-input',
      'pipeline-unfed-input',
      'pipeline-unfed-input',
    ],
    '88-pipeline-bad-source': [
      'pipeline-bad-source',
      'pipeline-bad-source',
      'pipeline-bad-source',
      'pipeline-bad-source',
    ],
    '89-pipeline-datatype-mismatch': ['pipeline-datatype-mismatch', 'pipeline-datatype-mismatch'],
    '90-pipeline-rank-mismatch': ['pipeline-rank-mismatch'],
    '91-pipeline-fixed-dimension-mismatch': [
      'pipeline-dimension-mismatch',
      'pipeline-dimension-mismatch',
    ],
    '92-pipeline-symbolic-dimension-mismatch': [
      'pipeline-dimension-mismatch',
      'pipeline-dimension-mismatch',
    ],
    '93-pipeline-cycle': ['pipeline-cycle', 'pipeline-cycle'],
    '94-pipeline-unused-input-and-step': [
      'pipeline-unused-input',
      'pipeline-unused-step',
      'unknown-key',
    ],
    '95-pipeline-output-unknown': ['pipeline-unknown-step', 'pipeline-unknown-tensor'],
  };
  for (const [name, codes] of Object.entries(CASES)) {
    test(name, () => {
      const file = join(FIXTURES, 'bad-specs', `${name}.yaml`);
      const e = (() => {
        try {
          loadSpec(file);
        } catch (err) {
          return err;
        }
        return undefined;
      })();
      assert.ok(e instanceof SpecError, `${name} validates`);
      assert.deepEqual(
        e.diagnostics.map((d) => d.code),
        codes,
      );
    });
  }
});

describe('plan: each pipeline step and its devices', () => {
  const devices = (fixture: string) =>
    applyCudaVisibleDevices(parseNvidiaSmiCsv(readNvidiaSmiFixture(fixture)), undefined).devices;

  test('the seed layout: model1 on cuda:0 feeds model2 on cuda:1', () => {
    const { spec } = loadSpec(join(ROOT, 'specs', 'pipeline-gpu.yaml'));
    const plan = planPlacement(spec, devices('2x-l4'));
    const steps = [
      { step: 'first', model: 'model1', service: 'multi_gpu', devices: ['cuda:0'] },
      { step: 'second', model: 'model2', service: 'multi_gpu', devices: ['cuda:1'] },
    ];
    assert.deepEqual(plan.pipelines, [{ name: 'two_stage', steps }]);
    assert.deepEqual(planToJson(plan).pipelines, [{ name: 'two_stage', steps }]);
    const text = formatPlanTable(plan);
    assert.ok(
      text.includes(
        [
          '',
          'pipeline steps, in the order they run:',
          'PIPELINE   STEP    MODEL   SERVICE    DEVICES',
          'two_stage  first   model1  multi_gpu  cuda:0',
          'two_stage  second  model2  multi_gpu  cuda:1',
          '',
        ].join('\n'),
      ),
      text,
    );
  });

  test('on the CPU, in the order the steps run; a model on two workers is listed once', () => {
    const { spec } = loadSpec(join(ROOT, 'specs', 'pipeline.yaml'));
    const plan = planPlacement(spec, []);
    assert.deepEqual(
      plan.pipelines[0]?.steps.map((s) => [s.step, s.service, s.devices]),
      [
        ['left', 'members', ['cpu']],
        ['right', 'members', ['cpu']],
        ['join', 'combiner', ['cpu']],
      ],
    );
  });

  test('a service that is not planned (--service) leaves its steps without devices', () => {
    const { spec } = loadSpec(join(ROOT, 'specs', 'pipeline.yaml'));
    const plan = planPlacement(spec, [], { services: ['combiner'] });
    assert.deepEqual(
      plan.pipelines[0]?.steps.map((s) => s.devices),
      [[], [], ['cpu']],
    );
    assert.match(formatPlanTable(plan), /^ensemble {2}left {3}model1 {3}members {3}-$/m);
  });

  test('a spec without pipelines: no section in the table, an empty list in JSON', () => {
    const { spec } = loadSpec(join(ROOT, 'specs', 'multi-gpu.yaml'));
    const plan = planPlacement(spec, devices('2x-l4'));
    assert.deepEqual(planToJson(plan).pipelines, []);
    assert.doesNotMatch(formatPlanTable(plan), /pipeline/);
  });
});
