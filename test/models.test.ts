// Checks the committed ONNX models: they load in onnxruntime-node with the expected signatures,
// compute what their seeded weights say they should (recomputed here in plain JS), and are
// exactly what scripts/make-models.ts generates today.
// Before onnxruntime-node: FP16 as raw half bits on Node 24 too, as in the worker threads.
import '../src/runtime/float16-guard.js';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { InferenceSession, type OnnxValue, Tensor } from 'onnxruntime-node';
import {
  CNN_SMALL_CHANNELS,
  committedModels,
  EMBEDDER,
  MODEL1,
  MODEL2,
  NOT_ONNX,
  RERANKER,
  writeModels,
} from '../scripts/make-models.js';
import {
  CLASSIFIER_SEED,
  CLASSIFIER_WIDTHS,
  type CnnParams,
  cnnParams,
  DEFAULT_OPSET,
  type DenseLayer,
  decodeModel,
  denseLayers,
  type ElemType,
  IDENTITY_TYPES,
  IR_VERSION,
  type MlpOptions,
  mlpWidths,
  mulberry32,
  TINY_CONSTANT,
} from '../scripts/onnx-builder.js';

// dist/test/models.test.js -> the repository root.
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FIXTURES = 'test/fixtures/models';
const SPECS = 'specs/models';

type Dim = number | string;
interface Signature {
  readonly name: string;
  readonly type: ElemType;
  readonly shape: readonly Dim[];
}
const f32 = (name: string, ...shape: Dim[]): Signature => ({ name, type: 'float32', shape });

const mlpSig = (o: MlpOptions): { inputs: Signature[]; outputs: Signature[] } => ({
  inputs: [f32(o.inputName ?? 'input', 'batch', o.inputs)],
  outputs: [f32(o.outputName ?? 'output', 'batch', o.outputs)],
});
const classifierSig = {
  inputs: [f32('input', 'batch', 4)],
  outputs: [f32('probabilities', 'batch', 3)],
};

/** The expected signature of every committed model, by path relative to the repository root. */
const SIGNATURES: Readonly<Record<string, { inputs: Signature[]; outputs: Signature[] }>> = {
  [`${SPECS}/classifier.onnx`]: classifierSig,
  [`${SPECS}/model1.onnx`]: mlpSig(MODEL1),
  [`${SPECS}/model2.onnx`]: mlpSig(MODEL2),
  [`${SPECS}/embedder.onnx`]: mlpSig(EMBEDDER),
  [`${SPECS}/reranker.onnx`]: mlpSig(RERANKER),
  [`${FIXTURES}/classifier.onnx`]: classifierSig,
  [`${FIXTURES}/model1.onnx`]: mlpSig(MODEL1),
  [`${FIXTURES}/model2.onnx`]: mlpSig(MODEL2),
  [`${FIXTURES}/tiny.onnx`]: { inputs: [f32('x', 'batch', 4)], outputs: [f32('y', 'batch', 4)] },
  [`${FIXTURES}/types.onnx`]: {
    inputs: IDENTITY_TYPES.map((t) => ({
      name: `in_${t.suffix}`,
      type: t.type,
      shape: ['batch', 'n'],
    })),
    outputs: IDENTITY_TYPES.map((t) => ({
      name: `out_${t.suffix}`,
      type: t.type,
      shape: ['batch', 'n'],
    })),
  },
  [`${FIXTURES}/fixed-batch.onnx`]: {
    inputs: [f32('input', 1, 4)],
    outputs: [f32('probabilities', 1, 3)],
  },
  [`${FIXTURES}/slow.onnx`]: { inputs: [f32('x', 'batch', 64)], outputs: [f32('y', 'batch', 64)] },
  [`${FIXTURES}/two-inputs.onnx`]: {
    inputs: [f32('a', 'batch', 3), f32('b', 'batch', 3)],
    outputs: [f32('sum', 'batch', 3), f32('product', 'batch', 3)],
  },
  [`${FIXTURES}/cnn-small.onnx`]: {
    inputs: [f32('input', 'batch', 3, 32, 32)],
    outputs: [f32('logits', 'batch', 10)],
  },
};

