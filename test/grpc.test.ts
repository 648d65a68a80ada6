// The gRPC frontend through a real server and a plain grpc-js client generated from
// proto/inference.proto: every RPC, every datatype as raw and as typed contents, the same answers
// as REST (metadata, config, statistics), and malformed requests as INVALID_ARGUMENT naming the
// problem, with the error code in the trailing metadata.
//
// Tensor bytes are written here by hand (Buffer's little-endian writers), so that the test does
// not lean on src/tensor/binary.ts.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { RunningGrpcServer } from '../src/server/grpc/server.js';
import {
  connect,
  type Message,
  rejects,
  startGrpc,
  status,
  type TestClient,
} from './helpers/grpc.js';
import {
  get,
  type InProcessServer,
  metric,
  post,
  scrape,
  startInProcess,
  TEST_SPECS,
} from './helpers/server.js';

let srv: InProcessServer;
let grpc: RunningGrpcServer;
let client: TestClient;

before(async () => {
  srv = await startInProcess(join(TEST_SPECS, 'binary.yaml'));
  grpc = await startGrpc(srv);
  client = connect(grpc.address);
});

after(async () => {
  client?.close();
  await grpc?.drain(5);
  await srv?.close();
});

// ---- the wire format, by hand -------------------------------------------------------------------

const SIZE: Record<string, number> = {
  FP32: 4,
  FP64: 8,
  FP16: 2,
  INT8: 1,
  INT16: 2,
  INT32: 4,
  INT64: 8,
  UINT8: 1,
  UINT16: 2,
  UINT32: 4,
  UINT64: 8,
  BOOL: 1,
};

/** Values -> the little-endian bytes of raw contents (FP16 values given as half bits). */
function le(datatype: string, values: readonly unknown[]): Buffer {
  if (datatype === 'BYTES') {
    return Buffer.concat(
      values.flatMap((v) => {
        const bytes = Buffer.from(v as string, 'utf8');
        const length = Buffer.alloc(4);
        length.writeUInt32LE(bytes.length);
        return [length, bytes];
      }),
    );
  }
  const size = SIZE[datatype]!;
  const out = Buffer.alloc(values.length * size);
  for (const [i, v] of values.entries()) {
    const at = i * size;
    const n = v as number;
    if (datatype === 'FP32') out.writeFloatLE(n, at);
    else if (datatype === 'FP64') out.writeDoubleLE(n, at);
    else if (datatype === 'FP16' || datatype === 'UINT16') out.writeUInt16LE(n, at);
    else if (datatype === 'INT8') out.writeInt8(n, at);
    else if (datatype === 'INT16') out.writeInt16LE(n, at);
    else if (datatype === 'INT32') out.writeInt32LE(n, at);
    else if (datatype === 'INT64') out.writeBigInt64LE(BigInt(v as string), at);
    else if (datatype === 'UINT8') out.writeUInt8(n, at);
    else if (datatype === 'UINT32') out.writeUInt32LE(n, at);
    else if (datatype === 'UINT64') out.writeBigUInt64LE(BigInt(v as string), at);
    else if (datatype === 'BOOL') out.writeUInt8(v ? 1 : 0, at);
  }
  return out;
}

/** [datatype, input suffix, typed contents field, six values for a [2, 3] tensor] */
const TYPES: [string, string, string | null, unknown[]][] = [
  ['FP32', 'fp32', 'fp32_contents', [1.5, -2.25, Math.fround(0.1), 3.4028234663852886e38, -0, -7]],
  ['FP64', 'fp64', 'fp64_contents', [0.1, -1e300, 5e-324, 1 / 3, 2 ** 60, -7]],
  // Half bits: 0.5, -2, 65504, NaN, +Inf, the smallest subnormal.
  ['FP16', 'fp16', null, [0x3800, 0xc000, 0x7bff, 0x7e00, 0x7c00, 0x0001]],
  ['INT8', 'int8', 'int_contents', [-128, 127, 0, -1, 1, 42]],
  ['INT16', 'int16', 'int_contents', [-32768, 32767, 0, -1, 1, 1234]],
  ['INT32', 'int32', 'int_contents', [-2147483648, 2147483647, 0, -1, 1, 123456789]],
  [
    'INT64',
    'int64',
    'int64_contents',
    ['9223372036854775807', '-9223372036854775808', '9007199254740993', '-42', '7', '0'],
  ],
  ['UINT8', 'uint8', 'uint_contents', [0, 255, 1, 128, 7, 200]],
  ['UINT16', 'uint16', 'uint_contents', [0, 65535, 1, 32768, 7, 60000]],
  ['UINT32', 'uint32', 'uint_contents', [0, 4294967295, 1, 2147483648, 7, 3000000000]],
  [
    'UINT64',
    'uint64',
    'uint64_contents',
    ['18446744073709551615', '9007199254740993', '0', '1', '7', '9223372036854775808'],
  ],
  ['BOOL', 'bool', 'bool_contents', [true, false, false, true, true, false]],
  ['BYTES', 'bytes', 'bytes_contents', ['héllo', '日本語', '🚀 rocket', '', 'q " \\', 'tab\t\n']],
];

