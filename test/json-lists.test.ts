// Long number lists read straight from the body's bytes (src/tensor/json-lists.ts) give exactly
// what JSON.parse gives, for every kind of number a client sends; what is not a plain flat list
// of JSON numbers is left to JSON.parse and its usual errors. Then through a real server, on the
// HTTP thread and on a decoder thread: large JSON inputs of every numeric type come back as sent.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { mulberry32 } from '../scripts/onnx-builder.js';
import { InferenceError } from '../src/errors.js';
import type { ModelInfo } from '../src/runtime/types.js';
import { decodeRestBody } from '../src/server/decode.js';
import { createDecoder } from '../src/server/decoder-pool.js';
import { toTensorData } from '../src/tensor/json.js';
import { LIFT_MIN_BYTES, liftDataLists } from '../src/tensor/json-lists.js';
import type { OrtType, TensorData } from '../src/tensor/types.js';
import { type InProcessServer, post, startInProcess, TEST_SPECS } from './helpers/server.js';

const PROTOCOL: Record<string, OrtType> = {
  FP32: 'float32',
  FP64: 'float64',
  FP16: 'float16',
  INT32: 'int32',
  INT64: 'int64',
  UINT8: 'uint8',
};

function modelFor(datatype: string): ModelInfo {
  const type = PROTOCOL[datatype]!;
  return {
    name: 'm',
    service: 's',
    version: '1',
    inputs: [{ name: 'x', type, shape: [-1] }],
    outputs: [{ name: 'y', type, shape: [-1] }],
    maxBatchSize: 0,
    batching: null,
  };
}

/** A body with one input; `datatypeFirst` puts the datatype before or after the data. */
function body(texts: readonly string[], datatype: string, datatypeFirst = true): Buffer {
  const data = `"data":[${texts.join(', ')}]`;
  const type = `"datatype":"${datatype}"`;
  const fields = datatypeFirst ? `${type},${data}` : `${data},${type}`;
  return Buffer.from(`{"inputs":[{"name":"x","shape":[${texts.length}],${fields}}]}`);
}

/** What the decoder gives without lifting: JSON.parse, then the same checks. */
function reference(b: Buffer, datatype: string): TensorData {
  const json = JSON.parse(b.toString('utf8')) as { inputs: { data: unknown[] }[] };
  return toTensorData(PROTOCOL[datatype]!, json.inputs[0]!.data, 'x');
}

function sameBits(got: TensorData, want: TensorData, texts: readonly string[]): void {
  assert.equal(got.constructor, want.constructor);
  assert.equal(got.length, want.length);
  for (let i = 0; i < want.length; i++) {
    if (!Object.is(got[i], want[i])) assert.fail(`${texts[i]}: got ${got[i]}, want ${want[i]}`);
  }
}

const rng = mulberry32(7);
const pick = <T>(xs: readonly T[]) => xs[Math.floor(rng() * xs.length)]!;

/** Number texts of one kind, as clients write them. */
const KINDS: Record<string, () => string> = {
  'doubles (17 digits)': () => String(Math.sin(rng() * 1000) * 0.5),
  'float32 values printed as doubles': () => String(Math.fround(rng() * 2 - 1)),
  'few decimals': () => (rng() * 100 - 50).toFixed(Math.floor(rng() * 6)),
  'many decimals': () => (rng() * 100).toFixed(10 + Math.floor(rng() * 7)),
  'tiny exponents': () => (rng() * 1e-40).toExponential(Math.floor(rng() * 16)),
  'huge exponents': () => (rng() * 3e38).toExponential(Math.floor(rng() * 16)),
  // Just off the midpoint between two float32s: the double rounds to one side, decided only by
  // the last digits.
  'near float32 midpoints': () => {
    const f = Math.fround(1 + rng());
    return (f + 2 ** -24 + (rng() - 0.5) * 2 ** -44).toPrecision(17);
  },
  specials: () =>
    pick([
      '0',
      '-0',
      '0.0',
      '-0.0e-0',
      '1e5',
      '1E-5',
      '-1.5e+3',
      '3.4028235e38',
      '3.4028236e38',
      '1e39',
      '1e-45',
      '7e-46',
      '1.401298464324817e-45',
      '12345678901234567',
      '1.0000000596046448',
      '5e-324',
    ]),
};

