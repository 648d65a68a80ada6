// The binary tensor data extension (as Triton speaks it) through a real server: a JSON header of
// Inference-Header-Content-Length bytes, then raw little-endian tensor bytes. Binary requests
// give the JSON path's values byte for byte, for every datatype; JSON and binary mix per input and
// per output; malformed framing is a 400 that names the problem; the client round-trips.
//
// Request bodies are written here by hand (Buffer's explicit little-endian writers), and response
// bodies are read here by hand, so that the test does not lean on src/server/binary.ts.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BentoClient, type InferInput } from '../src/client.js';
import { get, type InProcessServer, startInProcess, TEST_SPECS } from './helpers/server.js';

let srv: InProcessServer;
/** Every batch the runtime dispatched, as its 'batch' events said. */
const batches: { model: string; rows: number; requests: number }[] = [];

before(async () => {
  srv = await startInProcess(join(TEST_SPECS, 'binary.yaml'));
  srv.runtime.events.on('batch', (model, rows, requests) =>
    batches.push({ model, rows, requests }),
  );
});

after(async () => {
  await srv?.close();
});

// ---- writing and reading the wire format by hand ----------------------------------------------

/** IEEE half bits -> value, written out here rather than imported. */
function halfValue(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Value -> half bits, for values that half precision holds exactly (0 maps to +0). */
const HALF_BITS = new Map<number, number>();
for (let h = 0xffff; h >= 0; h--) if (!Number.isNaN(halfValue(h))) HALF_BITS.set(halfValue(h), h);

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

/** JSON-style values -> the little-endian bytes the extension puts on the wire. */
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
  for (const [i, v] of values.entries()) write(out, datatype, v, i * size);
  return out;
}

function write(out: Buffer, datatype: string, v: unknown, at: number): void {
  const n = v as number;
  switch (datatype) {
    case 'FP32':
      out.writeFloatLE(n, at);
      return;
    case 'FP64':
      out.writeDoubleLE(n, at);
      return;
    case 'FP16': {
      const bits = HALF_BITS.get(n);
      assert.ok(bits !== undefined, `${n} is not exact in half precision`);
      out.writeUInt16LE(bits, at);
      return;
    }
    case 'INT8':
      out.writeInt8(n, at);
      return;
    case 'INT16':
      out.writeInt16LE(n, at);
      return;
    case 'INT32':
      out.writeInt32LE(n, at);
      return;
    case 'INT64':
      out.writeBigInt64LE(BigInt(v as number | string), at);
      return;
    case 'UINT8':
      out.writeUInt8(n, at);
      return;
    case 'UINT16':
      out.writeUInt16LE(n, at);
      return;
    case 'UINT32':
      out.writeUInt32LE(n, at);
      return;
    case 'UINT64':
      out.writeBigUInt64LE(BigInt(v as number | string), at);
      return;
    case 'BOOL':
      out.writeUInt8(v ? 1 : 0, at);
      return;
  }
  throw new Error(`no encoding for ${datatype}`);
}

/** A binary request body: the JSON header, then the chunks, and the header's length in bytes. */
function binaryBody(header: unknown, chunks: readonly Buffer[] = []) {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  return { body: Buffer.concat([json, ...chunks]), headerLength: json.length };
}

interface RawResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly bytes: Buffer;
}