const rawRequest = (model = 'types', shape = ['2', '3']) => ({
  model_name: model,
  id: 'raw-1',
  inputs: TYPES.map(([datatype, suffix]) => ({ name: `in_${suffix}`, datatype, shape })),
  raw_input_contents: TYPES.map(([datatype, , , values]) => le(datatype, values)),
});

/** The response's outputs by name, each with its raw bytes. */
function outputsOf(res: Message): Map<string, { datatype: string; shape: string[]; raw: Buffer }> {
  assert.equal(res.raw_output_contents.length, res.outputs.length, 'one raw entry per output');
  return new Map(
    res.outputs.map((o: Message, i: number) => [
      o.name,
      { datatype: o.datatype, shape: o.shape, raw: res.raw_output_contents[i] },
    ]),
  );
}

// ---- health, metadata ---------------------------------------------------------------------------

describe('health and metadata', () => {
  test('ServerLive, ServerReady, ModelReady', async () => {
    assert.deepEqual(await client.call('ServerLive'), { live: true });
    assert.deepEqual(await client.call('ServerReady'), { ready: true });
    assert.deepEqual(await client.call('ModelReady', { name: 'types' }), { ready: true });
    assert.deepEqual(await client.call('ModelReady', { name: 'types', version: '1' }), {
      ready: true,
    });
    // Unknown: not ready, as Triton answers (tritonclient's is_model_ready() gives False).
    assert.deepEqual(await client.call('ModelReady', { name: 'nope' }), { ready: false });
    assert.deepEqual(await client.call('ModelReady', { name: 'types', version: '2' }), {
      ready: false,
    });
  });

  test('ServerMetadata: name, version and the extensions GET /v2 lists', async () => {
    const res = await client.call('ServerMetadata');
    const rest = (await get(`${srv.url}/v2`)).body;
    assert.equal(res.name, 'bento-run');
    assert.equal(res.version, 'test');
    assert.deepEqual(res.extensions, rest.extensions);
  });

  test('ModelMetadata: the REST metadata, shapes as int64', async () => {
    for (const model of ['types', 'two_inputs', 'types_batched']) {
      const res = await client.call('ModelMetadata', { name: model });
      const rest = (await get(`${srv.url}/v2/models/${model}`)).body;
      const shapes = (ts: Message[]) => ts.map((t) => ({ ...t, shape: t.shape.map(Number) }));
      assert.deepEqual(
        { ...res, inputs: shapes(res.inputs), outputs: shapes(res.outputs) },
        rest,
        model,
      );
    }
    const res = await client.call('ModelMetadata', { name: 'types' });
    assert.equal(res.platform, 'onnxruntime_onnx');
    assert.deepEqual(res.versions, ['1']);
    assert.deepEqual(res.inputs[0], { name: 'in_fp32', datatype: 'FP32', shape: ['-1', '-1'] });
    await rejects(
      client.call('ModelMetadata', { name: 'types', version: '7' }),
      status.NOT_FOUND,
      'BENTO_ERR_INFER_MODEL_NOT_FOUND',
      /model `types` has no version 7 \(served: 1\)/,
    );
  });
});

// ---- every datatype -----------------------------------------------------------------------------

