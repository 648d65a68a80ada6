import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CostModel, createBatcher, type DecideInput, decide } from '../src/runtime/batcher.js';
import type { InferResult } from '../src/runtime/messages.js';
import type { WireTensor } from '../src/tensor/types.js';

const base: DecideInput = {
  rows: 1,
  oldestWaitMs: 0,
  maxBatchSize: 32,
  maxLatencyMs: 5,
  arrivalGapMs: 0.1,
  fixedCostMs: 3,
  policy: 'adaptive',
};

describe('decide', () => {
  const cases: [string, Partial<DecideInput>, boolean][] = [
    ['a full batch goes at once', { rows: 32 }, true],
    ['a batch past max_latency goes', { oldestWaitMs: 5 }, true],
    ['adaptive: no one else coming soon -> go', { arrivalGapMs: 10 }, true],
    ['adaptive: unknown arrival rate -> go', { arrivalGapMs: Number.POSITIVE_INFINITY }, true],
    [
      'adaptive: waiting costs the queue more than a run -> go',
      { rows: 31, arrivalGapMs: 0.1 },
      true,
    ],
    [
      'adaptive: next request soon and runs are costly -> wait',
      { rows: 4, arrivalGapMs: 0.1 },
      false,
    ],
    ['adaptive: cheap runs are not worth waiting for', { fixedCostMs: 0.01 }, true],
    ['fixed: waits until max_latency', { policy: 'fixed', arrivalGapMs: 10 }, false],
    ['fixed: full batch goes', { policy: 'fixed', rows: 40 }, true],
  ];
  for (const [name, over, dispatch] of cases) {
    test(name, () => assert.equal(decide({ ...base, ...over }).dispatch, dispatch));
  }

  test('a wait never runs past max_latency', () => {
    const d = decide({ ...base, rows: 2, oldestWaitMs: 4.9, arrivalGapMs: 0.05 });
    assert.equal(d.dispatch, false);
    assert.ok(!d.dispatch && d.waitMs <= 0.1 + 1e-9, JSON.stringify(d));
  });
});

describe('CostModel', () => {
  test('fits time = a*rows + b', () => {
    const m = new CostModel();
    for (const rows of [1, 2, 4, 8, 16, 32, 1, 64]) m.observe(rows, 0.5 * rows + 3);
    assert.ok(Math.abs(m.a - 0.5) < 1e-9, `a=${m.a}`);
    assert.ok(Math.abs(m.b - 3) < 1e-9, `b=${m.b}`);
  });

  test('with one batch size seen, all time is fixed cost', () => {
    const m = new CostModel();
    m.observe(1, 4);
    m.observe(1, 6);
    assert.equal(m.a, 0);
    assert.equal(m.b, 5);
  });

  test('forgets old samples beyond its window', () => {
    const m = new CostModel(4);
    for (let i = 1; i <= 4; i++) m.observe(i, 100 * i);
    for (let i = 1; i <= 4; i++) m.observe(i, i + 1);
    assert.ok(Math.abs(m.a - 1) < 1e-9 && Math.abs(m.b - 1) < 1e-9, `a=${m.a} b=${m.b}`);
  });
});

function tensor(rows: number, cols: number, start: number): WireTensor {
  return {
    type: 'float32',
    dims: [rows, cols],
    data: Float32Array.from({ length: rows * cols }, (_, i) => start + i),
  };
}

/** An executor that doubles its input, records each batch, and finishes when told. */
function recorder(delayMs = 0) {
  const batches: number[] = [];
  let busy = 0;
  return {
    batches,
    busy: () => busy,
    async execute(inputs: Readonly<Record<string, WireTensor>>): Promise<InferResult> {
      busy++;
      const x = inputs.x!;
      batches.push(x.dims[0]!);
      await new Promise((r) => setTimeout(r, delayMs));
      busy--;
      const data = Float32Array.from(x.data as Float32Array, (v) => v * 2);
      return { outputs: { y: { type: 'float32', dims: x.dims, data } }, inferMs: delayMs };
    },
  };
}

