// Batching through a real server (test/fixtures/specs/batching.yaml, real sessions): a burst of
// concurrent requests becomes fewer session.runs (counted from /debug/workers and from the
// bento_batch_size histogram), every response equals a direct session.run of that request alone,
// bit for bit, and a lone request waits as its policy says, measured on the server's side.
//
// Exactness: the classifier's Gemm/Relu/Softmax give the same float32 bits for a row whether it
// runs alone or inside a batch of up to 100 rows (checked on onnxruntime's CPU provider, one
// intra-op thread), two_inputs is elementwise and types is Identity; so everything here is
// compared bit for bit, with no tolerance.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import ort from 'onnxruntime-node';
import { mulberry32 } from '../scripts/onnx-builder.js';
import {
  get,
  type InProcessServer,
  type JsonResponse,
  openDirectSessions,
  post,
  type Sample,
  samples,
  scrape,
  startInProcess,
  TEST_SPECS,
  until,
} from './helpers/server.js';

let srv: InProcessServer;
let direct = new Map<string, ort.InferenceSession>();
/** Every batch the runtime dispatched, as its 'batch' events said. */
const batches: { model: string; rows: number; requests: number }[] = [];

before(async () => {
  srv = await startInProcess(join(TEST_SPECS, 'batching.yaml'));
  srv.runtime.events.on('batch', (model, rows, requests) =>
    batches.push({ model, rows, requests }),
  );
  // Open the keep-alive connections that the bursts below reuse: a burst on fresh connections
  // trickles in behind its TCP handshakes, and a cheap model is then rightly run request by request.
  await Promise.all(Array.from({ length: 48 }, () => get(`${srv.url}/v2/health/live`)));
  direct = await openDirectSessions([
    ['classifier', 'classifier.onnx'],
    ['two_inputs', 'two-inputs.onnx'],
  ]);
});

after(async () => {
  await srv?.close();
  for (const s of direct.values()) await s.release();
});

// ---- helpers ----------------------------------------------------------------------------------

type Fp32Inputs = Record<string, { shape: number[]; data: number[] }>;

function seeded(n: number, seed: number): number[] {
  const rng = mulberry32(seed);
  return Array.from({ length: n }, () => Math.fround(rng() * 4 - 2));
}

const infer = (model: string, body: unknown) => post(`${srv.url}/v2/models/${model}/infer`, body);

function fp32Body(inputs: Fp32Inputs, outputs?: readonly string[]) {
  return {
    inputs: Object.entries(inputs).map(([name, t]) => ({
      name,
      shape: t.shape,
      datatype: 'FP32',
      data: t.data,
    })),
    ...(outputs ? { outputs: outputs.map((name) => ({ name })) } : {}),
  };
}

/** A float32 array's bytes: equal bytes is equal bits (NaN payloads and -0 included). */
const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** What one direct session.run gives for this request alone. */
async function runDirect(model: string, inputs: Fp32Inputs, outputs?: readonly string[]) {
  const session = direct.get(model)!;
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(inputs)) {
    feeds[name] = new ort.Tensor('float32', Float32Array.from(t.data), t.shape);
  }
  const results = outputs ? await session.run(feeds, [...outputs]) : await session.run(feeds);
  return Object.fromEntries(
    Object.entries(results).map(([name, t]) => [
      name,
      { shape: [...t.dims], data: t.data as Float32Array },
    ]),
  );
}

/** Asserts that a served response equals the direct run of the same request, bit for bit. */
async function assertSameAsAlone(
  res: JsonResponse,
  model: string,
  inputs: Fp32Inputs,
  outputs: readonly string[] | undefined,
  what: string,
) {
  assert.equal(res.status, 200, `${what}: ${res.text}`);
  const expected = await runDirect(model, inputs, outputs);
  const got = Object.fromEntries(
    (res.body.outputs as { name: string; shape: number[]; data: number[] }[]).map((o) => [
      o.name,
      o,
    ]),
  );
  assert.deepEqual(Object.keys(got).sort(), Object.keys(expected).sort(), `${what}: output names`);
  for (const [name, e] of Object.entries(expected)) {
    assert.deepEqual(got[name]!.shape, e.shape, `${what}: ${name} shape`);
    assert.deepEqual(bits(Float32Array.from(got[name]!.data)), bits(e.data), `${what}: ${name}`);
  }
}

/** A sample's value, 0 when the series has no sample yet (a histogram before its first use). */
function value(all: readonly Sample[], name: string, labels: Record<string, string>): number {
  return samples(all, name, labels)[0]?.value ?? 0;
}