describe('ModelInfer, every datatype', () => {
  test('raw in, raw out: the bytes sent come back (types.onnx is Identity)', async () => {
    const res = await client.call('ModelInfer', rawRequest());
    assert.equal(res.model_name, 'types');
    assert.equal(res.model_version, '1');
    assert.equal(res.id, 'raw-1');
    const out = outputsOf(res);
    assert.equal(out.size, TYPES.length);
    for (const [datatype, suffix, , values] of TYPES) {
      const o = out.get(`out_${suffix}`);
      assert.ok(o, `out_${suffix} missing`);
      assert.equal(o.datatype, datatype);
      assert.deepEqual(o.shape, ['2', '3']);
      assert.deepEqual(o.raw, le(datatype, values), datatype);
    }
  });

  test('raw in: the same bytes as REST binary gives', async () => {
    const header = Buffer.from(
      JSON.stringify({
        inputs: TYPES.map(([datatype, suffix, , values]) => ({
          name: `in_${suffix}`,
          shape: [2, 3],
          datatype,
          parameters: { binary_data_size: le(datatype, values).length },
        })),
        parameters: { binary_data_output: true },
      }),
    );
    const body = Buffer.concat([header, ...TYPES.map(([d, , , v]) => le(d, v))]);
    const rest = await fetch(`${srv.url}/v2/models/types/infer`, {
      method: 'POST',
      headers: {
        'content-type': 'application/octet-stream',
        'inference-header-content-length': String(header.length),
      },
      body,
    });
    const bytes = Buffer.from(await rest.arrayBuffer());
    const headerLength = Number(rest.headers.get('inference-header-content-length'));
    const json = JSON.parse(bytes.subarray(0, headerLength).toString('utf8'));
    const out = outputsOf(await client.call('ModelInfer', rawRequest()));
    let at = headerLength;
    for (const o of json.outputs) {
      const size = o.parameters.binary_data_size;
      assert.deepEqual(out.get(o.name)!.raw, bytes.subarray(at, at + size), o.name);
      at += size;
    }
  });

  test('typed contents in (FP16 raw-only, sent empty), raw out', async () => {
    const inputs = TYPES.map(([datatype, suffix, field, values]) => {
      if (field === null) return { name: `in_${suffix}`, datatype, shape: ['0', '3'] };
      const contents =
        datatype === 'BYTES' ? values.map((v) => Buffer.from(v as string, 'utf8')) : values;
      return { name: `in_${suffix}`, datatype, shape: ['2', '3'], contents: { [field]: contents } };
    });
    const res = await client.call('ModelInfer', { model_name: 'types', inputs });
    assert.equal(res.id, '');
    const out = outputsOf(res);
    for (const [datatype, suffix, field, values] of TYPES) {
      const o = out.get(`out_${suffix}`)!;
      assert.equal(o.datatype, datatype);
      if (field === null) {
        assert.deepEqual(o.shape, ['0', '3']);
        assert.equal(o.raw.length, 0);
        continue;
      }
      assert.deepEqual(o.shape, ['2', '3'], datatype);
      assert.deepEqual(o.raw, le(datatype, values), datatype);
    }
  });

  test('requested outputs: only those, their parameters ignored', async () => {
    const res = await client.call('ModelInfer', {
      ...rawRequest(),
      outputs: [
        { name: 'out_bytes', parameters: { binary_data: { bool_param: true } } },
        { name: 'out_int8' },
      ],
    });
    const out = outputsOf(res);
    assert.deepEqual([...out.keys()].sort(), ['out_bytes', 'out_int8']);
    assert.deepEqual(out.get('out_int8')!.raw, le('INT8', TYPES[3]![3]));
    assert.deepEqual(out.get('out_bytes')!.raw, le('BYTES', TYPES[12]![3]));
  });

  test('batched model: requests merged into one run each get their own rows', async () => {
    const requests = Array.from({ length: 6 }, (_, r) => ({
      model_name: 'types_batched',
      inputs: TYPES.map(([datatype, suffix]) => ({
        name: `in_${suffix}`,
        datatype,
        shape: ['1', '3'],
      })),
      raw_input_contents: TYPES.map(([datatype, , , values]) =>
        le(datatype, datatype === 'FP32' ? [r, r + 0.5, -r] : values.slice(0, 3)),
      ),
    }));
    const answers = await Promise.all(requests.map((r) => client.call('ModelInfer', r)));
    for (const [r, res] of answers.entries()) {
      const out = outputsOf(res);
      assert.deepEqual(out.get('out_fp32')!.raw, le('FP32', [r, r + 0.5, -r]), `request ${r}`);
      assert.deepEqual(out.get('out_bytes')!.raw, le('BYTES', TYPES[12]![3].slice(0, 3)));
    }
  });
});