async function postRaw(
  model: string,
  body: Buffer | string,
  headerLength?: number | string,
): Promise<RawResponse> {
  const res = await fetch(`${srv.url}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: {
      'content-type': headerLength === undefined ? 'application/json' : 'application/octet-stream',
      ...(headerLength === undefined
        ? {}
        : { 'inference-header-content-length': String(headerLength) }),
    },
    body,
    signal: AbortSignal.timeout(30_000),
  });
  return { status: res.status, headers: res.headers, bytes: Buffer.from(await res.arrayBuffer()) };
}

/** Sends `header` with `chunks` after it, framed as the extension says. */
function postBinary(model: string, header: unknown, chunks: readonly Buffer[] = []) {
  const { body, headerLength } = binaryBody(header, chunks);
  return postRaw(model, body, headerLength);
}

interface Output {
  readonly name: string;
  readonly datatype: string;
  readonly shape: number[];
  readonly data?: unknown[];
  readonly parameters?: { binary_data_size?: number };
  /** The output's raw bytes, when it came as binary data. */
  readonly bytes?: Buffer;
}

/** Reads a response: the JSON header and, in order, each binary output's bytes. */
function readResponse(res: RawResponse): { json: Record<string, unknown>; outputs: Output[] } {
  assert.equal(res.status, 200, res.bytes.toString('utf8').slice(0, 500));
  const declared = res.headers.get('inference-header-content-length');
  const headerLength = declared === null ? res.bytes.length : Number(declared);
  const json = JSON.parse(res.bytes.subarray(0, headerLength).toString('utf8'));
  let at = headerLength;
  const outputs = (json.outputs as Output[]).map((o) => {
    const size = o.parameters?.binary_data_size;
    if (size === undefined) return o;
    const bytes = res.bytes.subarray(at, at + size);
    at += size;
    return { ...o, bytes };
  });
  assert.equal(at, res.bytes.length, 'the binary outputs account for every byte of the body');
  return { json, outputs };
}

const byName = (outputs: readonly Output[]) => new Map(outputs.map((o) => [o.name, o]));

// ---- every datatype -----------------------------------------------------------------------------

const BIG = 2n ** 53n + 1n;
/** [datatype, input suffix, six values for a [2, 3] tensor] */
const TYPES: [string, string, unknown[]][] = [
  ['FP32', 'fp32', [1.5, -2.25, Math.fround(0.1), 3.4028234663852886e38, 1e-45, -7]],
  ['FP64', 'fp64', [0.1, -1e300, 5e-324, 1 / 3, 2 ** 60, -7]],
  ['FP16', 'fp16', [0.5, -2, 65504, 0.0999755859375, 2 ** -14, 2 ** -24]],
  ['INT8', 'int8', [-128, 127, 0, -1, 1, 42]],
  ['INT16', 'int16', [-32768, 32767, 0, -1, 1, 1234]],
  ['INT32', 'int32', [-2147483648, 2147483647, 0, -1, 1, 123456789]],
  [
    'INT64',
    'int64',
    ['9223372036854775807', '-9223372036854775808', BIG.toString(), -42, 7, 2 ** 53 - 1],
  ],
  ['UINT8', 'uint8', [0, 255, 1, 128, 7, 200]],
  ['UINT16', 'uint16', [0, 65535, 1, 32768, 7, 60000]],
  ['UINT32', 'uint32', [0, 4294967295, 1, 2147483648, 7, 3000000000]],
  [
    'UINT64',
    'uint64',
    ['18446744073709551615', BIG.toString(), 0, 1, 2 ** 53 - 1, '9223372036854775808'],
  ],
  ['BOOL', 'bool', [true, false, false, true, true, false]],
  [
    'BYTES',
    'bytes',
    // No NUL: onnxruntime-node cuts a string at its first NUL, on either path.
    ['héllo', '日本語', '🚀 rocket', '', 'quote " back \\ slash', 'tab\tnewline\n'],
  ],
];

const jsonInputs = () =>
  TYPES.map(([datatype, suffix, data]) => ({
    name: `in_${suffix}`,
    shape: [2, 3],
    datatype,
    data,
  }));

/** All of types.onnx's inputs as binary data, in TYPES order. */
function binaryInputs(values: (d: string, v: unknown[]) => Buffer = le) {
  const chunks = TYPES.map(([datatype, , data]) => values(datatype, data));
  const inputs = TYPES.map(([datatype, suffix], i) => ({
    name: `in_${suffix}`,
    shape: [2, 3],
    datatype,
    parameters: { binary_data_size: chunks[i]!.length },
  }));
  return { inputs, chunks };
}

describe('every datatype', () => {
  test('binary in, binary out: the same bytes as the JSON path gives', async () => {
    const viaJson = readResponse(await postRaw('types', JSON.stringify({ inputs: jsonInputs() })));
    const { inputs, chunks } = binaryInputs();
    const res = await postBinary(
      'types',
      { id: 'b1', inputs, parameters: { binary_data_output: true } },
      chunks,
    );
    const viaBinary = readResponse(res);
    assert.equal(viaBinary.json.id, 'b1');
    assert.equal(viaBinary.json.model_name, 'types');
    const json = byName(viaJson.outputs);
    const binary = byName(viaBinary.outputs);
    assert.equal(binary.size, TYPES.length);
    for (const [i, [datatype, suffix]] of TYPES.entries()) {
      const name = `out_${suffix}`;
      const b = binary.get(name);
      const j = json.get(name);
      assert.ok(b && j, `${name} missing`);
      assert.equal(b.datatype, datatype);
      assert.deepEqual(b.shape, [2, 3], `${name} shape`);
      assert.equal(b.data, undefined, `${name}: binary output has no JSON data`);
      assert.ok(b.bytes, `${name}: no binary data`);
      assert.equal(b.parameters?.binary_data_size, b.bytes.length);
      // The JSON response's values, written as bytes here, equal the binary response's bytes...
      assert.deepEqual(b.bytes, le(datatype, j.data!), `${datatype}: binary vs JSON path`);
      // ...and, types.onnx being Identity, the bytes that were sent.
      assert.deepEqual(b.bytes, chunks[i], `${datatype}: binary out vs binary in`);
    }
  });

  test('binary in, JSON out: the same response as the JSON path', async () => {
    const viaJson = readResponse(await postRaw('types', JSON.stringify({ inputs: jsonInputs() })));
    const { inputs, chunks } = binaryInputs();
    const res = await postBinary('types', { inputs }, chunks);
    assert.equal(res.headers.get('content-type'), 'application/json');
    assert.equal(res.headers.get('inference-header-content-length'), null);
    assert.deepEqual(readResponse(res).json, viaJson.json);
  });

  test('values JSON cannot carry (NaN payloads, -0, infinities) pass through bit for bit', async () => {
    const f32 = Buffer.alloc(24);
    for (const [i, u] of [0x7fc00001, 0xffc12345, 0x80000000, 0x7f800000, 0xff800000, 1].entries())
      f32.writeUInt32LE(u, i * 4);
    const f64 = Buffer.alloc(48);
    f64.writeBigUInt64LE(0x7ff8000000000123n, 0);
    f64.writeDoubleLE(-0, 8);
    f64.writeDoubleLE(Number.POSITIVE_INFINITY, 16);
    f64.writeDoubleLE(Number.NEGATIVE_INFINITY, 24);
    f64.writeBigUInt64LE(0xfff0000000000001n, 32); // a signalling NaN
    f64.writeDoubleLE(Number.MIN_VALUE, 40);
    const f16 = Buffer.alloc(12);
    for (const [i, u] of [0x7e01, 0x8000, 0x7c00, 0xfc00, 0xfe00, 0x0001].entries())
      f16.writeUInt16LE(u, i * 2);
    const special: Record<string, Buffer> = { FP32: f32, FP64: f64, FP16: f16 };
    const { inputs, chunks } = binaryInputs((d, v) => special[d] ?? le(d, v));
    const res = await postBinary(
      'types',
      { inputs, parameters: { binary_data_output: true } },
      chunks,
    );
    const out = byName(readResponse(res).outputs);
    for (const [d, bytes] of Object.entries(special)) {
      assert.deepEqual(out.get(`out_${d.toLowerCase()}`)!.bytes, bytes, d);
    }
  });

  test('outputs cut from a merged batch are each request their own bytes', async () => {
    // types_batched waits 20 ms (policy fixed), so that a burst merges; the binary outputs are
    // then views into one batch's buffers, at an offset.
    const N = 8;
    const requests = Array.from({ length: N }, (_, r) => {
      const rows = 1 + (r % 3);
      const values = TYPES.map(([datatype, , data]) =>
        Array.from({ length: rows * 3 }, (_, k) => {
          // Shift each request's values so that a mix-up cannot go unseen.
          const v = data[(k + r) % data.length];
          return datatype === 'BYTES' ? `${r}:${v}` : v;
        }),
      );
      const chunks = TYPES.map(([datatype], i) => le(datatype, values[i]!));
      const inputs = TYPES.map(([datatype, suffix], i) => ({
        name: `in_${suffix}`,
        shape: [rows, 3],
        datatype,
        parameters: { binary_data_size: chunks[i]!.length },
      }));
      return { rows, chunks, inputs };
    });
    batches.length = 0;
    const responses = await Promise.all(
      requests.map((r) =>
        postBinary(
          'types_batched',
          { inputs: r.inputs, parameters: { binary_data_output: true } },
          r.chunks,
        ),
      ),
    );
    const merged = batches.filter((b) => b.model === 'types_batched');
    assert.ok(
      merged.some((b) => b.requests > 1),
      `no batch merged requests: ${JSON.stringify(merged)}`,
    );
    for (const [r, res] of responses.entries()) {
      const out = byName(readResponse(res).outputs);
      for (const [i, [datatype, suffix]] of TYPES.entries()) {
        const o = out.get(`out_${suffix}`)!;
        assert.deepEqual(o.shape, [requests[r]!.rows, 3]);
        assert.deepEqual(o.bytes, requests[r]!.chunks[i], `request ${r}: ${datatype}`);
      }
    }
  });
});

// ---- mixing JSON and binary ---------------------------------------------------------------------

describe('JSON and binary mixed', () => {
  const a = [1.5, -2, 0.25];
  const b = [4, 0.5, -8, 3, 2.5, -1];
  const sum = [5.5, -1.5, -7.75, 4.5, 0.5, -0.75];
  const product = [6, -1, -2, 4.5, -5, -0.25];

  test('some inputs binary, some JSON; outputs binary or JSON by their own binary_data', async () => {
    // b ([2, 3]) comes first in the list and so first in the body; a ([1, 3]) broadcasts.
    const res = await postBinary(
      'two_inputs',
      {
        inputs: [
          { name: 'b', shape: [2, 3], datatype: 'FP32', parameters: { binary_data_size: 24 } },
          { name: 'a', shape: [1, 3], datatype: 'FP32', data: a },
        ],
        outputs: [{ name: 'sum', parameters: { binary_data: true } }, { name: 'product' }],
      },
      [le('FP32', b)],
    );
    assert.equal(res.headers.get('content-type'), 'application/octet-stream');
    const out = byName(readResponse(res).outputs);
    assert.deepEqual([...out.keys()], ['sum', 'product']);
    assert.deepEqual(out.get('sum')!.bytes, le('FP32', sum));
    assert.equal(out.get('sum')!.data, undefined);
    assert.deepEqual(out.get('product')!.data, product);
    assert.equal(out.get('product')!.bytes, undefined);
  });

  test('two binary inputs of different sizes are read in the order the inputs are listed', async () => {
    const res = await postBinary(
      'two_inputs',
      {
        inputs: [
          { name: 'a', shape: [1, 3], datatype: 'FP32', parameters: { binary_data_size: 12 } },
          { name: 'b', shape: [2, 3], datatype: 'FP32', parameters: { binary_data_size: 24 } },
        ],
      },
      [le('FP32', a), le('FP32', b)],
    );
    const out = byName(readResponse(res).outputs);
    assert.deepEqual(out.get('sum')!.data, sum);
    assert.deepEqual(out.get('product')!.data, product);
  });

  test('binary_data_output: true makes every output binary; an output binary_data: false wins', async () => {
    const inputs = [
      { name: 'a', shape: [1, 3], datatype: 'FP32', data: a },
      { name: 'b', shape: [2, 3], datatype: 'FP32', data: b },
    ];
    // JSON inputs, no binary part at all: outputs may still be binary.
    const all = await postRaw(
      'two_inputs',
      JSON.stringify({ inputs, parameters: { binary_data_output: true } }),
    );
    assert.equal(all.headers.get('content-type'), 'application/octet-stream');
    const allOut = byName(readResponse(all).outputs);
    assert.deepEqual(allOut.get('sum')!.bytes, le('FP32', sum));
    assert.deepEqual(allOut.get('product')!.bytes, le('FP32', product));

    const some = await postRaw(
      'two_inputs',
      JSON.stringify({
        inputs,
        parameters: { binary_data_output: true },
        outputs: [{ name: 'product', parameters: { binary_data: false } }, { name: 'sum' }],
      }),
    );
    const someOut = byName(readResponse(some).outputs);
    assert.deepEqual(someOut.get('product')!.data, product);
    assert.deepEqual(someOut.get('sum')!.bytes, le('FP32', sum));

    const none = await postRaw(
      'two_inputs',
      JSON.stringify({ inputs, parameters: { binary_data_output: false } }),
    );
    assert.equal(none.headers.get('content-type'), 'application/json');
    const noneOut = byName(readResponse(none).outputs);
    assert.deepEqual(noneOut.get('sum')!.data, sum);
    assert.deepEqual(noneOut.get('product')!.data, product);
  });

  test('a header length equal to the body (no binary part) is a plain JSON request', async () => {
    const { body, headerLength } = binaryBody({
      inputs: [
        { name: 'a', shape: [1, 3], datatype: 'FP32', data: a },
        { name: 'b', shape: [2, 3], datatype: 'FP32', data: b },
      ],
    });
    const out = byName(readResponse(await postRaw('two_inputs', body, headerLength)).outputs);
    assert.deepEqual(out.get('sum')!.data, sum);
  });

  test('response headers: content-type, header length in bytes, content-length', async () => {
    // A non-ASCII id: the header length counts bytes, not characters.
    const res = await postBinary(
      'two_inputs',
      {
        id: 'naïve-日本',
        inputs: [
          { name: 'a', shape: [1, 3], datatype: 'FP32', parameters: { binary_data_size: 12 } },
          { name: 'b', shape: [2, 3], datatype: 'FP32', data: b },
        ],
        parameters: { binary_data_output: true },
      },
      [le('FP32', a)],
    );
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/octet-stream');
    const headerLength = Number(res.headers.get('inference-header-content-length'));
    assert.equal(Number(res.headers.get('content-length')), res.bytes.length);
    assert.equal(res.bytes.length, headerLength + 24 + 24, 'header, then two [2, 3] FP32 tensors');
    const json = JSON.parse(res.bytes.subarray(0, headerLength).toString('utf8'));
    assert.equal(json.id, 'naïve-日本');
    assert.deepEqual(
      json.outputs.map((o: Output) => [o.name, o.parameters?.binary_data_size]),
      [
        ['sum', 24],
        ['product', 24],
      ],
    );
  });
});

// ---- malformed requests -------------------------------------------------------------------------

describe('malformed binary requests: 400 naming the problem, and the server still serves', () => {
  const a12 = le('FP32', [1, 2, 3]);
  const bJson = { name: 'b', shape: [1, 3], datatype: 'FP32', data: [1, 1, 1] };
  const aBinary = (size: number) => ({
    name: 'a',
    shape: [1, 3],
    datatype: 'FP32',
    parameters: { binary_data_size: size },
  });
  const good = binaryBody({ inputs: [aBinary(12), bJson] }, [a12]);

  const cases: [string, () => Promise<RawResponse>, RegExp][] = [
    [
      'a header length larger than the body',
      () => postRaw('two_inputs', good.body, good.body.length + 1),
      // The value, what it must be, and the body's length; not a complaint about JSON.
      new RegExp(
        `^Inference-Header-Content-Length is ${good.body.length + 1}: it must be the JSON header's length in bytes, an integer from 0 to the body's ${good.body.length}$`,
      ),
    ],
    [
      'a header length that is not a number',
      () => postRaw('two_inputs', good.body, 'twelve'),
      /^Inference-Header-Content-Length is twelve: it must be .* an integer/,
    ],
    [
      'a negative header length',
      () => postRaw('two_inputs', good.body, -1),
      /^Inference-Header-Content-Length is -1: it must be .* an integer from 0/,
    ],
    [
      'a header length that cuts the JSON short',
      () => postRaw('two_inputs', good.body, good.headerLength - 5),
      /^request body is not valid JSON: /,
    ],
    [
      'a binary_data_size that does not match shape × element size',
      () => postBinary('two_inputs', { inputs: [aBinary(8), bJson] }, [a12.subarray(0, 8)]),
      /input `a`: binary data has 8 bytes, the shape needs 3 × 4 = 12/,
    ],
    [
      'bytes left over that no input claims',
      () => postBinary('two_inputs', { inputs: [aBinary(12), bJson] }, [a12, Buffer.alloc(5)]),
      /5 binary bytes follow the JSON header that no input claims/,
    ],
    [
      'binary bytes and no input that uses them',
      () =>
        postBinary(
          'two_inputs',
          { inputs: [{ name: 'a', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }, bJson] },
          [a12],
        ),
      /12 binary bytes follow the JSON header that no input claims/,
    ],
    [
      'a binary_data_size beyond the bytes sent',
      () => postBinary('two_inputs', { inputs: [aBinary(16), bJson] }, [a12]),
      /input `a`: binary_data_size is 16 but only 12 binary bytes follow the JSON header/,
    ],
    [
      'binary_data_size with no binary part at all',
      () => postRaw('two_inputs', JSON.stringify({ inputs: [aBinary(12), bJson] })),
      /input `a`: binary_data_size is 12 but only 0 binary bytes follow the JSON header/,
    ],
    [
      'a negative binary_data_size',
      () => postBinary('two_inputs', { inputs: [aBinary(-12), bJson] }, [a12]),
      /input `a`: parameters.binary_data_size must be a non-negative integer/,
    ],
    [
      'a truncated BYTES element',
      () => {
        // Two elements: "ok", then a length of 10 with only 3 bytes behind it.
        const bytes = Buffer.concat([
          le('BYTES', ['ok']),
          Buffer.from([10, 0, 0, 0, 0x61, 0x62, 0x63]),
        ]);
        return postBinary('types', typesWith('BYTES', bytes, [1, 2]), [bytes]);
      },
      /input `in_bytes`: binary data BYTES element is cut short/,
    ],
    [
      'a BYTES length prefix cut short',
      () => {
        const bytes = Buffer.concat([le('BYTES', ['ok']), Buffer.from([1, 0])]);
        return postBinary('types', typesWith('BYTES', bytes, [1, 2]), [bytes]);
      },
      /input `in_bytes`: binary data BYTES element length is cut short/,
    ],
    [
      'fewer BYTES elements than the shape needs',
      () => {
        const bytes = le('BYTES', ['one', 'two']);
        return postBinary('types', typesWith('BYTES', bytes, [1, 3]), [bytes]);
      },
      /input `in_bytes`: binary data holds 2 BYTES elements, the shape needs 3/,
    ],
  ];

  for (const [what, send, message] of cases) {
    test(what, async () => {
      const res = await send();
      const text = res.bytes.toString('utf8');
      assert.equal(res.status, 400, text);
      assert.equal(res.headers.get('content-type'), 'application/json');
      const body = JSON.parse(text) as { error: string };
      assert.match(body.error, message);
      // The worker and the server are fine: the well-formed request is served.
      const ok = readResponse(await postRaw('two_inputs', good.body, good.headerLength));
      assert.deepEqual(byName(ok.outputs).get('sum')!.data, [2, 3, 4]);
    });
  }
});

/** types.onnx's JSON header with `datatype`'s input given as `bytes` of `shape`, the rest as JSON. */
function typesWith(datatype: string, bytes: Buffer, shape: number[]) {
  return {
    inputs: TYPES.map(([d, suffix, data]) =>
      d === datatype
        ? {
            name: `in_${suffix}`,
            shape,
            datatype: d,
            parameters: { binary_data_size: bytes.length },
          }
        : { name: `in_${suffix}`, shape, datatype: d, data: data.slice(0, shape[0]! * shape[1]!) },
    ),
  };
}

// ---- the client and the server's metadata -------------------------------------------------------

describe('BentoClient with { binary: true }', () => {
  let client: BentoClient;
  before(() => {
    client = new BentoClient(srv.url);
  });
  after(async () => {
    await client?.close();
  });

  const raw = (d: ArrayBufferView) => Buffer.from(d.buffer, d.byteOffset, d.byteLength);

  test('round-trips every datatype, NaN and -0 included (JSON could not)', async () => {
    const f32 = new Float32Array(3);
    new Uint32Array(f32.buffer).set([0x7fc00001, 0x80000000, 0xff800000]);
    const inputs: Record<string, InferInput> = {
      in_fp32: { data: f32, shape: [1, 3] },
      in_fp64: { data: Float64Array.from([Number.NaN, -0, 1 / 3]), shape: [1, 3] },
      in_fp16: {
        data: Uint16Array.from([0x7e01, 0x8000, 0x3c00]),
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
      in_bytes: { data: ['héllo', '', '🚀 tab\t'], shape: [1, 3] },
    };
    const res = await client.infer('types', inputs, { binary: true, id: 'bin' });
    assert.equal(res.id, 'bin');
    assert.equal(Object.keys(res.outputs).length, TYPES.length);
    for (const [name, t] of Object.entries(inputs)) {
      const out = res.outputs[name.replace('in_', 'out_')];
      assert.ok(out, `${name}: no output`);
      assert.deepEqual(out.shape, [1, 3]);
      if (Array.isArray(t.data)) {
        assert.deepEqual(out.data, t.data, name);
        continue;
      }
      assert.equal(out.data.constructor, t.data.constructor, name);
      assert.deepEqual(raw(out.data as ArrayBufferView), raw(t.data as ArrayBufferView), name);
    }
    assert.equal(res.outputs.out_fp16!.datatype, 'FP16');
    assert.equal(res.outputs.out_bool!.datatype, 'BOOL');
  });

  test('with an outputs filter, against a batched model, in a burst', async () => {
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, r) => {
        const inputs: Record<string, InferInput> = Object.fromEntries(
          TYPES.map(([datatype, suffix, data]) => [
            `in_${suffix}`,
            {
              datatype: datatype as InferInput['datatype'],
              shape: [1, 2],
              data: (datatype === 'BYTES'
                ? [`${r}a`, `${r}b`]
                : datatype === 'FP16'
                  ? Uint16Array.from([r, r + 1])
                  : data.slice(r % 5, (r % 5) + 2)) as InferInput['data'],
            },
          ]),
        );
        return client
          .infer('types_batched', inputs, { binary: true, outputs: ['out_bytes', 'out_int64'] })
          .then((res) => ({ r, res, sent: inputs }));
      }),
    );
    for (const { r, res, sent } of results) {
      assert.deepEqual(Object.keys(res.outputs).sort(), ['out_bytes', 'out_int64'], `request ${r}`);
      assert.deepEqual(res.outputs.out_bytes!.data, [`${r}a`, `${r}b`]);
      assert.deepEqual(
        res.outputs.out_int64!.data,
        BigInt64Array.from((sent.in_int64!.data as unknown[]).map((v) => BigInt(v as string))),
      );
    }
  });
});

test('GET /v2 advertises binary_tensor_data', async () => {
  const res = await get(`${srv.url}/v2`);
  assert.equal(res.status, 200);
  assert.ok(res.body.extensions.includes('binary_tensor_data'), res.text);
  const client = new BentoClient(srv.url);
  try {
    assert.ok((await client.metadata()).extensions.includes('binary_tensor_data'));
  } finally {
    await client.close();
  }
});
