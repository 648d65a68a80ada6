import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { planPlacement } from '../src/plan/index.js';
import { type Runtime, startRuntime } from '../src/runtime/pool.js';
import { parseSpec } from '../src/spec/parse.js';
import { validateSpec } from '../src/spec/validate.js';
import { TEST_MODELS } from './helpers/server.js';

// One worker, no batching: requests queue for the thread and must leave in arrival order.
// Piscina's default puts a task that finds the thread busy back at the TAIL of its queue,
// which starved single requests for seconds under steady load; the runtime asks for FIFO.
let runtime: Runtime;

before(async () => {
  const text = `version: 1
models:
  tiny: { path: ${join(TEST_MODELS, 'tiny.onnx')} }
services:
  one:
    models: [tiny]
    workers: 1
`;
  const { spec } = validateSpec(parseSpec(text, join(TEST_MODELS, 'fifo.yaml')));
  runtime = await startRuntime(planPlacement(spec, []));
});

after(() => runtime.close());

test('requests queued for one worker complete in the order they arrived', async () => {
  const order: number[] = [];
  const n = 24;
  await Promise.all(
    Array.from({ length: n }, (_, i) =>
      runtime
        .infer(
          'tiny',
          { x: { type: 'float32', dims: [1, 4], data: new Float32Array(4).fill(i) } },
          [],
        )
        .then((r) => {
          // The output carries the request's own input: x + c, so row 0 tells which one it was.
          assert.equal(Math.round((r.outputs.y!.data as Float32Array)[0]! - 0.5), i);
          order.push(i);
        }),
    ),
  );
  assert.deepEqual(
    order,
    Array.from({ length: n }, (_, i) => i),
  );
});
