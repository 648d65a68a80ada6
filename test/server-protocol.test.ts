// The Open Inference Protocol through a real server (in this process, on loopback): outputs equal
// a direct session.run, every datatype round-trips through JSON, metadata comes from the sessions,
// health routes and /metrics say what happened.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import ort from 'onnxruntime-node';
import { mulberry32 } from '../scripts/onnx-builder.js';
import {
  get,
  type InProcessServer,
  metric,
  openDirectSessions,
  post,
  samples,
  scrape,
  startInProcess,
  TEST_SPECS,
} from './helpers/server.js';

let srv: InProcessServer;
let direct = new Map<string, ort.InferenceSession>();

before(async () => {
  srv = await startInProcess(join(TEST_SPECS, 'all-models.yaml'));
  direct = await openDirectSessions([
    ['classifier', 'classifier.onnx'],
    ['two_inputs', 'two-inputs.onnx'],
    ['tiny', 'tiny.onnx'],
    ['cnn_small', 'cnn-small.onnx'],
  ]);
});

after(async () => {
  await srv?.close();
  for (const s of direct.values()) await s.release();
});

function seeded(n: number, seed: number): number[] {
  const rng = mulberry32(seed);
  return Array.from({ length: n }, () => Math.fround(rng() * 4 - 2));
}

/** What a direct session.run gives, as JSON-ready flat arrays by output name. */
async function runDirect(
  model: string,
  inputs: Record<string, { shape: number[]; data: number[] }>,
  outputs?: string[],
): Promise<Record<string, { shape: number[]; data: number[] }>> {
  const session = direct.get(model)!;
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(inputs)) {
    feeds[name] = new ort.Tensor('float32', Float32Array.from(t.data), t.shape);
  }
  const results = outputs ? await session.run(feeds, outputs) : await session.run(feeds);
  return Object.fromEntries(
    Object.entries(results).map(([name, t]) => [
      name,
      { shape: [...t.dims], data: Array.from(t.data as Float32Array) },
    ]),
  );
}

function fp32Inputs(inputs: Record<string, { shape: number[]; data: unknown[] }>) {
  return Object.entries(inputs).map(([name, t]) => ({
    name,
    shape: t.shape,
    datatype: 'FP32',
    data: t.data,
  }));
}

/** The response's outputs by name. */
function byName(body: {
  outputs: { name: string; datatype: string; shape: number[]; data: unknown[] }[];
}) {
  return Object.fromEntries(body.outputs.map((o) => [o.name, o]));
}

const infer = (model: string, body: unknown) => post(`${srv.url}/v2/models/${model}/infer`, body);