interface Counts {
  /** Tasks (session.run calls) completed per worker, by "service/worker". */
  readonly runs: Record<string, number>;
  /** bento_batch_size for the model: batches and rows. */
  readonly batches: number;
  readonly rows: number;
  /** bento_batch_size buckets for the model, by `le`. */
  readonly buckets: Record<string, number>;
  /** bento_queue_duration_seconds for the model. */
  readonly queued: number;
  readonly queueSeconds: number;
}

async function counts(model: string): Promise<Counts> {
  const [workers, metrics] = await Promise.all([get(`${srv.url}/debug/workers`), scrape(srv.url)]);
  assert.equal(workers.status, 200, workers.text);
  const runs: Record<string, number> = {};
  for (const w of workers.body.workers as { service: string; worker: number; completed: number }[])
    runs[`${w.service}/${w.worker}`] = w.completed;
  const buckets: Record<string, number> = {};
  for (const s of samples(metrics, 'bento_batch_size_bucket', { model }))
    buckets[s.labels.le!] = s.value;
  return {
    runs,
    batches: value(metrics, 'bento_batch_size_count', { model }),
    rows: value(metrics, 'bento_batch_size_sum', { model }),
    buckets,
    queued: value(metrics, 'bento_queue_duration_seconds_count', { model }),
    queueSeconds: value(metrics, 'bento_queue_duration_seconds_sum', { model }),
  };
}

/** What changed between two snapshots. */
function delta(before: Counts, after: Counts) {
  const runs: Record<string, number> = {};
  for (const k of Object.keys(after.runs)) runs[k] = after.runs[k]! - (before.runs[k] ?? 0);
  return {
    runs,
    batches: after.batches - before.batches,
    rows: after.rows - before.rows,
    queued: after.queued - before.queued,
    queueMs: (after.queueSeconds - before.queueSeconds) * 1000,
    bucket: (le: string) => (after.buckets[le] ?? 0) - (before.buckets[le] ?? 0),
  };
}

/**
 * Sends requests while `slow` (8 rows, about 440 ms here, not batched) holds service api's only
 * worker, and checks that they all reached the server before it finished: they queue together.
 */
async function behindSlow(send: () => Promise<JsonResponse>[]): Promise<JsonResponse[]> {
  let slowDone = false;
  const slow = infer('slow', fp32Body({ x: { shape: [8, 64], data: seeded(512, 7) } })).then(
    (r) => {
      slowDone = true;
      return r;
    },
  );
  await until('slow to be running', async () => {
    const w = (await get(`${srv.url}/debug/workers`)).body.workers.find(
      (x: { service: string }) => x.service === 'api',
    );
    return w.inFlight === 1 ? true : undefined;
  });
  const pending = send();
  await until('the burst to reach the server', async () => {
    const inFlight = value(await scrape(srv.url), 'bento_requests_in_flight', { service: 'api' });
    return inFlight >= pending.length + 1 ? true : undefined;
  });
  // Else the test would prove nothing about queueing.
  assert.equal(slowDone, false, 'slow finished before the burst had arrived');
  const responses = await Promise.all(pending);
  assert.equal((await slow).status, 200);
  return responses;
}

// ---- bursts -----------------------------------------------------------------------------------

