// Several onnxruntime threads loading and running at once (onnxruntime-node 1.21 crashed here):
// four workers each open three sessions together, then many clients send requests at once, and
// every answer equals a direct session.run.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import ort from 'onnxruntime-node';
import { mulberry32 } from '../scripts/onnx-builder.js';
import { BentoClient, type InferInput } from '../src/client.js';
import { type InProcessServer, startInProcess, TEST_MODELS, TEST_SPECS } from './helpers/server.js';

let srv: InProcessServer;
const direct = new Map<string, ort.InferenceSession>();

before(async () => {
  srv = await startInProcess(join(TEST_SPECS, 'four-workers.yaml'));
  for (const [model, file] of [
    ['classifier', 'classifier.onnx'],
    ['two_inputs', 'two-inputs.onnx'],
    ['tiny', 'tiny.onnx'],
  ] as const) {
    direct.set(
      model,
      await ort.InferenceSession.create(join(TEST_MODELS, file), { intraOpNumThreads: 1 }),
    );
  }
});
after(async () => {
  await srv?.close();
  for (const s of direct.values()) await s.release();
});

function floats(n: number, seed: number): Float32Array {
  const rng = mulberry32(seed);
  return Float32Array.from({ length: n }, () => rng() * 2 - 1);
}

/** Request number `i`: a model and seeded inputs of a varying batch size. */
function requestFor(i: number): { model: string; inputs: Record<string, InferInput> } {
  const rows = 1 + (i % 5);
  switch (i % 3) {
    case 0:
      return {
        model: 'classifier',
        inputs: { input: { data: floats(rows * 4, i), shape: [rows, 4] } },
      };
    case 1:
      return {
        model: 'two_inputs',
        inputs: {
          a: { data: floats(rows * 3, i), shape: [rows, 3] },
          b: { data: floats(rows * 3, i + 1000), shape: [rows, 3] },
        },
      };
    default:
      return { model: 'tiny', inputs: { x: { data: floats(rows * 4, i), shape: [rows, 4] } } };
  }
}

test('four threads loaded their sessions at once, each on its own thread', () => {
  const workers = srv.runtime.workers();
  assert.equal(workers.length, 4);
  const threads = new Set(workers.map((w) => w.threadId));
  assert.equal(threads.size, 4, 'each worker has its own thread');
  for (const w of workers) {
    assert.equal(w.state, 'ready');
    assert.equal(w.thread?.worker, w.worker, 'the thread reports its own slot');
    assert.equal(w.thread?.threadId, w.threadId);
    assert.deepEqual(
      w.sessions.map((s) => s.model),
      ['classifier', 'two_inputs', 'tiny'],
    );
  }
});

test('many clients at once: every answer equals a direct session.run, every worker served', async () => {
  const CLIENTS = 8;
  const PER_CLIENT = 24;
  const clients = Array.from(
    { length: CLIENTS },
    () => new BentoClient(srv.url, { connections: 4 }),
  );
  const before = srv.runtime.workers().map((w) => w.completed);
  try {
    const answers = await Promise.all(
      clients.flatMap((client, c) =>
        Array.from({ length: PER_CLIENT }, async (_, k) => {
          const i = c * PER_CLIENT + k;
          const { model, inputs } = requestFor(i);
          return { i, res: await client.infer(model, inputs, { id: `r${i}` }) };
        }),
      ),
    );
    assert.equal(answers.length, CLIENTS * PER_CLIENT);
    for (const { i, res } of answers) {
      const { model, inputs } = requestFor(i);
      assert.equal(res.id, `r${i}`);
      assert.equal(res.modelName, model);
      const feeds = Object.fromEntries(
        Object.entries(inputs).map(([name, t]) => [
          name,
          new ort.Tensor('float32', t.data as Float32Array, [...t.shape]),
        ]),
      );
      const expected = await direct.get(model)!.run(feeds);
      assert.deepEqual(Object.keys(res.outputs).sort(), Object.keys(expected).sort());
      for (const [name, t] of Object.entries(expected)) {
        assert.deepEqual(res.outputs[name]!.shape, t.dims, `request ${i} ${name} shape`);
        assert.deepEqual(res.outputs[name]!.data, t.data, `request ${i} ${name} data`);
      }
    }
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
  const after = srv.runtime.workers();
  const served = after.map((w, i) => w.completed - before[i]!);
  assert.equal(
    served.reduce((a, b) => a + b, 0),
    CLIENTS * PER_CLIENT,
  );
  for (const [i, n] of served.entries()) assert.ok(n > 0, `worker ${i} served nothing: ${served}`);
  for (const w of after) {
    assert.equal(w.restarts, 0);
    assert.equal(w.inFlight, 0);
  }
});