describe('outputs equal a direct session.run', () => {
  const cases: {
    model: string;
    inputs: Record<string, { shape: number[]; data: number[] }>;
    outputs?: string[];
  }[] = [
    { model: 'classifier', inputs: { input: { shape: [3, 4], data: seeded(12, 1) } } },
    { model: 'classifier', inputs: { input: { shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] } } },
    {
      model: 'two_inputs',
      inputs: {
        a: { shape: [2, 3], data: seeded(6, 2) },
        b: { shape: [2, 3], data: seeded(6, 3) },
      },
    },
    {
      model: 'two_inputs',
      inputs: {
        a: { shape: [2, 3], data: seeded(6, 4) },
        b: { shape: [2, 3], data: seeded(6, 5) },
      },
      outputs: ['product'],
    },
    {
      model: 'two_inputs',
      inputs: {
        a: { shape: [1, 3], data: seeded(3, 6) },
        b: { shape: [1, 3], data: seeded(3, 7) },
      },
      outputs: ['sum'],
    },
    { model: 'tiny', inputs: { x: { shape: [5, 4], data: seeded(20, 8) } } },
    { model: 'cnn_small', inputs: { input: { shape: [2, 3, 32, 32], data: seeded(6144, 9) } } },
  ];
  for (const c of cases) {
    const what = `${c.model} ${Object.values(c.inputs)[0]!.shape.join('x')}${c.outputs ? ` outputs=${c.outputs}` : ''}`;
    test(what, async () => {
      const res = await infer(c.model, {
        inputs: fp32Inputs(c.inputs),
        ...(c.outputs ? { outputs: c.outputs.map((name) => ({ name })) } : {}),
      });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.model_name, c.model);
      const expected = await runDirect(c.model, c.inputs, c.outputs);
      const got = byName(res.body);
      assert.deepEqual(Object.keys(got).sort(), Object.keys(expected).sort());
      for (const [name, e] of Object.entries(expected)) {
        assert.equal(got[name]!.datatype, 'FP32');
        assert.deepEqual(got[name]!.shape, e.shape, `${name} shape`);
        assert.deepEqual(got[name]!.data, e.data, `${name} data`);
      }
    });
  }

  test('tiny adds its constant exactly (the served model is the real one)', async () => {
    const res = await infer('tiny', {
      inputs: fp32Inputs({ x: { shape: [1, 4], data: [1, 2, 3, 4] } }),
    });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body.outputs, [
      { name: 'y', datatype: 'FP32', shape: [1, 4], data: [1.5, 1, 5, 4.25] },
    ]);
  });

  test('nested data gives the same answer as flat data', async () => {
    const flat = seeded(8, 10);
    const nested = [flat.slice(0, 4), flat.slice(4)];
    const a = await infer('classifier', {
      inputs: fp32Inputs({ input: { shape: [2, 4], data: flat } }),
    });
    const b = await infer('classifier', {
      inputs: fp32Inputs({ input: { shape: [2, 4], data: nested } }),
    });
    assert.equal(a.status, 200, a.text);
    assert.equal(b.status, 200, b.text);
    assert.deepEqual(b.body.outputs, a.body.outputs);
    // Deeper nesting too: [1, 3, 32, 32] as four levels of lists.
    const img = seeded(3072, 11);
    const deep = [0, 1, 2].map((c) =>
      Array.from({ length: 32 }, (_, y) => img.slice(c * 1024 + y * 32, c * 1024 + y * 32 + 32)),
    );
    const c = await infer('cnn_small', {
      inputs: fp32Inputs({ input: { shape: [1, 3, 32, 32], data: [deep] } }),
    });
    assert.equal(c.status, 200, c.text);
    const e = await runDirect('cnn_small', { input: { shape: [1, 3, 32, 32], data: img } });
    assert.deepEqual(byName(c.body).logits!.data, e.logits!.data);
  });
});

describe('every datatype round-trips through JSON, both ways', () => {
  // [datatype, input suffix, values sent (shape [2, 3]), values expected back]
  const BIG = 2n ** 53n + 1n;
  const TYPES: [string, string, unknown[], unknown[]][] = [
    ['FP32', 'fp32', [1.5, -2.25, 0.1, 3.4028234663852886e38, -0, 1e-45], []],
    ['FP64', 'fp64', [0.1, -1e300, 5e-324, 1 / 3, 2 ** 60, -7], []],
    // Representable in half: 0.0999755859375 is half(0.1); 65504 the largest; then the smallest
    // normal and subnormal.
    ['FP16', 'fp16', [0.5, -2, 65504, 0.0999755859375, 2 ** -14, 2 ** -24], []],
    ['INT8', 'int8', [-128, 127, 0, -1, 1, 42], []],
    ['INT16', 'int16', [-32768, 32767, 0, -1, 1, 1234], []],
    ['INT32', 'int32', [-2147483648, 2147483647, 0, -1, 1, 123456789], []],
    [
      'INT64',
      'int64',
      ['9223372036854775807', '-9223372036854775808', BIG.toString(), '-42', 7, 2 ** 53 - 1],
      ['9223372036854775807', '-9223372036854775808', BIG.toString(), -42, 7, 2 ** 53 - 1],
    ],
    ['UINT8', 'uint8', [0, 255, 1, 128, 7, 200], []],
    ['UINT16', 'uint16', [0, 65535, 1, 32768, 7, 60000], []],
    ['UINT32', 'uint32', [0, 4294967295, 1, 2147483648, 7, 3000000000], []],
    [
      'UINT64',
      'uint64',
      ['18446744073709551615', BIG.toString(), '0', 1, 2 ** 53 - 1, '9223372036854775808'],
      ['18446744073709551615', BIG.toString(), 0, 1, 2 ** 53 - 1, '9223372036854775808'],
    ],
    ['BOOL', 'bool', [true, false, false, true, true, false], []],
    [
      'BYTES',
      'bytes',
      ['héllo', '日本語', '🚀 rocket', '', 'quote " back \\ slash', 'tab\tnl\n'],
      [],
    ],
  ];

  test('types.onnx: each in_* comes back unchanged as out_*', async () => {
    const res = await infer('types', {
      id: 'types-1',
      inputs: TYPES.map(([datatype, suffix, data]) => ({
        name: `in_${suffix}`,
        shape: [2, 3],
        datatype,
        data,
      })),
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.id, 'types-1');
    const got = byName(res.body);
    assert.equal(Object.keys(got).length, TYPES.length);
    for (const [datatype, suffix, sent, back] of TYPES) {
      const out = got[`out_${suffix}`];
      assert.ok(out, `out_${suffix} missing`);
      assert.equal(out.datatype, datatype);
      assert.deepEqual(out.shape, [2, 3]);
      const expected =
        back.length > 0
          ? back
          : datatype === 'FP32'
            ? sent.map((v) => Math.fround(v as number))
            : sent;
      // -0 is 0 in JSON; everything else must be exact.
      assert.deepEqual(
        out.data.map((v) => (Object.is(v, -0) ? 0 : v)),
        expected.map((v) => (Object.is(v, -0) ? 0 : v)),
        datatype,
      );
    }
  });

  test('FP32 values are rounded to float32 on the way in (0.1 -> fround(0.1))', async () => {
    const res = await infer('tiny', {
      inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [0.1, 0.2, 0.3, 0.4] }],
    });
    assert.equal(res.status, 200, res.text);
    const c = [0.5, -1, 2, 0.25];
    assert.deepEqual(
      res.body.outputs[0].data,
      [0.1, 0.2, 0.3, 0.4].map((v, i) => Math.fround(Math.fround(v) + c[i]!)),
    );
  });
});