describe('a burst of concurrent requests', () => {
  test('classifier: 40 requests of 1 to 4 rows run in fewer session.runs, each answer its own', async (t) => {
    const N = 40;
    const requests = Array.from({ length: N }, (_, i) => {
      const rows = 1 + (i % 4);
      return { input: { shape: [rows, 4], data: seeded(rows * 4, 1000 + i) } };
    });
    const totalRows = requests.reduce((n, r) => n + r.input.shape[0]!, 0);
    const before = await counts('classifier');
    const responses = await Promise.all(requests.map((r) => infer('classifier', fp32Body(r))));
    const d = delta(before, await counts('classifier'));

    for (const [i, res] of responses.entries())
      await assertSameAsAlone(res, 'classifier', requests[i]!, undefined, `request ${i}`);
    // Only this model ran on api/0 meanwhile: its tasks are this burst's session.runs.
    const runs = d.runs['api/0']!;
    t.diagnostic(`${N} requests, ${totalRows} rows: ${runs} session.run calls`);
    assert.ok(runs < N, `${N} requests took ${runs} session.run calls`);
    assert.equal(d.batches, runs, 'one bento_batch_size sample per session.run');
    assert.equal(d.rows, totalRows, 'the batches hold every row once');
    assert.equal(d.queued, N, 'one bento_queue_duration_seconds sample per request');
  });

  test('two_inputs: requests asking for different outputs get exactly theirs', async (t) => {
    const filters: (readonly string[] | undefined)[] = [
      ['sum'],
      ['product'],
      ['sum', 'product'],
      undefined,
      ['product', 'sum'],
    ];
    const N = 40;
    const requests = Array.from({ length: N }, (_, i) => {
      const rows = 1 + (i % 3);
      return {
        inputs: {
          a: { shape: [rows, 3], data: seeded(rows * 3, 2000 + i) },
          b: { shape: [rows, 3], data: seeded(rows * 3, 3000 + i) },
        },
        outputs: filters[i % filters.length],
      };
    });
    const before = await counts('two_inputs');
    const responses = await Promise.all(
      requests.map((r) => infer('two_inputs', fp32Body(r.inputs, r.outputs))),
    );
    const d = delta(before, await counts('two_inputs'));
    for (const [i, res] of responses.entries()) {
      const r = requests[i]!;
      await assertSameAsAlone(res, 'two_inputs', r.inputs, r.outputs, `request ${i}`);
      // And by arithmetic, so that a mix-up of sum and product could not hide in the reference.
      for (const o of res.body.outputs as { name: string; data: number[] }[]) {
        const a = r.inputs.a.data;
        const b = r.inputs.b.data;
        const want = a.map((x, j) => Math.fround(o.name === 'sum' ? x + b[j]! : x * b[j]!));
        assert.deepEqual(o.data, want, `request ${i}: ${o.name}`);
      }
    }
    t.diagnostic(`${N} requests: ${d.runs['api/0']} session.run calls`);
    assert.ok(d.runs['api/0']! < N, `${N} requests took ${d.runs['api/0']} session.run calls`);
    assert.equal(d.batches, d.runs['api/0']);
  });

  test('types: every datatype, BYTES included, survives merge and split', async (t) => {
    // Requests with n = 2 and n = 3 columns: within each width they may merge, across never.
    const N = 16;
    const requests = Array.from({ length: N }, (_, i) => {
      const rows = 1 + (i % 3);
      const n = 2 + (i % 2);
      return typesRequest(i, rows, n);
    });
    const before = await counts('types');
    const responses = await Promise.all(requests.map((r) => infer('types', { inputs: r })));
    const d = delta(before, await counts('types'));
    for (const [i, res] of responses.entries()) {
      assert.equal(res.status, 200, `request ${i}: ${res.text}`);
      const got = Object.fromEntries(
        (
          res.body.outputs as { name: string; datatype: string; shape: number[]; data: unknown[] }[]
        ).map((o) => [o.name, o]),
      );
      assert.equal(Object.keys(got).length, TYPES.length, `request ${i}: outputs`);
      for (const input of requests[i]!) {
        const name = input.name.replace('in_', 'out_');
        const out = got[name];
        assert.ok(out, `request ${i}: ${name} missing`);
        assert.equal(out.datatype, input.datatype, `request ${i}: ${name}`);
        assert.deepEqual(out.shape, input.shape, `request ${i}: ${name} shape`);
        assert.deepEqual(comparable(out.data), comparable(input.data), `request ${i}: ${name}`);
      }
    }
    const runs = d.runs['api/0']!;
    t.diagnostic(`${N} requests: ${runs} session.run calls`);
    assert.ok(runs >= 2, 'two widths never share a run');
    assert.ok(runs < N, `${N} requests took ${runs} session.run calls`);
    assert.equal(
      d.rows,
      requests.reduce((n, r) => n + r[0]!.shape[0]!, 0),
    );
  });

  test('while the worker is busy, a burst waits and then goes in a single session.run', async () => {
    const N = 20;
    const requests = Array.from({ length: N }, (_, i) => ({
      input: { shape: [1 + (i % 2), 4], data: seeded(4 * (1 + (i % 2)), 4000 + i) },
    }));
    const before = await counts('classifier');
    const responses = await behindSlow(() => requests.map((r) => infer('classifier', fp32Body(r))));
    const d = delta(before, await counts('classifier'));
    for (const [i, res] of responses.entries())
      await assertSameAsAlone(res, 'classifier', requests[i]!, undefined, `request ${i}`);
    assert.equal(d.batches, 1, `the queued burst ran as ${d.batches} batches`);
    assert.equal(d.runs['api/0'], 2, 'slow, then one batch');
    assert.equal(
      d.rows,
      requests.reduce((n, r) => n + r.input.shape[0]!, 0),
    );
  });

  test('a request larger than max_batch_size is refused with 400, as Triton does; others around it are served', async () => {
    const big = { input: { shape: [100, 4], data: seeded(400, 5000) } };
    batches.length = 0;
    const refused = await infer('classifier', fp32Body(big));
    assert.equal(refused.status, 400, refused.text);
    assert.equal(refused.body.code, 'BENTO_ERR_INFER_INVALID');
    assert.match(refused.body.error, /100 rows .* batching\.max_batch_size of 64/);
    assert.equal(batches.length, 0, 'no worker saw it');

    // 30 requests of 3 rows queue around it behind a busy worker: 90 rows in all.
    const small = Array.from({ length: 30 }, (_, i) => ({
      input: { shape: [3, 4], data: seeded(12, 5100 + i) },
    }));
    batches.length = 0;
    const responses = await behindSlow(() => {
      const queued = small.map((r) => infer('classifier', fp32Body(r)));
      // Refused at once, while the others wait: it never takes a slot.
      void infer('classifier', fp32Body(big)).then((r) => assert.equal(r.status, 400, r.text));
      return queued;
    });
    for (const [i, res] of responses.entries())
      await assertSameAsAlone(res, 'classifier', small[i]!, undefined, `request ${i}`);
    const ran = batches.filter((b) => b.model === 'classifier');
    assert.equal(
      ran.reduce((n, b) => n + b.rows, 0),
      90,
    );
    assert.equal(
      ran.reduce((n, b) => n + b.requests, 0),
      30,
    );
    for (const b of ran) assert.ok(b.rows <= 64, `a batch of ${JSON.stringify(b)}`);
    assert.ok(ran.length <= 4, `${ran.length} batches for 90 queued rows`);
  });

  test('a request whose inputs disagree on dimension 0 gets what it would get unbatched', async () => {
    // two_inputs broadcasts: a [1, 3] + b [2, 3] is a valid [2, 3] request on its own. Merged
    // with others along dimension 0 it would not be: a and b would stack to different heights.
    const odd = {
      a: { shape: [1, 3], data: seeded(3, 6000) },
      b: { shape: [2, 3], data: seeded(6, 6001) },
    };
    const alone = await infer('two_inputs', fp32Body(odd));
    await assertSameAsAlone(alone, 'two_inputs', odd, undefined, 'alone');
    const others = Array.from({ length: 8 }, (_, i) => ({
      a: { shape: [2, 3], data: seeded(6, 6100 + i) },
      b: { shape: [2, 3], data: seeded(6, 6200 + i) },
    }));
    const mixed = [...others.slice(0, 4), odd, ...others.slice(4)];
    // Behind a busy worker, so that they all queue together.
    batches.length = 0;
    const responses = await behindSlow(() => mixed.map((r) => infer('two_inputs', fp32Body(r))));
    for (const [i, res] of responses.entries())
      await assertSameAsAlone(res, 'two_inputs', mixed[i]!, undefined, `request ${i}`);
    // The eight others merged; the odd one ran on its own.
    assert.deepEqual(
      batches.filter((b) => b.model === 'two_inputs').sort((x, y) => x.requests - y.requests),
      [
        { model: 'two_inputs', rows: 1, requests: 1 },
        { model: 'two_inputs', rows: 16, requests: 8 },
      ],
    );
  });
});

