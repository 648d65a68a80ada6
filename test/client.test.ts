// `bento-run/client` against a real server: typed arrays in and out for every datatype,
// metadata, readiness, and errors surfacing as BentoClientError with the HTTP status.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import ort from 'onnxruntime-node';
import { BentoClient, BentoClientError, type InferInput } from '../src/client.js';
import { floatToHalf } from '../src/tensor/datatypes.js';
import { type InProcessServer, startInProcess, TEST_MODELS, TEST_SPECS } from './helpers/server.js';

let srv: InProcessServer;
let client: BentoClient;
before(async () => {
  srv = await startInProcess(join(TEST_SPECS, 'all-models.yaml'));
  client = new BentoClient(srv.url);
});
after(async () => {
  await client?.close();
  await srv?.close();
});

test('infer: Float32Array in, Float32Array out, equal to a direct session.run', async () => {
  const input = Float32Array.from([5.1, 3.5, 1.4, 0.2, 6.7, 3.1, 4.4, 1.4]);
  const res = await client.infer(
    'classifier',
    { input: { data: input, shape: [2, 4] } },
    { id: 'c1' },
  );
  assert.equal(res.modelName, 'classifier');
  assert.equal(res.id, 'c1');
  const out = res.outputs.probabilities!;
  assert.equal(out.datatype, 'FP32');
  assert.deepEqual(out.shape, [2, 3]);
  assert.ok(out.data instanceof Float32Array);
  const session = await ort.InferenceSession.create(join(TEST_MODELS, 'classifier.onnx'), {
    intraOpNumThreads: 1,
  });
  const expected = await session.run({ input: new ort.Tensor('float32', input, [2, 4]) });
  await session.release();
  assert.deepEqual(out.data, expected.probabilities!.data);
});

test('infer: the outputs filter and parameters', async () => {
  const a = Float32Array.from([1, 2, 3]);
  const b = Float32Array.from([4, 5, 6]);
  const res = await client.infer(
    'two_inputs',
    { a: { data: a, shape: [1, 3] }, b: { data: b, shape: [1, 3] } },
    { outputs: ['product'], parameters: { priority: 2 } },
  );
  assert.deepEqual(Object.keys(res.outputs), ['product']);
  assert.deepEqual(res.outputs.product!.data, Float32Array.from([4, 10, 18]));
  assert.equal(res.id, undefined);
});

test('infer: every datatype as typed arrays, back as the same typed arrays', async () => {
  const inputs: Record<string, InferInput> = {
    in_fp32: { data: Float32Array.from([1.5, -0.1, 3e38]), shape: [1, 3] },
    in_fp64: { data: Float64Array.from([0.1, -1e300, 1 / 3]), shape: [1, 3] },
    in_fp16: {
      data: Uint16Array.from([0.5, -2, 65504].map(floatToHalf)),
      shape: [1, 3],
      datatype: 'FP16',
    },
    in_int8: { data: Int8Array.from([-128, 0, 127]), shape: [1, 3] },
    in_int16: { data: Int16Array.from([-32768, 0, 32767]), shape: [1, 3] },
    in_int32: { data: Int32Array.from([-2147483648, 0, 2147483647]), shape: [1, 3] },
    in_int64: {
      data: BigInt64Array.from([-(2n ** 63n), 2n ** 53n + 1n, 2n ** 63n - 1n]),
      shape: [1, 3],
    },
    in_uint8: { data: Uint8Array.from([0, 128, 255]), shape: [1, 3] },
    in_uint16: { data: Uint16Array.from([0, 32768, 65535]), shape: [1, 3] },
    in_uint32: { data: Uint32Array.from([0, 2147483648, 4294967295]), shape: [1, 3] },
    in_uint64: { data: BigUint64Array.from([0n, 2n ** 53n + 1n, 2n ** 64n - 1n]), shape: [1, 3] },
    in_bool: { data: Uint8Array.from([1, 0, 1]), shape: [1, 3], datatype: 'BOOL' },
    in_bytes: { data: ['héllo', '日本語', '🚀'], shape: [1, 3] },
  };
  const res = await client.infer('types', inputs);
  assert.equal(Object.keys(res.outputs).length, 13);
  for (const [name, t] of Object.entries(inputs)) {
    const out = res.outputs[name.replace('in_', 'out_')];
    assert.ok(out, `${name}: no output`);
    assert.deepEqual(out.shape, [1, 3]);
    assert.equal(out.data.constructor, t.data.constructor, `${name}: ${out.data.constructor.name}`);
    assert.deepEqual(out.data, t.data, name);
  }
  assert.equal(res.outputs.out_fp16!.datatype, 'FP16');
  assert.equal(res.outputs.out_bool!.datatype, 'BOOL');
  assert.equal(res.outputs.out_bytes!.datatype, 'BYTES');
});

test('metadata, ready and live', async () => {
  const server = await client.metadata();
  assert.equal(server.name, 'bento-run');
  const model = await client.metadata('two_inputs');
  assert.equal(model.platform, 'onnxruntime_onnx');
  assert.deepEqual(
    model.inputs.map((t) => [t.name, t.datatype, t.shape]),
    [
      ['a', 'FP32', [-1, 3]],
      ['b', 'FP32', [-1, 3]],
    ],
  );
  assert.deepEqual(
    model.outputs.map((t) => t.name),
    ['sum', 'product'],
  );
  assert.equal(await client.ready(), true);
  assert.equal(await client.ready('classifier'), true);
  assert.equal(await client.ready('nope'), false);
  assert.equal(await client.live(), true);
});

test('a 4xx surfaces as BentoClientError with its status and the server message', async () => {
  await assert.rejects(
    client.infer('nope', { x: { data: Float32Array.from([1]), shape: [1, 1] } }),
    (e: unknown) =>
      e instanceof BentoClientError &&
      e.status === 404 &&
      e.code === 'BENTO_ERR_INFER_MODEL_NOT_FOUND' &&
      /unknown model `nope`/.test(e.message),
  );
  await assert.rejects(
    client.infer('tiny', { x: { data: Float32Array.from([1, 2, 3]), shape: [1, 4] } }),
    (e: unknown) =>
      e instanceof BentoClientError &&
      e.status === 400 &&
      e.code === 'BENTO_ERR_INFER_INVALID' &&
      /shape \[1, 4\] needs 4 elements, data has 3/.test(e.message),
  );
  await assert.rejects(
    client.metadata('nope'),
    (e: unknown) => e instanceof BentoClientError && e.status === 404,
  );
  // The client still works after errors.
  const ok = await client.infer('tiny', {
    x: { data: Float32Array.from([0, 0, 0, 0]), shape: [1, 4] },
  });
  assert.deepEqual(ok.outputs.y!.data, Float32Array.from([0.5, -1, 2, 0.25]));
});

test('the package exports it as bento-run/client', async () => {
  const specifier = 'bento-run/client'; // a variable: resolved by Node at run time, not by tsc
  const mod = (await import(specifier)) as typeof import('../src/client.js');
  assert.equal(mod.BentoClient, BentoClient);
  const other = new mod.BentoClient(srv.url);
  try {
    assert.equal(await other.live(), true);
  } finally {
    await other.close();
  }
});