describe('request fields', () => {
  const body = { inputs: fp32Inputs({ x: { shape: [1, 4], data: [0, 0, 0, 0] } }) };

  test('`id` is echoed, and absent when not sent', async () => {
    const a = await infer('tiny', { id: 'req-42/é', ...body });
    assert.equal(a.status, 200, a.text);
    assert.equal(a.body.id, 'req-42/é');
    const b = await infer('tiny', body);
    assert.equal(b.status, 200, b.text);
    assert.equal('id' in b.body, false);
  });

  test('`parameters` are accepted at the request, input and output level', async () => {
    const res = await infer('two_inputs', {
      parameters: { priority: 1, content_type: 'np', binary_data_output: false },
      inputs: [
        { name: 'a', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3], parameters: { x: 1 } },
        { name: 'b', shape: [1, 3], datatype: 'FP32', data: [4, 5, 6] },
      ],
      outputs: [{ name: 'sum', parameters: { binary_data: false } }],
    });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body.outputs, [
      { name: 'sum', datatype: 'FP32', shape: [1, 3], data: [5, 7, 9] },
    ]);
  });

  test('the model version route infers too', async () => {
    const res = await post(`${srv.url}/v2/models/tiny/versions/1/infer`, body);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body.outputs[0].data, [0.5, -1, 2, 0.25]);
  });
});

