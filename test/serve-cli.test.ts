// `bento-run serve` as users run it: the README's quickstart, stop signals that drain, flags
// (--service needing only its own model files), and the two ways a start fails (exit 1 for a
// model that does not load, exit 2 for a bad spec).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import ort from 'onnxruntime-node';
import { encodeModel, GraphBuilder } from '../scripts/onnx-builder.js';
import {
  get,
  metric,
  post,
  ROOT,
  runCli,
  scrape,
  startCli,
  TEST_MODELS,
  TEST_SPECS,
  until,
  within,
} from './helpers/server.js';

test('the quickstart serves the classifier and answers the README body; SIGINT exits 0', async () => {
  const srv = await startCli([join('specs', 'quickstart.yaml')]);
  try {
    const lines = srv.log().split('\n');
    const serving = lines.findIndex((l) =>
      /bento-run \S+ serving 1 model\(s\) on http:\/\/127\.0\.0\.1:\d+ and gRPC 127\.0\.0\.1:\d+$/.test(
        l,
      ),
    );
    assert.ok(serving > 0, srv.log());
    for (const worker of [0, 1]) {
      const loaded = lines.findIndex((l) =>
        new RegExp(
          `^loaded +service=api worker=${worker} model=classifier device=cpu in [\\d.]+ ms$`,
        ).test(l),
      );
      assert.ok(
        loaded >= 0 && loaded < serving,
        `worker ${worker}'s line before the address:\n${srv.log()}`,
      );
    }
    assert.equal((await get(`${srv.url}/readyz`)).status, 200);
    // The body from the quickstart comment, as curl sends it.
    const res = await post(
      `${srv.url}/v2/models/classifier/infer`,
      '{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}',
    );
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.model_name, 'classifier');
    const [out] = res.body.outputs;
    assert.equal(out.name, 'probabilities');
    assert.equal(out.datatype, 'FP32');
    assert.deepEqual(out.shape, [1, 3]);
    const session = await ort.InferenceSession.create(
      join(ROOT, 'specs', 'models', 'classifier.onnx'),
      {
        intraOpNumThreads: 1,
      },
    );
    const expected = await session.run({
      input: new ort.Tensor('float32', Float32Array.from([5.1, 3.5, 1.4, 0.2]), [1, 4]),
    });
    await session.release();
    assert.deepEqual(out.data, Array.from(expected.probabilities!.data as Float32Array));
    assert.ok(Math.abs(out.data.reduce((a: number, b: number) => a + b, 0) - 1) < 1e-5);
  } finally {
    assert.equal(await srv.stop('SIGINT'), 0, srv.log());
  }
  assert.match(
    srv.log(),
    /SIGINT: finishing in-flight requests \(at most 30s, server\.drain_timeout_s\), then stopping/,
  );
  assert.match(srv.log(), /stopped/);
});

test('SIGTERM drains: the request in flight gets its 200, new connections are refused, exit 0', async () => {
  const srv = await startCli([join(TEST_SPECS, 'slow.yaml')]);
  let settled = false;
  try {
    const rows = 8; // about 8 x 55 ms on one thread
    const held = post(`${srv.url}/v2/models/slow/infer`, {
      inputs: [
        { name: 'x', shape: [rows, 64], datatype: 'FP32', data: Array(rows * 64).fill(0.1) },
      ],
    }).finally(() => {
      settled = true;
    });
    held.catch(() => undefined); // awaited below; a failure before then must not go unhandled
    await until('the slow request to be in flight', async () =>
      metric(await scrape(srv.url), 'bento_requests_in_flight', { service: 'slow' }) === 1
        ? true
        : undefined,
    );
    srv.child.kill('SIGTERM');
    await srv.waitForLog(
      /SIGTERM: finishing in-flight requests \(at most 30s, server\.drain_timeout_s\), then stopping/,
      10_000,
    );
    assert.equal(settled, false, 'the request finished before the signal: nothing was drained');
    // The line is printed just before the listener closes: retry until the port refuses.
    await until(
      'new connections to be refused',
      () =>
        new Promise<true | undefined>((resolve) => {
          const socket = connect(srv.port, '127.0.0.1');
          socket.once('connect', () => {
            socket.destroy();
            resolve(undefined);
          });
          socket.once('error', (e: NodeJS.ErrnoException) =>
            resolve(e.code === 'ECONNREFUSED' ? true : undefined),
          );
        }),
      5_000,
    );
    assert.equal(
      settled,
      false,
      'the request was answered before the port closed: nothing was drained',
    );
    const res = await held;
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body.outputs[0].shape, [rows, 64]);
    // No second signal: the first one alone must bring the process down.
    const code = await within(srv.exited, 10_000, 'the process to exit after the drain');
    assert.equal(code, 0, srv.log());
    assert.match(srv.log(), /stopped/);
  } finally {
    await srv.stop('SIGKILL');
  }
});