const NOT_ONNX_PATH = `${FIXTURES}/not-onnx.onnx`;
const MAX_COMMITTED_BYTES = 1024 * 1024;

function open(path: string): Promise<InferenceSession> {
  // One thread: the models' timings are documented for one thread, and tests run in parallel.
  return InferenceSession.create(join(ROOT, path), { intraOpNumThreads: 1, interOpNumThreads: 1 });
}

function signatures(meta: readonly InferenceSession.ValueMetadata[]): Signature[] {
  return meta.map((m) => {
    assert.ok(m.isTensor, `${m.name} should be a tensor`);
    return { name: m.name, type: m.type as ElemType, shape: [...m.shape] };
  });
}

/** The float32 data of an output, failing the test if it is missing or of another type. */
function floats(value: OnnxValue | undefined, dims: readonly number[]): Float32Array {
  assert.ok(value instanceof Tensor, 'output should be a tensor');
  assert.equal(value.type, 'float32');
  assert.deepEqual(value.dims, dims);
  assert.ok(value.data instanceof Float32Array);
  return value.data;
}

/** Seeded test inputs in [-1, 1). */
function randomInput(n: number, seed: number): Float32Array {
  const rng = mulberry32(seed);
  return Float32Array.from({ length: n }, () => rng() * 2 - 1);
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-5): void {
  assert.equal(actual.length, expected.length, 'lengths differ');
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    assert.ok(
      Math.abs(a - e) <= tol * Math.max(1, Math.abs(e)),
      `element ${i}: got ${a}, expected ${e}`,
    );
  }
}

// ---- reference implementations (float64, from the same seeded weights) -----------------------

function dense(x: ArrayLike<number>, rows: number, l: DenseLayer, relu: boolean): Float64Array {
  const y = new Float64Array(rows * l.outDim);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < l.outDim; o++) {
      let acc = l.b[o]!;
      for (let i = 0; i < l.inDim; i++) acc += x[r * l.inDim + i]! * l.w[i * l.outDim + o]!;
      y[r * l.outDim + o] = relu ? Math.max(0, acc) : acc;
    }
  }
  return y;
}

function mlpReference(x: Float32Array, rows: number, layers: readonly DenseLayer[]): Float64Array {
  let h: ArrayLike<number> = x;
  layers.forEach((l, i) => {
    h = dense(h, rows, l, i < layers.length - 1);
  });
  return h as Float64Array;
}

function softmaxRows(x: Float64Array, cols: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < x.length / cols; r++) {
    const row = x.subarray(r * cols, (r + 1) * cols);
    const max = Math.max(...row);
    const exps = Array.from(row, (v) => Math.exp(v - max));
    const sum = exps.reduce((a, b) => a + b, 0);
    exps.forEach((e, c) => {
      y[r * cols + c] = e / sum;
    });
  }
  return y;
}

function classifierReference(x: Float32Array, rows: number): Float64Array {
  const layers = denseLayers(CLASSIFIER_WIDTHS, CLASSIFIER_SEED);
  return softmaxRows(mlpReference(x, rows, layers), 3);
}

/** One image through the CNN: 3x3 convolutions with zero padding, Relu, mean, dense. */
function cnnReference(x: Float32Array, p: CnnParams): Float64Array {
  const s = p.size;
  let h: Float64Array = Float64Array.from(x);
  for (const l of p.convs) {
    const out = new Float64Array(l.outC * s * s);
    for (let o = 0; o < l.outC; o++) {
      for (let yy = 0; yy < s; yy++) {
        for (let xx = 0; xx < s; xx++) {
          let acc = l.b[o]!;
          for (let c = 0; c < l.inC; c++) {
            for (let ky = 0; ky < 3; ky++) {
              const iy = yy + ky - 1;
              if (iy < 0 || iy >= s) continue;
              for (let kx = 0; kx < 3; kx++) {
                const ix = xx + kx - 1;
                if (ix < 0 || ix >= s) continue;
                acc += h[(c * s + iy) * s + ix]! * l.w[((o * l.inC + c) * 3 + ky) * 3 + kx]!;
              }
            }
          }
          out[(o * s + yy) * s + xx] = Math.max(0, acc);
        }
      }
    }
    h = out;
  }
  const channels = p.fc.inDim;
  const pooled = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    let sum = 0;
    for (let i = 0; i < s * s; i++) sum += h[c * s * s + i]!;
    pooled[c] = sum / (s * s);
  }
  return dense(pooled, 1, p.fc, false);
}