describe('createBatcher', () => {
  test('a burst on one busy worker becomes few batches, each result its own rows', async () => {
    const r = recorder(20);
    const batcher = createBatcher({
      maxBatchSize: 8,
      maxLatencyMs: 50,
      capacity: (full) => (r.busy() === 0 || (full && r.busy() < 2) ? 1 : 0),
      execute: (i) => r.execute(i).finally(() => setImmediate(() => batcher.poke())),
    });
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => batcher.submit({ x: tensor(1, 3, i * 10) }, [])),
    );
    assert.ok(r.batches.length < 20, `batches: ${r.batches}`);
    assert.equal(
      r.batches.reduce((a, b) => a + b, 0),
      20,
    );
    assert.ok(
      r.batches.every((n) => n <= 8),
      `batches: ${r.batches}`,
    );
    results.forEach((res, i) => {
      assert.deepEqual(
        [...(res.outputs.y!.data as Float32Array)],
        [i * 20, i * 20 + 2, i * 20 + 4],
      );
      assert.deepEqual(res.outputs.y!.dims, [1, 3]);
    });
  });

  test('requests with different inner shapes are not merged', async () => {
    const r = recorder(5);
    const batcher = createBatcher({
      maxBatchSize: 8,
      maxLatencyMs: 5,
      policy: 'fixed',
      capacity: () => 1,
      execute: (i) => r.execute(i),
    });
    const [a, b] = await Promise.all([
      batcher.submit({ x: tensor(1, 3, 0) }, []),
      batcher.submit({ x: tensor(1, 2, 0) }, []),
    ]);
    assert.deepEqual(a!.outputs.y!.dims, [1, 3]);
    assert.deepEqual(b!.outputs.y!.dims, [1, 2]);
    assert.deepEqual(r.batches, [1, 1]);
  });

  test('a request larger than max_batch_size is still served, on its own', async () => {
    const r = recorder(0);
    const batcher = createBatcher({
      maxBatchSize: 4,
      maxLatencyMs: 1,
      capacity: () => 1,
      execute: (i) => r.execute(i),
    });
    const res = await batcher.submit({ x: tensor(10, 1, 0) }, []);
    assert.deepEqual(res.outputs.y!.dims, [10, 1]);
    assert.deepEqual(r.batches, [10]);
  });

  test('a lone request waits no longer than max_latency_ms (fixed policy)', async () => {
    const r = recorder(0);
    const batcher = createBatcher({
      maxBatchSize: 8,
      maxLatencyMs: 20,
      policy: 'fixed',
      capacity: () => 1,
      execute: (i) => r.execute(i),
    });
    const started = performance.now();
    const res = await batcher.submit({ x: tensor(1, 1, 0) }, []);
    const waited = performance.now() - started;
    assert.ok(
      res.queueMs >= 19 && waited < 20 + 30,
      `queue ${res.queueMs} ms, waited ${waited} ms`,
    );
  });

  test('adaptive: a lone request on an idle worker goes at once', async () => {
    const r = recorder(0);
    const batcher = createBatcher({
      maxBatchSize: 8,
      maxLatencyMs: 1000,
      capacity: () => 1,
      execute: (i) => r.execute(i),
    });
    const res = await batcher.submit({ x: tensor(1, 1, 0) }, []);
    assert.ok(res.queueMs < 5, `queue ${res.queueMs} ms`);
  });

  test('an executor failure fails every request of the batch, and the next batch still runs', async () => {
    let fail = true;
    const batcher = createBatcher({
      maxBatchSize: 8,
      maxLatencyMs: 5,
      policy: 'fixed',
      capacity: () => 1,
      execute: async (inputs) => {
        if (fail) throw new Error('boom');
        return { outputs: { y: inputs.x! }, inferMs: 0 };
      },
    });
    const failed = await Promise.allSettled([
      batcher.submit({ x: tensor(1, 1, 0) }, []),
      batcher.submit({ x: tensor(1, 1, 1) }, []),
    ]);
    assert.deepEqual(
      failed.map((f) => f.status),
      ['rejected', 'rejected'],
    );
    fail = false;
    const ok = await batcher.submit({ x: tensor(1, 1, 7) }, []);
    assert.deepEqual([...(ok.outputs.y!.data as Float32Array)], [7]);
  });
});
