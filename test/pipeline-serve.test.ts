// Pipelines served as models through a real server (in this process, on loopback): outputs
// equal the models composed with onnxruntime directly, bit for bit, over JSON and binary
// tensors and under concurrency; metadata, readiness, Triton's ensemble config, statistics and
// metrics; bad inputs are 400; a step on a dying worker fails the request naming the step.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import ort from 'onnxruntime-node';
import { mulberry32 } from '../scripts/onnx-builder.js';
import { crashWorker } from './fixtures/worker-switches.js';
import { connect, startGrpc } from './helpers/grpc.js';
import {
  get,
  type InProcessServer,
  metric,
  openDirectSessions,
  post,
  scrape,
  startInProcess,
  TEST_MODELS,
  TEST_SPECS,
  until,
} from './helpers/server.js';

function seeded(n: number, seed: number): number[] {
  const rng = mulberry32(seed);
  return Array.from({ length: n }, () => Math.fround(rng() * 4 - 2));
}

/** Runs `model` directly on float32 feeds; outputs as Float32Arrays. */
async function direct(
  sessions: Map<string, ort.InferenceSession>,
  model: string,
  feeds: Record<string, ort.Tensor>,
): Promise<Record<string, ort.Tensor>> {
  return sessions.get(model)!.run(feeds);
}