describe('lifted number lists equal JSON.parse, bit for bit', () => {
  for (const [kind, make] of Object.entries(KINDS)) {
    for (const datatype of ['FP32', 'FP64', 'FP16']) {
      test(`${kind}, ${datatype} (datatype after the data, so the list is lifted)`, () => {
        for (let run = 0; run < 5; run++) {
          const texts = Array.from({ length: 1000 }, make);
          const b = body(texts, datatype, false);
          assert.ok(liftDataLists(b), 'the list was not lifted');
          const got = decodeRestBody(b, undefined, modelFor(datatype)).inputs.x!.data;
          sameBits(got, reference(b, datatype), texts);
        }
      });
    }
  }

  test('integers of every width, exact', () => {
    for (const datatype of ['INT32', 'INT64', 'UINT8']) {
      const texts = Array.from({ length: 2000 }, () =>
        String(datatype === 'UINT8' ? Math.floor(rng() * 256) : Math.floor(rng() * 2e9) - 1e9),
      );
      const b = body(texts, datatype);
      assert.ok(liftDataLists(b));
      const got = decodeRestBody(b, undefined, modelFor(datatype)).inputs.x!.data;
      sameBits(got, reference(b, datatype), texts);
    }
  });

  test('an integer out of range is refused as JSON.parse would have it', () => {
    const texts = Array.from({ length: 2000 }, (_, i) => String(i === 1500 ? 256 : i % 200));
    assert.throws(
      () => decodeRestBody(body(texts, 'UINT8'), undefined, modelFor('UINT8')),
      /data\[1500\] is 256, expected an integer from 0 to 255 \(UINT8\)/,
    );
  });

  test('the element count is checked against the shape', () => {
    const b = Buffer.from(
      `{"inputs":[{"name":"x","shape":[5000],"datatype":"FP32","data":[${Array.from({ length: 4000 }, (_, i) => i / 7).join(',')}]}]}`,
    );
    assert.throws(
      () => decodeRestBody(b, undefined, modelFor('FP32')),
      /shape \[5000\] needs 5000 elements, data has 4000/,
    );
  });
});

describe('what is not a plain list of JSON numbers stays with JSON.parse', () => {
  const numbers = Array.from({ length: 1000 }, (_, i) => String(i / 3));

  test('a small body is not scanned at all', () => {
    assert.equal(liftDataLists(body(['1', '2', '3'], 'FP32')), null);
    assert.ok(body(numbers, 'FP32').length >= LIFT_MIN_BYTES);
  });

  test('NaN and Infinity tokens: parsed as before', () => {
    const texts = [...numbers.slice(0, 998), 'NaN', '-Infinity'];
    const b = body(texts, 'FP32');
    assert.equal(liftDataLists(b), null);
    const got = decodeRestBody(b, undefined, modelFor('FP32')).inputs.x!.data as Float32Array;
    assert.ok(Number.isNaN(got[998]));
    assert.equal(got[999], Number.NEGATIVE_INFINITY);
  });

  for (const bad of ['01', '1.', '.5', '1e', '+1', '0x10', '1_000', '--1']) {
    test(`malformed number ${bad}: the same "not valid JSON" error`, () => {
      const b = body([...numbers.slice(0, 500), bad, ...numbers.slice(500)], 'FP32');
      assert.equal(liftDataLists(b), null);
      assert.throws(
        () => decodeRestBody(b, undefined, modelFor('FP32')),
        (e: unknown) =>
          e instanceof InferenceError &&
          e.code === 'BENTO_ERR_INFER_INVALID' &&
          /request body is not valid JSON/.test(e.message),
      );
    });
  }

  test('nested data: flattened as before', () => {
    const rows = Array.from({ length: 10 }, (_, r) => `[${numbers.slice(r * 100, r * 100 + 100)}]`);
    const b = Buffer.from(
      `{"inputs":[{"name":"x","shape":[10,100],"datatype":"FP64","data":[${rows.join(',')}]}]}`,
    );
    const got = decodeRestBody(b, undefined, {
      ...modelFor('FP64'),
      inputs: [{ name: 'x', type: 'float64', shape: [-1, -1] }],
    });
    assert.deepEqual(Array.from(got.inputs.x!.data as Float64Array), numbers.map(Number));
  });

  test('"data" lists elsewhere (parameters, inside strings) are left alone', () => {
    const list = `[${numbers.join(',')}]`;
    const text = `{"parameters":{"data":${list}},"id":"a \\"data\\":${list} b","inputs":[{"name":"x","shape":[1000],"datatype":"FP32","parameters":{"data":${list}},"data":${list}}]}`;
    const lifted = liftDataLists(Buffer.from(text));
    assert.ok(lifted);
    assert.equal(lifted.lists.length, 1, 'only inputs[0].data is lifted');
    const json = JSON.parse(lifted.json) as {
      id: string;
      parameters: { data: number[] };
      inputs: { parameters: { data: number[] } }[];
    };
    assert.equal(json.id, `a "data":${list} b`);
    assert.equal(json.parameters.data.length, 1000);
    assert.equal(json.inputs[0]!.parameters.data.length, 1000);
  });

  test('a client cannot name a lifted list: a string is still not a list', () => {
    const lifted = liftDataLists(body(numbers, 'FP32'))!;
    const forged = Buffer.from(
      `{"inputs":[{"name":"x","shape":[1000],"datatype":"FP32","data":"bento-list-0"}],"id":"${'p'.repeat(LIFT_MIN_BYTES)}"}`,
    );
    assert.notEqual(lifted.marker, 'bento-list-');
    assert.throws(
      () => decodeRestBody(forged, undefined, modelFor('FP32')),
      /input `x`: data must be a list/,
    );
  });
});