// ---- tests -------------------------------------------------------------------------------------

test('every committed model is listed with a signature, and is small', async () => {
  const listed = committedModels().map((m) => m.path);
  assert.deepEqual(
    listed.filter((p) => p !== NOT_ONNX_PATH).sort(),
    Object.keys(SIGNATURES).sort(),
  );
  for (const path of listed) {
    const { size } = await stat(join(ROOT, path));
    assert.ok(size < MAX_COMMITTED_BYTES, `${path} is ${size} bytes`);
  }
});

test('every ONNX file in the model folders loads with the expected signature', async () => {
  for (const dir of [SPECS, FIXTURES]) {
    const files = (await readdir(join(ROOT, dir))).filter((f) => f.endsWith('.onnx'));
    for (const file of files) {
      const path = `${dir}/${file}`;
      if (path === NOT_ONNX_PATH) continue;
      const session = await open(path);
      try {
        const expected = SIGNATURES[path];
        if (!expected) continue; // a model added by hand elsewhere: loading it is all we check
        assert.deepEqual(signatures(session.inputMetadata), expected.inputs, `${path} inputs`);
        assert.deepEqual(signatures(session.outputMetadata), expected.outputs, `${path} outputs`);
        const model = decodeModel(await readFile(join(ROOT, path)));
        assert.equal(Number(model.irVersion), IR_VERSION, `${path} IR version`);
        assert.deepEqual(
          model.opsetImport.map((o) => [o.domain, Number(o.version)]),
          [['', DEFAULT_OPSET]],
          `${path} opsets`,
        );
      } finally {
        await session.release();
      }
    }
  }
});

test('not-onnx.onnx is plain text and fails to load', async () => {
  assert.equal(await readFile(join(ROOT, NOT_ONNX_PATH), 'utf8'), NOT_ONNX);
  await assert.rejects(open(NOT_ONNX_PATH));
});

test('classifier: softmax of the seeded two-layer network; rows sum to 1', async () => {
  const rows = 5;
  const x = randomInput(rows * 4, 1);
  const expected = classifierReference(x, rows);
  for (const path of [`${SPECS}/classifier.onnx`, `${FIXTURES}/classifier.onnx`]) {
    const session = await open(path);
    const out = await session.run({ input: new Tensor('float32', x, [rows, 4]) });
    const p = floats(out.probabilities, [rows, 3]);
    assertClose(p, expected);
    for (let r = 0; r < rows; r++) {
      const sum = p[r * 3]! + p[r * 3 + 1]! + p[r * 3 + 2]!;
      assert.ok(Math.abs(sum - 1) < 1e-6, `row ${r} sums to ${sum}`);
    }
    await session.release();
  }
});

test('fixed-batch: the classifier for exactly one row', async () => {
  const session = await open(`${FIXTURES}/fixed-batch.onnx`);
  const x = randomInput(4, 2);
  const out = await session.run({ input: new Tensor('float32', x, [1, 4]) });
  assertClose(floats(out.probabilities, [1, 3]), classifierReference(x, 1));
  const two = new Tensor('float32', randomInput(8, 3), [2, 4]);
  await assert.rejects(session.run({ input: two }));
  await session.release();
});