test('--service serves only that service; --log-format json logs one JSON object a line', async () => {
  const srv = await startCli([
    join(TEST_SPECS, 'traffic.yaml'),
    '--service',
    'fast',
    '--log-format',
    'json',
    '--host',
    '127.0.0.1',
  ]);
  try {
    const events = srv
      .log()
      .split('\n')
      .filter((l) => l !== '')
      .map(
        (l) => JSON.parse(l) as { event?: string; model?: string; port?: number; level: string },
      );
    assert.deepEqual(
      events.filter((e) => e.event === 'session-loaded').map((e) => e.model),
      ['tiny'],
    );
    const listening = events.find((e) => e.event === 'listening');
    assert.equal(listening?.port, srv.port);
    assert.equal((await get(`${srv.url}/v2/models/tiny`)).status, 200);
    assert.equal((await get(`${srv.url}/v2/models/slow`)).status, 404);
    const res = await post(`${srv.url}/v2/models/tiny/infer`, {
      inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [0, 0, 0, 0] }],
    });
    assert.equal(res.status, 200, res.text);
  } finally {
    assert.equal(await srv.stop(), 0, srv.log());
  }
});

test("--service needs only that service's model files (KServe gives each pod its own); without it every model's", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bento-service-files-'));
  try {
    const spec = join(dir, 'spec.yaml');
    writeFileSync(
      spec,
      [
        'version: 1',
        'models:',
        `  tiny: { path: ${JSON.stringify(join(TEST_MODELS, 'tiny.onnx'))} }`,
        '  other: { path: other/model.onnx }',
        'services:',
        '  first: { models: [tiny] }',
        '  second: { models: [other] }',
        'pipelines:',
        '  chain:',
        '    inputs: { x: { datatype: FP32, shape: [-1, 4] } }',
        '    steps:',
        '      only: { model: tiny, inputs: { x: { input: x } } }',
        '    outputs: { y: { step: only, output: y } }',
        '',
      ].join('\n'),
    );
    const missing =
      /spec\.yaml:4:\d+: error: models\.other\.path: model `other`: other\/model\.onnx does not exist/;
    for (const args of [[], ['--service', 'second']]) {
      const { code, output } = await runCli([spec, '--port', '0', '--grpc-port', '0', ...args]);
      assert.equal(code, 2, output);
      assert.match(output, missing);
      assert.doesNotMatch(output, /loaded|serving/);
    }
    const srv = await startCli([spec, '--service', 'first']);
    try {
      assert.doesNotMatch(srv.log(), /other/);
      const x = { name: 'x', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] };
      for (const model of ['tiny', 'chain']) {
        const res = await post(`${srv.url}/v2/models/${model}/infer`, { inputs: [x] });
        assert.equal(res.status, 200, `${model}: ${res.text}`);
      }
      assert.equal((await get(`${srv.url}/v2/models/other`)).status, 404);
    } finally {
      assert.equal(await srv.stop(), 0, srv.log());
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a model that onnxruntime rejects: exit 1 with the model and the cause, no stack trace', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bento-load-failure-'));
  try {
    // A well-formed ModelProto (so the spec validates) with an operator no runtime has.
    const g = new GraphBuilder('broken');
    const x = g.input('x', 'float32', ['batch', 4]);
    g.output('y', 'float32', ['batch', 4]);
    g.op('NoSuchOperator', [x], {}, 'y');
    writeFileSync(join(dir, 'broken.onnx'), encodeModel(g.build()));
    writeFileSync(
      join(dir, 'spec.yaml'),
      [
        'version: 1',
        'models:',
        `  tiny: { path: ${JSON.stringify(join(TEST_MODELS, 'tiny.onnx'))} }`,
        '  broken: { path: broken.onnx }',
        'services:',
        '  good: { models: [tiny] }',
        '  bad: { models: [broken] }',
        '',
      ].join('\n'),
    );
    assert.equal(
      (await runCli(['validate', join(dir, 'spec.yaml')])).code,
      0,
      'the spec itself is valid',
    );
    const { code, output } = await runCli([
      join(dir, 'spec.yaml'),
      '--port',
      '0',
      '--grpc-port',
      '0',
    ]);
    assert.equal(code, 1, output);
    assert.match(
      output,
      /service `bad`, worker 0, model `broken` on cpu: failed to load: .*NoSuchOperator/,
    );
    assert.doesNotMatch(output, /serving/);
    assert.doesNotMatch(output, /^\s+at /m, 'a stack trace');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an invalid spec: exit 2 with the problem at its position, before anything starts', async () => {
  const { code, output } = await runCli([
    join(TEST_SPECS, 'invalid.yaml'),
    '--port',
    '0',
    '--grpc-port',
    '0',
  ]);
  assert.equal(code, 2, output);
  assert.match(output, /invalid\.yaml:7:\d+: error: services\.api\.models\[1\]: .*`missing_model`/);
  assert.doesNotMatch(output, /loaded|serving/);
  assert.doesNotMatch(output, /^\s+at /m);
});