// ---- malformed requests -------------------------------------------------------------------------

describe('malformed ModelInfer: INVALID_ARGUMENT naming the problem', () => {
  const ab = (a: Message, b: Message = { contents: { fp32_contents: [1, 1, 1] } }) => ({
    model_name: 'two_inputs',
    inputs: [
      { name: 'a', datatype: 'FP32', shape: ['1', '3'], ...a },
      { name: 'b', datatype: 'FP32', shape: ['1', '3'], ...b },
    ],
  });
  const cases: [string, Message, RegExp][] = [
    [
      'a shape that does not fit the model',
      ab({ shape: ['1', '4'], contents: { fp32_contents: [1, 2, 3, 4] } }),
      /input `a`: dimension 1 is 4, the model expects 3/,
    ],
    [
      'a datatype that does not match',
      ab({ datatype: 'FP64', contents: { fp64_contents: [1, 2, 3] } }),
      /input `a`: datatype FP64 does not match the model's FP32/,
    ],
    ['an unknown datatype', ab({ datatype: 'FLOAT' }), /input `a`: datatype "FLOAT" is not one of/],
    [
      'a negative dimension',
      ab({ shape: ['-1', '3'] }),
      /input `a`: shape must be a list of non-negative integers/,
    ],
    [
      'too few elements',
      ab({ contents: { fp32_contents: [1, 2] } }),
      /input `a`: the shape needs 3 elements, contents.fp32_contents has 2/,
    ],
    [
      'values in the wrong contents field',
      ab({ contents: { int_contents: [1, 2, 3] } }),
      /input `a`: datatype FP32 travels in contents.fp32_contents, not contents.int_contents/,
    ],
    ['no data at all', ab({}), /input `a`: no data: set contents or raw_input_contents/],
    [
      'an unknown input',
      ab({ name: 'c' }),
      /unknown input `c` for model `two_inputs` \(inputs: a, b\)/,
    ],
    [
      'an input given twice',
      ab(
        { contents: { fp32_contents: [1, 2, 3] } },
        { name: 'a', contents: { fp32_contents: [1, 2, 3] } },
      ),
      /input `a` is given twice/,
    ],
    [
      'a missing input',
      {
        model_name: 'two_inputs',
        inputs: [ab({ contents: { fp32_contents: [1, 2, 3] } }).inputs[0]],
      },
      /missing input `b`/,
    ],
    ['no inputs', { model_name: 'two_inputs' }, /`inputs` must be a non-empty list/],
    [
      'an unknown output',
      { ...ab({ contents: { fp32_contents: [1, 2, 3] } }), outputs: [{ name: 'quotient' }] },
      /unknown output `quotient` for model `two_inputs` \(outputs: sum, product\)/,
    ],
    [
      'fewer raw entries than inputs',
      { ...ab({}, {}), raw_input_contents: [le('FP32', [1, 2, 3])] },
      /raw_input_contents has 1 entries for 2 inputs/,
    ],
    [
      'raw bytes that do not match the shape',
      { ...ab({}, {}), raw_input_contents: [le('FP32', [1, 2]), le('FP32', [1, 2, 3])] },
      /input `a`: raw_input_contents\[0\] has 8 bytes, the shape needs 3 × 4 = 12/,
    ],
    [
      'both typed and raw contents',
      {
        ...ab({ contents: { fp32_contents: [1, 2, 3] } }, {}),
        raw_input_contents: [le('FP32', [1, 2, 3]), le('FP32', [1, 2, 3])],
      },
      /input `a`: both contents and raw_input_contents\[0\] are set/,
    ],
  ];
  for (const [what, request, message] of cases) {
    test(what, async () => {
      await rejects(
        client.call('ModelInfer', request),
        status.INVALID_ARGUMENT,
        'BENTO_ERR_INFER_INVALID',
        message,
      );
    });
  }

  test('FP16 as typed contents, and an INT8 out of range', async () => {
    const typed = (suffix: string, datatype: string, contents: Message) => ({
      model_name: 'types',
      inputs: TYPES.map(([d, s]) =>
        s === suffix
          ? { name: `in_${s}`, datatype, shape: ['1', '2'], contents }
          : { name: `in_${s}`, datatype: d, shape: ['0', '0'] },
      ),
    });
    await rejects(
      client.call('ModelInfer', typed('fp16', 'FP16', { fp32_contents: [1, 2] })),
      status.INVALID_ARGUMENT,
      'BENTO_ERR_INFER_INVALID',
      /input `in_fp16`: FP16 has no typed contents field in the protocol: send its half-precision bytes in raw_input_contents/,
    );
    await rejects(
      client.call('ModelInfer', typed('int8', 'INT8', { int_contents: [1, 300] })),
      status.INVALID_ARGUMENT,
      'BENTO_ERR_INFER_INVALID',
      /input `in_int8`: element 1 of contents.int_contents is 300, out of range for INT8 \(-128 to 127\)/,
    );
  });

  test('an unknown model is NOT_FOUND, an unknown version too', async () => {
    await rejects(
      client.call('ModelInfer', { ...rawRequest(), model_name: 'resnet' }),
      status.NOT_FOUND,
      'BENTO_ERR_INFER_MODEL_NOT_FOUND',
      /unknown model `resnet`/,
    );
    await rejects(
      client.call('ModelInfer', { ...rawRequest(), model_version: '2' }),
      status.NOT_FOUND,
      'BENTO_ERR_INFER_MODEL_NOT_FOUND',
      /model `types` has no version 2/,
    );
  });
});