test('MLPs match their seeded weights, and model1 differs from model2', async () => {
  const cases: readonly [string, MlpOptions][] = [
    [`${SPECS}/model1.onnx`, MODEL1],
    [`${SPECS}/model2.onnx`, MODEL2],
    [`${SPECS}/embedder.onnx`, EMBEDDER],
    [`${SPECS}/reranker.onnx`, RERANKER],
    [`${FIXTURES}/model1.onnx`, MODEL1],
    [`${FIXTURES}/model2.onnx`, MODEL2],
  ];
  const rows = 3;
  const results = new Map<string, Float32Array>();
  for (const [path, o] of cases) {
    const session = await open(path);
    const x = randomInput(rows * o.inputs, 4);
    const out = await session.run({
      [o.inputName ?? 'input']: new Tensor('float32', x, [rows, o.inputs]),
    });
    const y = floats(out[o.outputName ?? 'output'], [rows, o.outputs]);
    assertClose(y, mlpReference(x, rows, denseLayers(mlpWidths(o), o.seed)));
    results.set(path, y);
    await session.release();
  }
  assert.notDeepEqual(results.get(`${SPECS}/model1.onnx`), results.get(`${SPECS}/model2.onnx`));
});

test('tiny: y = x + c exactly', async () => {
  const session = await open(`${FIXTURES}/tiny.onnx`);
  const rows = 3;
  const x = randomInput(rows * 4, 5);
  const out = await session.run({ x: new Tensor('float32', x, [rows, 4]) });
  const expected = x.map((v, i) => v + TINY_CONSTANT[i % 4]!); // Float32Array.map rounds to float32
  assert.deepEqual(floats(out.y, [rows, 4]), expected);
  await session.release();
});

/** Two rows of three values per type, with edge cases where the type has them. */
function identityInput(type: ElemType): Tensor {
  const dims = [2, 3];
  switch (type) {
    case 'float32':
      return new Tensor(type, Float32Array.from([0, -0, 1.5, -3.25e38, Number.NaN, 1e-45]), dims);
    case 'float64':
      return new Tensor(
        type,
        Float64Array.from([0, -0, Math.PI, -1e308, Number.NaN, 5e-324]),
        dims,
      );
    case 'float16':
      // Raw half bits: 0, -0, 1, 65504 (max), -inf, NaN.
      return new Tensor(
        type,
        Uint16Array.from([0x0000, 0x8000, 0x3c00, 0x7bff, 0xfc00, 0x7e00]),
        dims,
      );
    case 'int8':
      return new Tensor(type, Int8Array.from([-128, -1, 0, 1, 42, 127]), dims);
    case 'int16':
      return new Tensor(type, Int16Array.from([-32768, -1, 0, 1, 4242, 32767]), dims);
    case 'int32':
      return new Tensor(type, Int32Array.from([-(2 ** 31), -1, 0, 1, 424242, 2 ** 31 - 1]), dims);
    case 'int64':
      return new Tensor(
        type,
        BigInt64Array.from([-(2n ** 63n), -1n, 0n, 1n, 2n ** 53n + 1n, 2n ** 63n - 1n]),
        dims,
      );
    case 'uint8':
      return new Tensor(type, Uint8Array.from([0, 1, 42, 128, 200, 255]), dims);
    case 'uint16':
      return new Tensor(type, Uint16Array.from([0, 1, 42, 32768, 50000, 65535]), dims);
    case 'uint32':
      return new Tensor(type, Uint32Array.from([0, 1, 42, 2 ** 31, 3e9, 2 ** 32 - 1]), dims);
    case 'uint64':
      return new Tensor(
        type,
        BigUint64Array.from([0n, 1n, 42n, 2n ** 63n, 2n ** 53n + 1n, 2n ** 64n - 1n]),
        dims,
      );
    case 'bool':
      return new Tensor(type, Uint8Array.from([0, 1, 1, 0, 0, 1]), dims);
    case 'string':
      return new Tensor(
        type,
        ['', 'a', 'hello world', 'naïve ☃', 'tab\there', 'x'.repeat(100)],
        dims,
      );
  }
}