// ---- lone requests ----------------------------------------------------------------------------

describe('a lone request', () => {
  const one = { input: { shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] } };

  test('policy fixed: waits its max_latency_ms (50), then runs at once', async (t) => {
    const before = await counts('lone_fixed');
    const started = performance.now();
    const res = await infer('lone_fixed', fp32Body(one));
    const roundTripMs = performance.now() - started;
    const d = delta(before, await counts('lone_fixed'));
    assert.equal(res.status, 200, res.text);
    assert.equal(d.batches, 1);
    assert.equal(d.queued, 1);
    // Server side: the time outside session.run, from the request's arrival at the runtime.
    t.diagnostic(`queued ${d.queueMs.toFixed(2)} ms, answered after ${roundTripMs.toFixed(2)} ms`);
    assert.ok(d.queueMs >= 50, `queued ${d.queueMs.toFixed(2)} ms, less than max_latency_ms`);
    // The classifier runs in well under a millisecond; 100 ms covers a loaded CI machine.
    assert.ok(d.queueMs <= 50 + 100, `queued ${d.queueMs.toFixed(2)} ms`);
    assert.ok(roundTripMs >= 50, `answered after ${roundTripMs.toFixed(2)} ms`);
  });

  test('policy adaptive: with nobody else coming, it is dispatched at once', async (t) => {
    // max_latency_ms is 200: a request that waited for it would stand out by far.
    for (let i = 0; i < 5; i++) {
      const before = await counts('lone_adaptive');
      const started = performance.now();
      const res = await infer('lone_adaptive', fp32Body(one));
      const roundTripMs = performance.now() - started;
      const d = delta(before, await counts('lone_adaptive'));
      assert.equal(res.status, 200, res.text);
      assert.equal(d.queued, 1);
      t.diagnostic(`request ${i}: queued ${d.queueMs.toFixed(2)} ms`);
      assert.ok(d.queueMs < 50, `request ${i} queued ${d.queueMs.toFixed(2)} ms`);
      assert.ok(roundTripMs < 150, `request ${i} answered after ${roundTripMs.toFixed(2)} ms`);
    }
  });
});

