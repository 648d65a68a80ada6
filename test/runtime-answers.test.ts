// A worker thread sends the answers of a run of short requests back in one message
// (RuntimeOptions.holdAnswersMs): an answer waits for the next ones only while more requests
// are queued and only as long as the hold allows, judged by the last run's length. So the last
// answer of a burst never waits, a long run's answer goes at once, and no held answer is lost
// or given to the wrong request.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { planPlacement } from '../src/plan/index.js';
import { type Runtime, type RuntimeOptions, startRuntime } from '../src/runtime/pool.js';
import { parseSpec } from '../src/spec/parse.js';
import { validateSpec } from '../src/spec/validate.js';
import { TEST_MODELS } from './helpers/server.js';

async function runtimeWith(opts: RuntimeOptions): Promise<Runtime> {
  const text = `version: 1
models:
  tiny: { path: ${join(TEST_MODELS, 'tiny.onnx')} }
  slow: { path: ${join(TEST_MODELS, 'slow.onnx')}, session: { intra_op_threads: 1 } }
services:
  one:
    models: [tiny, slow]
    workers: 1
`;
  const { spec } = validateSpec(parseSpec(text, join(TEST_MODELS, 'answers.yaml')));
  return startRuntime(planPlacement(spec, []), opts);
}

const tiny = (runtime: Runtime, i: number) =>
  runtime.infer(
    'tiny',
    { x: { type: 'float32', dims: [1, 4], data: new Float32Array(4).fill(i) } },
    [],
  );

const slow = (runtime: Runtime, rows: number) =>
  runtime.infer(
    'slow',
    { x: { type: 'float32', dims: [rows, 64], data: new Float32Array(rows * 64).fill(0.1) } },
    [],
  );

/** Resolves with the time `p` settled at, or rejects after `ms`. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    p.then(
      () => {
        clearTimeout(timer);
        resolve(performance.now());
      },
      (e) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

describe('answers held for a minute at most', () => {
  let runtime: Runtime;
  before(async () => {
    runtime = await runtimeWith({ holdAnswersMs: 60_000 });
  });
  after(() => runtime.close());

  test('a lone request is answered at once: nothing is queued behind it', async () => {
    await within(tiny(runtime, 1), 5_000, 'lone request');
  });

  test('a burst: every answer arrives, in order, each with its own request’s output', async () => {
    const order: number[] = [];
    const n = 40;
    await within(
      Promise.all(
        Array.from({ length: n }, (_, i) =>
          tiny(runtime, i).then((r) => {
            // tiny is x + c: row 0 tells which request the output belongs to.
            assert.equal(Math.round((r.outputs.y!.data as Float32Array)[0]! - 0.5), i);
            order.push(i);
          }),
        ),
      ),
      10_000,
      'burst',
    );
    assert.deepEqual(
      order,
      Array.from({ length: n }, (_, i) => i),
    );
  });

  test('a long run followed by another: held until the queue is empty, then sent together', async () => {
    const a = slow(runtime, 4);
    const b = slow(runtime, 4);
    const [ta, tb] = await Promise.all([within(a, 30_000, 'a'), within(b, 30_000, 'b')]);
    assert.ok(tb - ta < 30, `a's answer came ${(tb - ta).toFixed(0)} ms before b's`);
  });

  test('a request that arrives during a run counts as queued when the run ends', async () => {
    // a runs for hundreds of milliseconds; b reaches the thread while it runs, so it waits in
    // the port, not yet in the thread's queue, when a's run ends.
    const a = slow(runtime, 4);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const b = slow(runtime, 4);
    const [ta, tb] = await Promise.all([within(a, 30_000, 'a'), within(b, 30_000, 'b')]);
    assert.ok(tb - ta < 30, `a's answer came ${(tb - ta).toFixed(0)} ms before b's`);
  });
});

describe('the default hold (a fraction of a millisecond)', () => {
  let runtime: Runtime;
  before(async () => {
    runtime = await runtimeWith({});
  });
  after(() => runtime.close());

  test('a long run’s answer goes at once, not with the next one', async () => {
    // Each takes tens of milliseconds or more, far beyond the hold.
    const a = slow(runtime, 4);
    const b = slow(runtime, 4);
    const [ta, tb] = await Promise.all([within(a, 30_000, 'a'), within(b, 30_000, 'b')]);
    assert.ok(tb - ta >= 20, `a's answer came only ${(tb - ta).toFixed(1)} ms before b's`);
  });
});