// ---- Triton's extensions ------------------------------------------------------------------------

/** A decoded message with its int64 strings as numbers, to compare with REST's JSON. */
function numeric(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(numeric);
  if (v !== null && typeof v === 'object')
    return Object.fromEntries(
      Object.entries(v).map(([k, x]) => [k, k === 'version' ? x : numeric(x)]),
    );
  return typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v;
}

describe("Triton's extensions", () => {
  test('ModelConfig: the REST config, field for field', async () => {
    for (const model of ['types', 'types_batched', 'two_inputs']) {
      const { config } = await client.call('ModelConfig', { name: model });
      const rest = (await get(`${srv.url}/v2/models/${model}/config`)).body;
      assert.equal(config.name, rest.name);
      assert.equal(config.platform, 'onnxruntime_onnx');
      assert.equal(config.backend, 'onnxruntime');
      assert.equal(config.max_batch_size, rest.max_batch_size);
      assert.deepEqual(numeric(config.version_policy), {
        latest: { num_versions: 1 },
        policy_choice: 'latest',
      });
      const tensor = (t: Message) => ({
        name: t.name,
        data_type: t.data_type,
        dims: t.dims.map(Number),
      });
      assert.deepEqual(config.input.map(tensor), rest.input);
      assert.deepEqual(config.output.map(tensor), rest.output);
      assert.deepEqual(
        config.instance_group.map((g: Message) => ({ ...g })),
        rest.instance_group,
      );
      if (rest.dynamic_batching) {
        assert.equal(config.scheduling_choice, 'dynamic_batching');
        assert.equal(
          Number(config.dynamic_batching.max_queue_delay_microseconds),
          rest.dynamic_batching.max_queue_delay_microseconds,
        );
      } else assert.equal(config.dynamic_batching, undefined);
    }
    const { config } = await client.call('ModelConfig', { name: 'types_batched' });
    assert.equal(config.max_batch_size, 64);
    assert.equal(config.dynamic_batching.max_queue_delay_microseconds, '20000');
    assert.deepEqual(config.input.map((t: Message) => [t.name, t.data_type, t.dims]).slice(0, 3), [
      ['in_fp32', 'TYPE_FP32', ['-1']],
      ['in_fp64', 'TYPE_FP64', ['-1']],
      ['in_fp16', 'TYPE_FP16', ['-1']],
    ]);
    assert.equal(config.input.find((t: Message) => t.name === 'in_bytes').data_type, 'TYPE_STRING');
    assert.deepEqual(config.instance_group, [
      { name: 'types_batched_cpu', kind: 'KIND_CPU', count: 1, gpus: [] },
    ]);
  });

  test('ModelStatistics counts gRPC requests, and says what REST says', async () => {
    const stats = async (model: string) =>
      (await client.call('ModelStatistics', { name: model })).model_stats[0];
    const before = await stats('two_inputs');
    const request = {
      model_name: 'two_inputs',
      inputs: [
        {
          name: 'a',
          datatype: 'FP32',
          shape: ['2', '3'],
          contents: { fp32_contents: [1, 2, 3, 4, 5, 6] },
        },
        {
          name: 'b',
          datatype: 'FP32',
          shape: ['2', '3'],
          contents: { fp32_contents: [1, 1, 1, 1, 1, 1] },
        },
      ],
    };
    await client.call('ModelInfer', request);
    await client.call('ModelInfer', request);
    await rejects(
      client.call('ModelInfer', { ...request, inputs: request.inputs.slice(0, 1) }),
      status.INVALID_ARGUMENT,
    );
    const after = await stats('two_inputs');
    const n = (s: Message, path: string) => Number(path.split('.').reduce((o, k) => o[k], s));
    assert.equal(
      n(after, 'inference_stats.success.count') - n(before, 'inference_stats.success.count'),
      2,
    );
    assert.equal(
      n(after, 'inference_stats.fail.count') - n(before, 'inference_stats.fail.count'),
      1,
    );
    assert.equal(n(after, 'inference_count') - n(before, 'inference_count'), 4, 'rows');
    assert.ok(
      n(after, 'inference_stats.compute_infer.ns') > n(before, 'inference_stats.compute_infer.ns'),
    );
    assert.ok(Number(after.last_inference) > Date.now() - 60_000);
    // The same numbers as the REST extension: one set of statistics for both frontends.
    const rest = (await get(`${srv.url}/v2/models/two_inputs/stats`)).body.model_stats[0];
    assert.deepEqual(numeric(after), rest);

    const all = (await client.call('ModelStatistics', {})).model_stats;
    assert.deepEqual(
      all.map((s: Message) => s.name),
      ['types', 'two_inputs', 'types_batched'],
    );
    await rejects(client.call('ModelStatistics', { name: 'nope' }), status.NOT_FOUND);
  });

  test('gRPC requests count in /metrics beside REST ones', async () => {
    const count = async () =>
      metric(await scrape(srv.url), 'bento_requests_total', { model: 'types', status: '200' });
    const before = await count();
    await client.call('ModelInfer', rawRequest());
    await post(`${srv.url}/v2/models/types/infer`, {
      inputs: TYPES.map(([datatype, suffix]) => ({
        name: `in_${suffix}`,
        datatype,
        shape: [0, 0],
        data: [],
      })),
    });
    assert.equal((await count()) - before, 2);
    await rejects(
      client.call('ModelInfer', { ...rawRequest(), model_name: 'ghost' }),
      status.NOT_FOUND,
    );
    assert.equal(
      metric(await scrape(srv.url), 'bento_requests_total', { model: 'ghost', status: '404' }),
      1,
    );
  });

  test('RepositoryIndex: every model, READY; load and unload UNIMPLEMENTED', async () => {
    const { models } = await client.call('RepositoryIndex', {});
    const rest = (await post(`${srv.url}/v2/repository/index`, {})).body;
    assert.deepEqual(models, rest);
    assert.deepEqual(
      models.map((m: Message) => [m.name, m.version, m.state]),
      [
        ['types', '1', 'READY'],
        ['two_inputs', '1', 'READY'],
        ['types_batched', '1', 'READY'],
      ],
    );
    assert.equal((await client.call('RepositoryIndex', { ready: true })).models.length, 3);
    for (const rpc of ['RepositoryModelLoad', 'RepositoryModelUnload']) {
      await rejects(
        client.call(rpc, { model_name: 'types' }),
        status.UNIMPLEMENTED,
        'BENTO_ERR_HTTP_NOT_IMPLEMENTED',
        /model (load|unload) is not supported yet: restart bento-run with the changed spec/,
      );
    }
  });

  test('an RPC the server does not serve (streaming) is UNIMPLEMENTED by gRPC itself', async () => {
    // Not in the project's .proto: call it by path, as Triton's client would.
    const { Client, credentials } = await import('@grpc/grpc-js');
    const raw = new Client(grpc.address, credentials.createInsecure());
    const err = await new Promise<Message>((resolve) => {
      const call = raw.makeBidiStreamRequest(
        '/inference.GRPCInferenceService/ModelStreamInfer',
        (b: Buffer) => b,
        (b: Buffer) => b,
      );
      call.on('error', resolve);
      call.on('data', () => {});
      call.end();
    });
    raw.close();
    assert.equal(err.code, status.UNIMPLEMENTED);
  });
});