describe('pipelines served as models (test/fixtures/specs/pipeline.yaml)', () => {
  let srv: InProcessServer;
  let sessions = new Map<string, ort.InferenceSession>();

  before(async () => {
    srv = await startInProcess(join(TEST_SPECS, 'pipeline.yaml'));
    sessions = await openDirectSessions([
      ['model1', 'model1.onnx'],
      ['model2', 'model2.onnx'],
      ['average', 'average.onnx'],
      ['classifier', 'classifier.onnx'],
    ]);
  });

  after(async () => {
    await srv?.close();
    for (const s of sessions.values()) await s.release();
  });

  /** The ensemble composed directly: left = model1(x), mean = average(model1(x), model2(x)). */
  async function expectedEnsemble(x: number[], rows: number) {
    const feed = () => new ort.Tensor('float32', Float32Array.from(x), [rows, 8]);
    const left = (await direct(sessions, 'model1', { input: feed() })).output!;
    const right = (await direct(sessions, 'model2', { input: feed() })).output!;
    const mean = (await direct(sessions, 'average', { a: left, b: right })).mean!;
    return { left: [...(left.data as Float32Array)], mean: [...(mean.data as Float32Array)] };
  }

  async function expectedTwoStage(x: number[], rows: number) {
    const first = (
      await direct(sessions, 'model1', {
        input: new ort.Tensor('float32', Float32Array.from(x), [rows, 8]),
      })
    ).output!;
    const second = (await direct(sessions, 'classifier', { input: first })).probabilities!;
    return [...(second.data as Float32Array)];
  }

  const inferJson = (model: string, x: number[], rows: number, outputs?: string[]) =>
    post(`${srv.url}/v2/models/${model}/infer`, {
      id: `r-${rows}`,
      inputs: [{ name: 'features', shape: [rows, 8], datatype: 'FP32', data: x }],
      ...(outputs ? { outputs: outputs.map((name) => ({ name })) } : {}),
    });

  const byName = (outputs: { name: string }[]) =>
    // biome-ignore lint/suspicious/noExplicitAny: JSON answers
    Object.fromEntries(outputs.map((o: any) => [o.name, o]));

  test('metadata: platform ensemble, the pipeline’s inputs and outputs', async () => {
    const res = await get(`${srv.url}/v2/models/ensemble`);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body, {
      name: 'ensemble',
      versions: ['1'],
      platform: 'ensemble',
      inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 8] }],
      outputs: [
        { name: 'mean', datatype: 'FP32', shape: [-1, 4] },
        { name: 'left', datatype: 'FP32', shape: [-1, 4] },
      ],
    });
    const two = await get(`${srv.url}/v2/models/two_stage`);
    assert.equal(two.body.platform, 'ensemble');
    assert.deepEqual(two.body.outputs, [
      { name: 'probabilities', datatype: 'FP32', shape: [-1, 3] },
    ]);
    // Models keep theirs.
    assert.equal((await get(`${srv.url}/v2/models/model1`)).body.platform, 'onnxruntime_onnx');
  });

  test('ready once every step’s model is; listed in the repository index', async () => {
    const res = await get(`${srv.url}/v2/models/ensemble/ready`);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body, { name: 'ensemble', ready: true });
    const index = await post(`${srv.url}/v2/repository/index`, {});
    assert.ok(
      index.body.some(
        (m: { name: string; state: string }) => m.name === 'two_stage' && m.state === 'READY',
      ),
      index.text,
    );
    const unknown = await get(`${srv.url}/v2/models/nope`);
    assert.equal(unknown.status, 404);
    assert.match(unknown.body.error, /ensemble, two_stage/);
  });

  test('config: Triton’s ensemble, one scheduling step per pipeline step', async () => {
    const res = await get(`${srv.url}/v2/models/ensemble/config`);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.platform, 'ensemble');
    assert.equal(res.body.max_batch_size, 0);
    assert.deepEqual(res.body.input, [{ name: 'features', data_type: 'TYPE_FP32', dims: [-1, 8] }]);
    assert.deepEqual(
      res.body.output.map((o: { name: string }) => o.name),
      ['mean', 'left'],
    );
    assert.deepEqual(res.body.ensemble_scheduling.step, [
      {
        model_name: 'model1',
        model_version: -1,
        input_map: { input: 'features' },
        output_map: { output: 'left' },
      },
      {
        model_name: 'model2',
        model_version: -1,
        input_map: { input: 'features' },
        output_map: { output: 'right.output' },
      },
      {
        model_name: 'average',
        model_version: -1,
        input_map: { a: 'left', b: 'right.output' },
        output_map: { mean: 'mean' },
      },
    ]);
  });

  test('JSON: the outputs equal the models composed directly, bit for bit', async () => {
    const x = seeded(3 * 8, 1);
    const res = await inferJson('ensemble', x, 3);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.model_name, 'ensemble');
    assert.equal(res.body.model_version, '1');
    assert.equal(res.body.id, 'r-3');
    const out = byName(res.body.outputs);
    assert.deepEqual(Object.keys(out), ['mean', 'left']);
    const want = await expectedEnsemble(x, 3);
    assert.deepEqual(out.mean.shape, [3, 4]);
    assert.deepEqual(out.mean.data.map(Math.fround), want.mean);
    assert.deepEqual(out.left.data.map(Math.fround), want.left);

    const two = await inferJson('two_stage', x, 3);
    assert.equal(two.status, 200, two.text);
    assert.deepEqual(two.body.outputs[0].shape, [3, 3]);
    assert.deepEqual(two.body.outputs[0].data.map(Math.fround), await expectedTwoStage(x, 3));
  });

  test('an outputs list picks pipeline outputs; steps nothing asked for do not run', async () => {
    const x = seeded(2 * 8, 2);
    const before = await scrape(srv.url);
    const joinRuns = () =>
      metric(before, 'bento_pipeline_step_duration_seconds_count', {
        pipeline: 'ensemble',
        step: 'join',
      });
    const joinBefore = joinRuns();
    const res = await inferJson('ensemble', x, 2, ['left']);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(
      res.body.outputs.map((o: { name: string }) => o.name),
      ['left'],
    );
    assert.deepEqual(
      res.body.outputs[0].data.map(Math.fround),
      (await expectedEnsemble(x, 2)).left,
    );
    const after = await scrape(srv.url);
    assert.equal(
      metric(after, 'bento_pipeline_step_duration_seconds_count', {
        pipeline: 'ensemble',
        step: 'join',
      }),
      joinBefore,
    );
  });

  test('20 requests at once, each with its own input, each answered right', async () => {
    const inputs = Array.from({ length: 20 }, (_, i) => ({ rows: 1 + (i % 4), seed: 100 + i }));
    const answers = await Promise.all(
      inputs.map(({ rows, seed }) =>
        inferJson(i2(seed) ? 'ensemble' : 'two_stage', seeded(rows * 8, seed), rows),
      ),
    );
    for (const [i, { rows, seed }] of inputs.entries()) {
      const res = answers[i]!;
      assert.equal(res.status, 200, res.text);
      const x = seeded(rows * 8, seed);
      if (i2(seed)) {
        const want = await expectedEnsemble(x, rows);
        const out = byName(res.body.outputs);
        assert.deepEqual(out.mean.data.map(Math.fround), want.mean, `request ${i}`);
        assert.deepEqual(out.left.data.map(Math.fround), want.left, `request ${i}`);
      } else {
        assert.deepEqual(
          res.body.outputs[0].data.map(Math.fround),
          await expectedTwoStage(x, rows),
          `request ${i}`,
        );
      }
    }
  });
  const i2 = (seed: number) => seed % 2 === 0;

  test('binary tensors in and out', async () => {
    const x = seeded(4 * 8, 3);
    const bytes = Buffer.from(Float32Array.from(x).buffer);
    const header = Buffer.from(
      JSON.stringify({
        inputs: [
          {
            name: 'features',
            shape: [4, 8],
            datatype: 'FP32',
            parameters: { binary_data_size: bytes.length },
          },
        ],
        outputs: [{ name: 'mean', parameters: { binary_data: true } }, { name: 'left' }],
      }),
    );
    const res = await fetch(`${srv.url}/v2/models/ensemble/infer`, {
      method: 'POST',
      headers: {
        'content-type': 'application/octet-stream',
        'inference-header-content-length': String(header.length),
      },
      body: Buffer.concat([header, bytes]),
      signal: AbortSignal.timeout(30_000),
    });
    const body = Buffer.from(await res.arrayBuffer());
    assert.equal(res.status, 200, body.toString());
    const n = Number(res.headers.get('inference-header-content-length'));
    const json = JSON.parse(body.subarray(0, n).toString());
    const want = await expectedEnsemble(x, 4);
    assert.equal(json.outputs[0].name, 'mean');
    assert.equal(json.outputs[0].parameters.binary_data_size, 4 * 4 * 4);
    const mean = body.subarray(n);
    assert.equal(mean.length, 64);
    assert.deepEqual(
      [...new Float32Array(mean.buffer.slice(mean.byteOffset, mean.byteOffset + 64))],
      want.mean,
    );
    assert.deepEqual(json.outputs[1].data.map(Math.fround), want.left);
  });

  test('bad inputs are 400 before any step runs', async () => {
    const wrongShape = await post(`${srv.url}/v2/models/ensemble/infer`, {
      inputs: [{ name: 'features', shape: [1, 7], datatype: 'FP32', data: Array(7).fill(0) }],
    });
    assert.equal(wrongShape.status, 400, wrongShape.text);
    assert.equal(wrongShape.body.code, 'BENTO_ERR_INFER_INVALID');
    assert.match(wrongShape.body.error, /dimension 1 is 7, the model expects 8/);
    const wrongType = await post(`${srv.url}/v2/models/ensemble/infer`, {
      inputs: [{ name: 'features', shape: [1, 8], datatype: 'INT64', data: Array(8).fill(0) }],
    });
    assert.equal(wrongType.status, 400, wrongType.text);
    assert.match(wrongType.body.error, /does not match the model's FP32/);
    const unknown = await post(`${srv.url}/v2/models/ensemble/infer`, {
      inputs: [{ name: 'input', shape: [1, 8], datatype: 'FP32', data: Array(8).fill(0) }],
    });
    assert.equal(unknown.status, 400, unknown.text);
    assert.match(unknown.body.error, /unknown input `input` for model `ensemble`.*features/);
    const output = await post(`${srv.url}/v2/models/ensemble/infer`, {
      inputs: [{ name: 'features', shape: [1, 8], datatype: 'FP32', data: Array(8).fill(0) }],
      outputs: [{ name: 'output' }],
    });
    assert.equal(output.status, 400, output.text);
    assert.match(output.body.error, /unknown output `output` for model `ensemble`/);
  });

  test('gRPC: metadata and ModelInfer go through the same core', async () => {
    const grpc = await startGrpc(srv);
    const client = connect(grpc.address);
    try {
      const meta = await client.call('ModelMetadata', { name: 'ensemble' });
      assert.equal(meta.platform, 'ensemble');
      assert.deepEqual(
        meta.inputs.map((i: { name: string }) => i.name),
        ['features'],
      );
      const x = seeded(2 * 8, 11);
      const res = await client.call('ModelInfer', {
        model_name: 'ensemble',
        inputs: [{ name: 'features', datatype: 'FP32', shape: ['2', '8'] }],
        outputs: [{ name: 'mean' }],
        raw_input_contents: [Buffer.from(Float32Array.from(x).buffer)],
      });
      assert.equal(res.model_name, 'ensemble');
      assert.deepEqual(
        res.outputs.map((o: { name: string }) => o.name),
        ['mean'],
      );
      const raw: Buffer = res.raw_output_contents[0];
      const mean = [...new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + 32))];
      assert.deepEqual(mean, (await expectedEnsemble(x, 2)).mean);
    } finally {
      client.close();
      await grpc.drain(1);
    }
  });

  test('statistics and metrics per pipeline, and per step', async () => {
    await inferJson('two_stage', seeded(8, 9), 1);
    const stats = await get(`${srv.url}/v2/models/two_stage/stats`);
    assert.equal(stats.status, 200, stats.text);
    const s = stats.body.model_stats[0];
    assert.equal(s.name, 'two_stage');
    assert.ok(s.inference_stats.success.count >= 1, stats.text);
    const all = await scrape(srv.url);
    assert.ok(metric(all, 'bento_requests_total', { model: 'two_stage', status: '200' }) >= 1);
    assert.ok(metric(all, 'bento_request_duration_seconds_count', { model: 'two_stage' }) >= 1);
    assert.ok(
      metric(all, 'bento_pipeline_step_duration_seconds_count', {
        pipeline: 'two_stage',
        step: 'second',
      }) >= 1,
    );
    // Steps count as runs of their models (Triton counts an ensemble's composing models too).
    assert.ok(
      metric(all, 'bento_inference_duration_seconds_count', {
        model: 'classifier',
        device: 'cpu',
      }) >= 1,
    );
    const bad = await post(`${srv.url}/v2/models/two_stage/infer`, { inputs: [] });
    assert.equal(bad.status, 400);
    const after = await scrape(srv.url);
    assert.ok(metric(after, 'bento_requests_total', { model: 'two_stage', status: '400' }) >= 1);
  });
});

