// A corpus of bad requests, each answered with its 4xx and a JSON `error` naming the problem,
// none of them reaching a worker; afterwards the server still answers and no worker restarted.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  get,
  type InProcessServer,
  post,
  request,
  startInProcess,
  TEST_SPECS,
} from './helpers/server.js';

const MAX_BODY = 16 * 1024;
let srv: InProcessServer;

before(async () => {
  srv = await startInProcess(join(TEST_SPECS, 'all-models.yaml'), { maxBodyBytes: MAX_BODY });
});
after(() => srv?.close());

const x = (over: Record<string, unknown> = {}) => ({
  name: 'x',
  shape: [1, 4],
  datatype: 'FP32',
  data: [1, 2, 3, 4],
  ...over,
});
const typed = (suffix: string, datatype: string, data: unknown[]) => ({
  name: `in_${suffix}`,
  shape: [1, data.length],
  datatype,
  data,
});

interface Case {
  readonly what: string;
  readonly method?: string;
  /** Path under the server; default the tiny model's infer route. */
  readonly path?: string;
  /** A string is sent as is; anything else as JSON. */
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
  readonly status: number;
  readonly error: RegExp;
}

const CASES: readonly Case[] = [
  // The body itself
  { what: 'not JSON', body: '{"inputs": [', status: 400, error: /not valid JSON/ },
  { what: 'empty body', body: '', status: 400, error: /not valid JSON/ },
  { what: 'body is a list', body: '[]', status: 400, error: /must be a JSON object/ },
  { what: 'body is null', body: 'null', status: 400, error: /must be a JSON object/ },
  { what: 'body is a string', body: '"inputs"', status: 400, error: /must be a JSON object/ },
  { what: 'no inputs', body: {}, status: 400, error: /`inputs` must be a non-empty list/ },
  { what: 'empty inputs', body: { inputs: [] }, status: 400, error: /non-empty list/ },
  { what: 'inputs not a list', body: { inputs: x() }, status: 400, error: /non-empty list/ },
  {
    what: 'id not a string',
    body: { id: 7, inputs: [x()] },
    status: 400,
    error: /`id` must be a string/,
  },
  {
    what: 'parameters not an object',
    body: { parameters: [1], inputs: [x()] },
    status: 400,
    error: /`parameters` must be an object/,
  },
  // Input tensors
  {
    what: 'input not an object',
    body: { inputs: [42] },
    status: 400,
    error: /inputs\[0\] must be an object/,
  },
  {
    what: 'input without a name',
    body: { inputs: [x({ name: undefined })] },
    status: 400,
    error: /inputs\[0\]\.name must be a string/,
  },
  {
    what: 'unknown input',
    body: { inputs: [x({ name: 'X' })] },
    status: 400,
    error: /unknown input `X` for model `tiny` \(inputs: x\)/,
  },
  {
    what: 'input given twice',
    body: { inputs: [x(), x()] },
    status: 400,
    error: /input `x` is given twice/,
  },
  {
    what: 'missing input',
    path: '/v2/models/two_inputs/infer',
    body: { inputs: [{ name: 'a', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }] },
    status: 400,
    error: /missing input `b`/,
  },
  {
    what: 'unknown datatype',
    body: { inputs: [x({ datatype: 'FLOAT32' })] },
    status: 400,
    error: /input `x`: datatype "FLOAT32" is not one of FP32, .*BYTES/,
  },
  {
    what: 'datatype missing',
    body: { inputs: [x({ datatype: undefined })] },
    status: 400,
    error: /input `x`: datatype undefined is not one of/,
  },
  {
    what: 'datatype not matching the model',
    body: { inputs: [x({ datatype: 'FP64' })] },
    status: 400,
    error: /input `x`: datatype FP64 does not match the model's FP32/,
  },
  {
    what: 'shape missing',
    body: { inputs: [x({ shape: undefined })] },
    status: 400,
    error: /input `x`: shape must be a list of non-negative integers/,
  },
  {
    what: 'negative dimension',
    body: { inputs: [x({ shape: [-1, 4] })] },
    status: 400,
    error: /shape must be a list of non-negative integers/,
  },
  {
    what: 'fractional dimension',
    body: { inputs: [x({ shape: [1.5, 4] })] },
    status: 400,
    error: /shape must be a list of non-negative integers/,
  },
  {
    what: 'wrong rank',
    body: { inputs: [x({ shape: [4] })] },
    status: 400,
    error: /input `x`: shape \[4\] has 1 dimensions, the model expects 2 \(\[-1, 4\]/,
  },
  {
    what: 'wrong fixed dimension',
    body: { inputs: [x({ shape: [2, 2] })] },
    status: 400,
    error: /input `x`: dimension 1 is 2, the model expects 4/,
  },
  {
    what: 'wrong fixed batch dimension',
    path: '/v2/models/fixed_batch/infer',
    body: { inputs: [{ name: 'input', shape: [2, 4], datatype: 'FP32', data: Array(8).fill(0) }] },
    status: 400,
    error: /input `input`: dimension 0 is 2, the model expects 1/,
  },
  {
    what: 'shape vs data length (too few)',
    body: { inputs: [x({ shape: [2, 4] })] },
    status: 400,
    error: /input `x`: shape \[2, 4\] needs 8 elements, data has 4/,
  },
  {
    what: 'shape vs data length (too many, nested)',
    body: {
      inputs: [
        x({
          data: [
            [1, 2, 3, 4],
            [5, 6, 7, 8],
          ],
        }),
      ],
    },
    status: 400,
    error: /input `x`: data has 2 items, shape \[1, 4\] needs 1 at dimension 0/,
  },
  {
    what: 'ragged nested data whose count matches the shape',
    body: {
      inputs: [
        x({
          shape: [2, 4],
          data: [
            [1, 2],
            [3, 4, 5, 6, 7, 8],
          ],
        }),
      ],
    },
    status: 400,
    error: /input `x`: data\[0\] has 2 items, shape \[2, 4\] needs 4 at dimension 1/,
  },
  {
    what: 'data not a list',
    body: { inputs: [x({ data: '1,2,3,4' })] },
    status: 400,
    error: /input `x`: data must be a list/,
  },
  {
    what: 'FP32 element not a number',
    body: { inputs: [x({ data: [1, '2', 3, 4] })] },
    status: 400,
    error: /input `x`: data\[1\] is "2", expected a number/,
  },
  {
    what: 'FP32 element null',
    body: { inputs: [x({ data: [1, 2, null, 4] })] },
    status: 400,
    error: /data\[2\] is null, expected a number/,
  },
  // Element types against the identity model (one input is enough to fail; the rest are missing)
  ...(
    [
      [
        'INT8 out of range',
        'int8',
        'INT8',
        [1, 128],
        /in_int8`: data\[1\] is 128, expected an integer from -128 to 127 \(INT8\)/,
      ],
      [
        'UINT8 negative',
        'uint8',
        'UINT8',
        [-1],
        /data\[0\] is -1, expected an integer from 0 to 255/,
      ],
      ['UINT16 out of range', 'uint16', 'UINT16', [65536], /from 0 to 65535/],
      ['INT32 fraction', 'int32', 'INT32', [1, 2.5], /data\[1\] is 2.5, expected an integer/],
      ['UINT32 out of range', 'uint32', 'UINT32', [4294967296], /from 0 to 4294967295/],
      [
        'INT64 beyond int64',
        'int64',
        'INT64',
        ['9223372036854775808'],
        /in_int64`: data\[0\] is "9223372036854775808", expected an integer in int64 range/,
      ],
      [
        'INT64 fractional string',
        'int64',
        'INT64',
        ['12.5'],
        /data\[0\] is "12.5", expected an integer/,
      ],
      ['UINT64 negative', 'uint64', 'UINT64', ['-1'], /expected an integer in uint64 range/],
      [
        'BOOL given as a number',
        'bool',
        'BOOL',
        [true, 1],
        /in_bool`: data\[1\] is 1, expected true or false/,
      ],
      [
        'BYTES given as a number',
        'bytes',
        'BYTES',
        ['a', 5],
        /in_bytes`: data\[1\] is 5, expected a string/,
      ],
      [
        'FP16 given as a string',
        'fp16',
        'FP16',
        ['0.5'],
        /in_fp16`: data\[0\] is "0.5", expected a number/,
      ],
    ] as const
  ).map(
    ([what, suffix, datatype, data, error]): Case => ({
      what,
      path: '/v2/models/types/infer',
      body: { inputs: [typed(suffix, datatype, [...data])] },
      status: 400,
      error,
    }),
  ),
  // Outputs
  {
    what: 'unknown output',
    body: { inputs: [x()], outputs: [{ name: 'z' }] },
    status: 400,
    error: /unknown output `z` for model `tiny` \(outputs: y\)/,
  },
  {
    what: 'outputs not a list',
    body: { inputs: [x()], outputs: { name: 'y' } },
    status: 400,
    error: /`outputs` must be a list/,
  },
  {
    what: 'output without a name',
    body: { inputs: [x()], outputs: [{}] },
    status: 400,
    error: /outputs\[0\]\.name must be a string/,
  },
  // Routes and limits
  {
    what: 'unknown model',
    path: '/v2/models/resnet/infer',
    body: { inputs: [x()] },
    status: 404,
    error: /unknown model `resnet` \(models: .*tiny/,
  },
  {
    what: 'body over the limit (content-length)',
    body: JSON.stringify({ inputs: [x({ data: Array(MAX_BODY).fill(1) })] }),
    status: 413,
    error: new RegExp(`larger than the limit of ${MAX_BODY} bytes`),
  },
  {
    what: 'GET on /infer',
    method: 'GET',
    status: 405,
    error: /use POST for \/infer/,
  },
  {
    what: 'unknown route',
    method: 'GET',
    path: '/v3/models',
    status: 404,
    error: /no route for GET \/v3\/models/,
  },
  {
    what: 'a malformed percent-escape in the URL',
    method: 'GET',
    path: '/v2/models/%E0%A4%A/ready',
    status: 400,
    error: /malformed URL: \/v2\/models\/%E0%A4%A\/ready/,
  },
  {
    what: 'POST on a GET route',
    method: 'POST',
    path: '/v2/health/ready',
    body: {},
    status: 405,
    error: /use GET for \/ready/,
  },
];

test('bad requests: each gets its 4xx and a JSON error naming the problem, and no worker sees it', async () => {
  const completedBefore = srv.runtime.workers().reduce((n, w) => n + w.completed, 0);
  for (const c of CASES) {
    const res = await request(
      c.method ?? 'POST',
      `${srv.url}${c.path ?? '/v2/models/tiny/infer'}`,
      c.body,
      c.headers,
    );
    assert.equal(res.status, c.status, `${c.what}: status ${res.status}, ${res.text}`);
    assert.match(res.headers.get('content-type') ?? '', /application\/json/, c.what);
    assert.equal(typeof res.body?.error, 'string', `${c.what}: ${res.text}`);
    assert.match(res.body.error, c.error, c.what);
    if (c.status === 405)
      assert.equal(res.headers.get('allow'), c.method === 'GET' ? 'POST' : 'GET');
  }
  const workers = srv.runtime.workers();
  assert.equal(
    workers.reduce((n, w) => n + w.completed, 0),
    completedBefore,
    'a bad request reached a worker',
  );
});

test('a body over the limit sent in chunks (no content-length) gets 413', async () => {
  const chunk = new TextEncoder().encode(`${'1,'.repeat(1024)}`);
  let sent = 0;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(
        new TextEncoder().encode('{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":['),
      );
    },
    pull(controller) {
      // Stops well past the limit; the server answers before reading it all.
      if (sent > 4 * MAX_BODY) return controller.close();
      sent += chunk.length;
      controller.enqueue(chunk);
    },
  });
  const res = await fetch(`${srv.url}/v2/models/tiny/infer`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json' },
    duplex: 'half',
    signal: AbortSignal.timeout(10_000),
  } as RequestInit);
  assert.equal(res.status, 413);
  assert.match(((await res.json()) as { error: string }).error, /larger than the limit/);
});

test('after the corpus: the server still answers, nothing restarted, in-flight back to 0', async () => {
  const res = await post(`${srv.url}/v2/models/tiny/infer`, { inputs: [x()] });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body.outputs[0].data, [1.5, 1, 5, 4.25]);
  const listing = await get(`${srv.url}/debug/workers`);
  assert.equal(listing.status, 200);
  assert.equal(listing.body.workers.length, 2);
  for (const w of listing.body.workers) {
    assert.equal(w.restarts, 0, `worker ${w.worker} restarted`);
    assert.equal(w.state, 'ready');
    assert.equal(w.inFlight, 0);
  }
  assert.equal((await get(`${srv.url}/readyz`)).status, 200);
});