describe('metadata', () => {
  test('GET /v2 names the server', async () => {
    const res = await get(`${srv.url}/v2`);
    assert.equal(res.status, 200);
    assert.equal(res.body.name, 'bento-run');
    assert.equal(res.body.version, 'test');
    assert.ok(Array.isArray(res.body.extensions));
  });

  test('model metadata: real names, datatypes and shapes from the sessions', async () => {
    const expected: Record<string, unknown> = {
      classifier: {
        inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 4] }],
        outputs: [{ name: 'probabilities', datatype: 'FP32', shape: [-1, 3] }],
      },
      fixed_batch: {
        inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4] }],
        outputs: [{ name: 'probabilities', datatype: 'FP32', shape: [1, 3] }],
      },
      two_inputs: {
        inputs: [
          { name: 'a', datatype: 'FP32', shape: [-1, 3] },
          { name: 'b', datatype: 'FP32', shape: [-1, 3] },
        ],
        outputs: [
          { name: 'sum', datatype: 'FP32', shape: [-1, 3] },
          { name: 'product', datatype: 'FP32', shape: [-1, 3] },
        ],
      },
      cnn_small: {
        inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 3, 32, 32] }],
        outputs: [{ name: 'logits', datatype: 'FP32', shape: [-1, 10] }],
      },
    };
    for (const [model, sig] of Object.entries(expected)) {
      const res = await get(`${srv.url}/v2/models/${model}`);
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body, {
        name: model,
        versions: ['1'],
        platform: 'onnxruntime_onnx',
        ...(sig as object),
      });
    }
    const types = await get(`${srv.url}/v2/models/types/versions/1`);
    assert.equal(types.status, 200);
    assert.deepEqual(
      types.body.inputs.map((t: { name: string; datatype: string }) => `${t.name}:${t.datatype}`),
      [
        'in_fp32:FP32',
        'in_fp64:FP64',
        'in_fp16:FP16',
        'in_int8:INT8',
        'in_int16:INT16',
        'in_int32:INT32',
        'in_int64:INT64',
        'in_uint8:UINT8',
        'in_uint16:UINT16',
        'in_uint32:UINT32',
        'in_uint64:UINT64',
        'in_bool:BOOL',
        'in_bytes:BYTES',
      ],
    );
    for (const t of [...types.body.inputs, ...types.body.outputs])
      assert.deepEqual(t.shape, [-1, -1]);
  });

  test('unknown model: 404 naming it', async () => {
    const res = await get(`${srv.url}/v2/models/resnet`);
    assert.equal(res.status, 404);
    assert.match(res.body.error, /unknown model `resnet`/);
  });
});

describe('health', () => {
  for (const path of ['/v2/health/live', '/livez']) {
    test(`${path} is 200`, async () => {
      const res = await get(`${srv.url}${path}`);
      assert.equal(res.status, 200);
      assert.equal(res.body.live, true);
    });
  }
  for (const path of ['/v2/health/ready', '/readyz']) {
    test(`${path} is 200 with every worker ready`, async () => {
      const res = await get(`${srv.url}${path}`);
      assert.equal(res.status, 200);
      assert.equal(res.body.ready, true);
      assert.deepEqual(
        res.body.workers.map((w: { worker: number; state: string }) => `${w.worker}:${w.state}`),
        ['0:ready', '1:ready'],
      );
    });
  }
  test('model ready: 200 for a served model, 404 for an unknown one', async () => {
    const ok = await get(`${srv.url}/v2/models/classifier/ready`);
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body, { name: 'classifier', ready: true });
    const unknown = await get(`${srv.url}/v2/models/nope/ready`);
    assert.equal(unknown.status, 404);
    assert.match(unknown.body.error, /`nope`/);
  });
});

test('/metrics: requests by model and status, latency histograms, in-flight, workers by device', async () => {
  const before = await scrape(srv.url);
  const count = (all: typeof before, status: string) =>
    samples(all, 'bento_requests_total', { model: 'tiny', status }).reduce(
      (n, s) => n + s.value,
      0,
    );
  const body = { inputs: fp32Inputs({ x: { shape: [1, 4], data: [1, 1, 1, 1] } }) };
  for (let i = 0; i < 3; i++) assert.equal((await infer('tiny', body)).status, 200);
  assert.equal((await infer('tiny', { inputs: [] })).status, 400);

  const m = await scrape(srv.url);
  assert.equal(count(m, '200') - count(before, '200'), 3);
  assert.equal(count(m, '400') - count(before, '400'), 1);
  assert.ok(metric(m, 'bento_request_duration_seconds_count', { model: 'tiny' }) >= 4);
  assert.ok(metric(m, 'bento_queue_duration_seconds_count', { model: 'tiny' }) >= 3);
  assert.ok(
    metric(m, 'bento_inference_duration_seconds_count', { model: 'tiny', device: 'cpu' }) >= 3,
  );
  assert.ok(
    samples(m, 'bento_request_duration_seconds_bucket', { model: 'tiny', le: '+Inf' }).length === 1,
  );
  assert.equal(metric(m, 'bento_requests_in_flight', { service: 'api' }), 0);
  for (const worker of ['0', '1']) {
    assert.equal(metric(m, 'bento_worker_ready', { service: 'api', worker, device: 'cpu' }), 1);
  }
  const perWorker = samples(m, 'bento_worker_requests_total', { service: 'api', device: 'cpu' });
  assert.ok(
    perWorker.reduce((n, s) => n + s.value, 0) >= 3,
    `bento_worker_requests_total: ${JSON.stringify(perWorker)}`,
  );
});