/** Byte-level view, so -0 and NaN payloads are compared exactly. */
function bytesOf(data: Tensor['data']): Uint8Array | string[] {
  if (Array.isArray(data)) return data;
  assert.ok(ArrayBuffer.isView(data));
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

test('types: every element type round-trips through Identity exactly', async () => {
  const session = await open(`${FIXTURES}/types.onnx`);
  const feeds: Record<string, Tensor> = {};
  for (const { suffix, type } of IDENTITY_TYPES) feeds[`in_${suffix}`] = identityInput(type);
  const out = await session.run(feeds);
  for (const { suffix, type } of IDENTITY_TYPES) {
    const input = feeds[`in_${suffix}`]!;
    const output = out[`out_${suffix}`];
    assert.ok(output instanceof Tensor, `out_${suffix}`);
    assert.equal(output.type, type);
    assert.deepEqual(output.dims, [2, 3]);
    assert.deepEqual(bytesOf(output.data), bytesOf(input.data), `out_${suffix} data`);
  }
  await session.release();
});

test('two-inputs: sum and product; an output filter; a missing input is refused', async () => {
  const session = await open(`${FIXTURES}/two-inputs.onnx`);
  const a = Float32Array.from([1, 2, 3, -1, 0.5, 10]);
  const b = Float32Array.from([4, 5, 6, 2, 0.25, -10]);
  const feeds = { a: new Tensor('float32', a, [2, 3]), b: new Tensor('float32', b, [2, 3]) };
  const out = await session.run(feeds);
  assert.deepEqual(
    floats(out.sum, [2, 3]),
    a.map((v, i) => v + b[i]!),
  );
  assert.deepEqual(
    floats(out.product, [2, 3]),
    a.map((v, i) => v * b[i]!),
  );
  const onlySum = await session.run(feeds, ['sum']);
  assert.deepEqual(Object.keys(onlySum), ['sum']);
  await assert.rejects(session.run({ a: feeds.a }));
  await session.release();
});

test('cnn-small: matches a plain-JS convolution of the seeded weights', async () => {
  const p = cnnParams({ channels: CNN_SMALL_CHANNELS });
  const session = await open(`${FIXTURES}/cnn-small.onnx`);
  const x = randomInput(3 * 32 * 32, 6);
  const out = await session.run({ input: new Tensor('float32', x, [1, 3, 32, 32]) });
  assertClose(floats(out.logits, [1, 10]), cnnReference(x, p), 1e-4);
  await session.release();
});

test('slow: runs, is deterministic, and keeps batch rows independent', async () => {
  const session = await open(`${FIXTURES}/slow.onnx`);
  const x = randomInput(2 * 64, 7);
  const one = floats(
    (await session.run({ x: new Tensor('float32', x.slice(0, 64), [1, 64]) })).y,
    [1, 64],
  );
  const again = floats(
    (await session.run({ x: new Tensor('float32', x.slice(0, 64), [1, 64]) })).y,
    [1, 64],
  );
  assert.deepEqual(one, again);
  assert.ok(one.every(Number.isFinite));
  assert.ok(one.some((v) => v !== 0));
  const two = floats((await session.run({ x: new Tensor('float32', x, [2, 64]) })).y, [2, 64]);
  assertClose(two.subarray(0, 64), one, 1e-4);
  assert.notDeepEqual(two.subarray(64), one);
  await session.release();
});

test('regenerating gives byte-identical files', async () => {
  const first = committedModels();
  const second = committedModels();
  assert.deepEqual(
    second.map((m) => m.bytes),
    first.map((m) => m.bytes),
  );
  const dir = await mkdtemp(join(tmpdir(), 'bento-run-models-'));
  try {
    const written = await writeModels(dir, first);
    assert.equal(written.length, first.length);
    // A second write finds every file already identical and leaves them alone.
    assert.deepEqual(await writeModels(dir, second), []);
    for (const m of first) {
      const committed = await readFile(join(ROOT, m.path));
      const regenerated = await readFile(join(dir, m.path));
      assert.ok(
        committed.equals(regenerated),
        `${m.path} differs from what make-models generates: run \`npm run models\``,
      );
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