describe('through the server: large JSON inputs, on the HTTP thread and on a decoder thread', () => {
  let srv: InProcessServer;
  before(async () => {
    srv = await startInProcess(join(TEST_SPECS, 'all-models.yaml'));
  });
  after(async () => {
    await srv?.close();
  });

  // [datatype, input suffix, a value of that type]
  const TYPES: [string, string, (i: number) => number | boolean | string][] = [
    ['FP32', 'fp32', (i) => Math.sin(i) * 0.5],
    ['FP64', 'fp64', (i) => Math.sin(i) * 1e10],
    ['FP16', 'fp16', (i) => (i % 64) / 16],
    ['INT8', 'int8', (i) => (i % 256) - 128],
    ['INT16', 'int16', (i) => (i % 65536) - 32768],
    ['INT32', 'int32', (i) => i * 7919 - 1e9],
    ['INT64', 'int64', (i) => i * 104729 - 2 ** 40],
    ['UINT8', 'uint8', (i) => i % 256],
    ['UINT16', 'uint16', (i) => i % 65536],
    ['UINT32', 'uint32', (i) => i * 7919],
    ['UINT64', 'uint64', (i) => i * 104729],
    ['BOOL', 'bool', (i) => i % 3 === 0],
    ['BYTES', 'bytes', (i) => `s${i}`],
  ];

  for (const n of [400, 12_000]) {
    // 12,000 values of 13 inputs: about 1.3 MB, beyond the decoder threads' threshold.
    test(`types.onnx, [1, ${n}] of every type: each comes back as sent`, async () => {
      const inputs = TYPES.map(([datatype, suffix, value]) => ({
        name: `in_${suffix}`,
        shape: [1, n],
        datatype,
        data: Array.from({ length: n }, (_, i) => value(i)),
      }));
      const res = await post(`${srv.url}/v2/models/types/infer`, { inputs });
      assert.equal(res.status, 200, res.text.slice(0, 300));
      const out = new Map(
        (res.body.outputs as { name: string; data: unknown[] }[]).map((o) => [o.name, o.data]),
      );
      for (const [datatype, suffix, value] of TYPES) {
        const sent = Array.from({ length: n }, (_, i) => value(i));
        const want = datatype === 'FP32' ? sent.map((v) => Math.fround(v as number)) : sent;
        assert.deepEqual(out.get(`out_${suffix}`), want, datatype);
      }
    });
  }
});

describe('the decoder', () => {
  // Threads are told apart by id: others may end meanwhile (the server above closing). Each
  // test decodes a copy: a body handed to a decoder thread is no longer the caller's.
  const threads = () => new Set(readdirSync('/proc/self/task'));
  const started = (before: Set<string>) => [...threads()].filter((t) => !before.has(t));
  const big = Buffer.from(
    JSON.stringify({
      inputs: [
        {
          name: 'x',
          shape: [1000],
          datatype: 'FP32',
          data: Array.from({ length: 1000 }, (_, i) => i / 3),
        },
      ],
    }),
  );

  test('with no decoder threads, a large body is decoded on the calling thread', async () => {
    const decoder = createDecoder({ threads: 0, offloadBytes: 1 });
    const before = threads();
    const request = await decoder.decode(Buffer.from(big), undefined, modelFor('FP32'));
    assert.deepEqual(started(before), [], 'a decoder thread was started');
    assert.equal(request.inputs.x!.data.length, 1000);
    await decoder.close();
  });

  test('with one, a large body goes to a thread of its own', async () => {
    const decoder = createDecoder({ threads: 1, offloadBytes: 1 });
    const before = threads();
    const request = await decoder.decode(Buffer.from(big), undefined, modelFor('FP32'));
    assert.ok(started(before).length > 0, 'no decoder thread was started');
    assert.equal(request.inputs.x!.data.length, 1000);
    await decoder.close();
  });
});