describe('a pipeline step on a worker that dies', () => {
  let srv: InProcessServer;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bento-pipeline-'));
    const spec = join(dir, 'slow-pipeline.yaml');
    writeFileSync(
      spec,
      [
        'version: 1',
        'name: slow-pipeline',
        'models:',
        `  slow: { path: ${JSON.stringify(join(TEST_MODELS, 'slow.onnx'))}, session: { intra_op_threads: 1 } }`,
        `  tiny: { path: ${JSON.stringify(join(TEST_MODELS, 'tiny.onnx'))} }`,
        'services:',
        '  slow: { models: [slow] }',
        '  fast: { models: [tiny] }',
        'pipelines:',
        '  slow_twice:',
        '    inputs: { x: { datatype: FP32, shape: [batch, 64] } }',
        '    steps:',
        '      first: { model: slow, inputs: { x: { input: x } } }',
        '      second: { model: slow, inputs: { x: { step: first, output: y } } }',
        '    outputs: { y: { step: second, output: y } }',
        '',
      ].join('\n'),
    );
    srv = await startInProcess(spec, { fixtureWorker: true });
  });

  after(async () => {
    await srv?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const slow = () => srv.runtime.workers().find((w) => w.service === 'slow')!;
  const request = (rows: number) =>
    post(`${srv.url}/v2/models/slow_twice/infer`, {
      inputs: [{ name: 'x', shape: [rows, 64], datatype: 'FP32', data: seeded(rows * 64, 5) }],
    });

  test('fails with a 5xx naming the step and its model; the pipeline serves again after', async () => {
    const ok = await request(1);
    assert.equal(ok.status, 200, ok.text);
    const running = request(6);
    // Whichever step holds the worker when it dies (each runs about 300 ms) is named.
    await until('a step to run', () => (slow().inFlight === 1 ? true : undefined));
    await crashWorker(srv.runtime, 'slow', 0);
    const failed = await running;
    assert.equal(failed.status, 500, failed.text);
    assert.equal(failed.body.code, 'BENTO_ERR_RUNTIME_WORKER_DIED');
    assert.match(
      failed.body.error,
      /^pipeline `slow_twice`, step `(first|second)` \(model `slow`\): service `slow`, worker 0: the worker thread died/,
    );
    await until('the worker to come back', () => (slow().state === 'ready' ? true : undefined));
    const again = await request(1);
    assert.equal(again.status, 200, again.text);
    const all = await scrape(srv.url);
    assert.equal(metric(all, 'bento_requests_total', { model: 'slow_twice', status: '500' }), 1);
  });
});