// ---- two workers ------------------------------------------------------------------------------

test('two workers: a burst is shared between both, in fewer runs than requests', async (t) => {
  const N = 40;
  const requests = Array.from({ length: N }, (_, i) => ({
    input: { shape: [1 + (i % 2), 4], data: seeded(4 * (1 + (i % 2)), 7000 + i) },
  }));
  const before = await counts('pair_classifier');
  const responses = await Promise.all(requests.map((r) => infer('pair_classifier', fp32Body(r))));
  const d = delta(before, await counts('pair_classifier'));
  for (const [i, res] of responses.entries()) {
    // The reference is the same classifier file.
    await assertSameAsAlone(res, 'classifier', requests[i]!, undefined, `request ${i}`);
  }
  const [w0, w1] = [d.runs['pair/0']!, d.runs['pair/1']!];
  t.diagnostic(`${N} requests: ${w0} + ${w1} session.run calls`);
  assert.ok(w0 > 0 && w1 > 0, `runs per worker: ${w0} and ${w1}`);
  assert.ok(w0 + w1 < N, `${N} requests took ${w0 + w1} session.run calls`);
  assert.equal(d.batches, w0 + w1);
});

// ---- every datatype ---------------------------------------------------------------------------

/** [datatype, input suffix, a value for element k of request i] */
const TYPES: [string, string, (k: number, i: number) => unknown][] = [
  ['FP32', 'fp32', (k, i) => Math.fround((k - 3.3) * (i + 1.7))],
  ['FP64', 'fp64', (k, i) => (k - 2) / (i + 3) + 1e-300 * i],
  ['FP16', 'fp16', (k, i) => ((k % 16) - 8) / 8 + i], // exact in half precision
  ['INT8', 'int8', (k, i) => ((k * 37 + i * 11) % 256) - 128],
  ['INT16', 'int16', (k, i) => ((k * 4099 + i * 257) % 65536) - 32768],
  ['INT32', 'int32', (k, i) => ((k * 65537 + i * 4097) % 2 ** 31) * (k % 2 ? -1 : 1)],
  ['INT64', 'int64', (k, i) => (BigInt(k + 1) * 2n ** 58n - BigInt(i) * 7n).toString()],
  ['UINT8', 'uint8', (k, i) => (k * 31 + i * 7) % 256],
  ['UINT16', 'uint16', (k, i) => (k * 4099 + i * 13) % 65536],
  ['UINT32', 'uint32', (k, i) => (k * 2654435761 + i) % 2 ** 32],
  ['UINT64', 'uint64', (k, i) => (2n ** 63n + BigInt(k) * 2n ** 40n + BigInt(i)).toString()],
  ['BOOL', 'bool', (k, i) => (k + i) % 3 === 0],
  ['BYTES', 'bytes', (k, i) => `r${i}·${k}${'é'.repeat(k % 3)}${k % 4 === 0 ? '' : '🚀'}`],
];

function typesRequest(i: number, rows: number, n: number) {
  return TYPES.map(([datatype, suffix, make]) => ({
    name: `in_${suffix}`,
    datatype,
    shape: [rows, n],
    data: Array.from({ length: rows * n }, (_, k) => make(k, i)),
  }));
}

/** 64-bit integers come back as numbers when they fit in a double, as strings otherwise. */
function comparable(data: unknown[]): unknown[] {
  return data
    .map((v) => (typeof v === 'number' && Number.isInteger(v) ? BigInt(v) : v))
    .map((v) => (typeof v === 'string' && /^-?\d+$/.test(v) ? BigInt(v) : v));
}
