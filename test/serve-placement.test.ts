// Placement, end to end through the CLI: the seed's multi-GPU spec and the round-robin spec are
// planned on a fake 2-GPU nvidia-smi (the only fake) and served by the test entry
// (test/fixtures/bento-run-fixture.ts) that opens every session on the CPU while keeping the
// planned device. The worker side's debug listing
// shows where each model sits, also after a worker was killed (and killed mid-load) and replaced.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import ort from 'onnxruntime-node';
import { cudaProviderStatus } from '../src/runtime/cuda.js';
import { type FakeNvidiaSmi, fakeNvidiaSmi } from './helpers/fake-nvidia-smi.js';
import {
  type CliServer,
  childEnv,
  FIXTURE_BIN,
  get,
  metric,
  post,
  ROOT,
  request,
  runCli,
  samples,
  scrape,
  startCli,
  until,
} from './helpers/server.js';

interface Listed {
  service: string;
  worker: number;
  state: string;
  threadId: number | null;
  restarts: number;
  thread: { service: string; worker: number; threadId: number } | null;
  sessions: { model: string; device: string; deviceId: number | null; providers: unknown[] }[];
  planned: { model: string; device: string; deviceId: number | null }[];
}

async function listing(url: string): Promise<Listed[]> {
  const res = await get(`${url}/debug/workers`);
  assert.equal(res.status, 200, res.text);
  return res.body.workers;
}

/** model -> "device deviceId providers" as the thread itself reported it. */
const where = (w: Listed) =>
  Object.fromEntries(
    w.sessions.map((s) => [s.model, `${s.device} ${s.deviceId} ${JSON.stringify(s.providers)}`]),
  );
const CPU = JSON.stringify([{ name: 'cpu' }]);

const input8 = (rows: number) => Float32Array.from({ length: rows * 8 }, (_, i) => (i % 7) - 3);

let fake: FakeNvidiaSmi;
before(() => {
  fake = fakeNvidiaSmi('2x-l4');
});
after(() => fake?.cleanup());

const forcedEnv = (extra: NodeJS.ProcessEnv = {}) => fake.env(childEnv(), extra);

describe('multi-gpu.yaml: one worker, model1 on cuda:0, model2 on cuda:1', () => {
  let srv: CliServer;
  before(async () => {
    srv = await startCli([join('specs', 'multi-gpu.yaml')], { env: forcedEnv(), bin: FIXTURE_BIN });
  });
  after(async () => {
    if (srv) assert.equal(await srv.stop(), 0, srv.log());
  });

  test('startup: the test entry is announced, one line per session with its device, then the address', () => {
    const log = srv.log();
    assert.match(log, /test fixture bento-run: every session opens on the CPU/);
    const lines = log.split('\n');
    const serving = lines.findIndex((l) =>
      /serving 2 model\(s\) on http:\/\/127\.0\.0\.1:\d+/.test(l),
    );
    const loaded = (model: string, device: string) =>
      lines.findIndex((l) =>
        new RegExp(
          `loaded +service=multi_gpu worker=0 model=${model} device=${device} in [\\d.]+ ms`,
        ).test(l),
      );
    assert.ok(loaded('model1', 'cuda:0') >= 0 && loaded('model1', 'cuda:0') < serving, log);
    assert.ok(loaded('model2', 'cuda:1') >= 0 && loaded('model2', 'cuda:1') < serving, log);
  });

  test('the thread holds model1 on deviceId 0 and model2 on deviceId 1, opened on the forced CPU', async () => {
    const [w, ...rest] = await listing(srv.url);
    assert.equal(rest.length, 0);
    assert.equal(w!.state, 'ready');
    assert.deepEqual(w!.thread, { service: 'multi_gpu', worker: 0, threadId: w!.threadId });
    assert.deepEqual(where(w!), { model1: `cuda:0 0 ${CPU}`, model2: `cuda:1 1 ${CPU}` });
    assert.deepEqual(w!.planned, [
      { model: 'model1', device: 'cuda:0', deviceId: 0 },
      { model: 'model2', device: 'cuda:1', deviceId: 1 },
    ]);
  });

  test('model1 and model2 each answer as their own model (direct session.run)', async () => {
    for (const model of ['model1', 'model2']) {
      const data = input8(2);
      const res = await post(`${srv.url}/v2/models/${model}/infer`, {
        inputs: [{ name: 'input', shape: [2, 8], datatype: 'FP32', data: Array.from(data) }],
      });
      assert.equal(res.status, 200, res.text);
      const session = await ort.InferenceSession.create(
        join(ROOT, 'specs', 'models', `${model}.onnx`),
      );
      const expected = (await session.run({ input: new ort.Tensor('float32', data, [2, 8]) }))
        .output!;
      await session.release();
      assert.deepEqual(res.body.outputs[0].shape, [2, 4]);
      assert.deepEqual(res.body.outputs[0].data, Array.from(expected.data as Float32Array), model);
    }
    const m = await scrape(srv.url);
    assert.equal(
      metric(m, 'bento_worker_ready', { service: 'multi_gpu', worker: '0', device: 'cuda:0' }),
      1,
    );
    assert.equal(
      metric(m, 'bento_inference_duration_seconds_count', { model: 'model1', device: 'cuda:0' }),
      1,
    );
    assert.equal(
      metric(m, 'bento_inference_duration_seconds_count', { model: 'model2', device: 'cuda:1' }),
      1,
    );
  });

  test('killed through the test hook: back in the same slot with the same devices, new thread', async () => {
    const unknown = await post(`${srv.url}/debug/workers/multi_gpu/7/crash`, {});
    assert.equal(unknown.status, 404, unknown.text);
    assert.match(unknown.body.error, /no worker multi_gpu\/7/);
    const [before] = await listing(srv.url);
    const res = await post(`${srv.url}/debug/workers/multi_gpu/0/crash`, {});
    assert.equal(res.status, 200, res.text);
    const back = await until('worker 0 to come back', async () => {
      const [w] = await listing(srv.url);
      return w!.state === 'ready' && w!.threadId !== before!.threadId ? w : undefined;
    });
    assert.equal(back!.restarts, 1);
    assert.deepEqual(back!.thread, { service: 'multi_gpu', worker: 0, threadId: back!.threadId });
    assert.deepEqual(where(back!), { model1: `cuda:0 0 ${CPU}`, model2: `cuda:1 1 ${CPU}` });
    assert.match(
      srv.log(),
      /worker thread died: service=multi_gpu worker=0; replacing it on the same device/,
    );
    assert.match(srv.log(), /worker back: service=multi_gpu worker=0, sessions reloaded/);
    for (const model of ['model1', 'model2']) {
      const again = await post(`${srv.url}/v2/models/${model}/infer`, {
        inputs: [{ name: 'input', shape: [1, 8], datatype: 'FP32', data: Array.from(input8(1)) }],
      });
      assert.equal(again.status, 200, again.text);
    }
  });
});

describe('workers.yaml: four workers round-robin on two GPUs', () => {
  const LOAD_DELAY_MS = 700;
  let srv: CliServer;
  before(async () => {
    srv = await startCli([join('specs', 'workers.yaml')], {
      env: forcedEnv({ FIXTURE_LOAD_DELAY_MS: String(LOAD_DELAY_MS) }),
      bin: FIXTURE_BIN,
    });
  });
  after(async () => {
    if (srv) assert.equal(await srv.stop(), 0, srv.log());
  });

  const classify = () =>
    post(`${srv.url}/v2/models/classifier/infer`, {
      inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [5.1, 3.5, 1.4, 0.2] }],
    });

  test('worker i sits on cuda:(i mod 2), each on its own thread', async () => {
    const workers = await listing(srv.url);
    assert.deepEqual(
      workers.map((w) => `${w.service}/${w.worker} ${where(w).classifier}`),
      [0, 1, 2, 3].map((i) => `classifier/${i} cuda:${i % 2} ${i % 2} ${CPU}`),
    );
    for (const w of workers) assert.equal(w.thread?.worker, w.worker);
    assert.equal(new Set(workers.map((w) => w.threadId)).size, 4);
  });

  test('requests go to every worker; metrics label each run with its worker device', async () => {
    for (let i = 0; i < 8; i++) assert.equal((await classify()).status, 200);
    const m = await scrape(srv.url);
    for (const device of ['cuda:0', 'cuda:1']) {
      assert.ok(
        metric(m, 'bento_inference_duration_seconds_count', { model: 'classifier', device }) > 0,
        `no run on ${device}`,
      );
    }
    for (const worker of [0, 1, 2, 3]) {
      const runs = samples(m, 'bento_worker_requests_total', {
        service: 'classifier',
        worker: String(worker),
      });
      assert.equal(runs.length, 1, `worker ${worker}: ${JSON.stringify(runs)}`);
      assert.equal(runs[0]!.labels.device, `cuda:${worker % 2}`);
      assert.ok(runs[0]!.value > 0);
    }
  });

  test('a killed worker: /readyz 503 during the reload, the others serve, back on cuda:1', async () => {
    const before = (await listing(srv.url))[1]!;
    assert.equal((await post(`${srv.url}/debug/workers/classifier/1/crash`, {})).status, 200);
    // The reload takes at least the load delay: the gap is visible.
    const gap = await get(`${srv.url}/readyz`);
    assert.equal(gap.status, 503);
    assert.equal(gap.body.ready, false);
    assert.deepEqual(
      gap.body.workers.map((w: { worker: number; state: string }) => `${w.worker}:${w.state}`),
      ['0:ready', '1:loading', '2:ready', '3:ready'],
    );
    for (let i = 0; i < 6; i++) {
      const res = await classify();
      assert.equal(res.status, 200, res.text);
    }
    const during = (await listing(srv.url))[1]!;
    assert.equal(during.state, 'loading', 'the requests above were served during the gap');
    const back = await until('worker 1 to come back', async () => {
      const w = (await listing(srv.url))[1]!;
      return w.state === 'ready' ? w : undefined;
    });
    assert.equal(back.restarts, 1);
    assert.notEqual(back.threadId, before.threadId);
    assert.deepEqual(back.thread, { service: 'classifier', worker: 1, threadId: back.threadId });
    assert.equal(where(back).classifier, `cuda:1 1 ${CPU}`);
    assert.equal((await get(`${srv.url}/readyz`)).status, 200);
    assert.equal(
      metric(await scrape(srv.url), 'bento_worker_restarts_total', {
        service: 'classifier',
        worker: '1',
        device: 'cuda:1',
      }),
      1,
    );
  });

  test('a worker killed mid-load comes back on its device', async () => {
    const first = (await listing(srv.url))[2]!;
    assert.equal((await post(`${srv.url}/debug/workers/classifier/2/crash`, {})).status, 200);
    // Its replacement is loading (its reload has begun, behind the load delay): kill it too.
    const loading = await until('worker 2 to start reloading', async () => {
      const w = (await listing(srv.url))[2]!;
      return w.restarts === 1 && w.state === 'loading' && w.threadId !== first.threadId
        ? w
        : undefined;
    });
    assert.equal((await post(`${srv.url}/debug/workers/classifier/2/crash`, {})).status, 200);
    const back = await until('worker 2 to come back', async () => {
      const w = (await listing(srv.url))[2]!;
      return w.state === 'ready' ? w : undefined;
    });
    assert.equal(back.restarts, 2, 'reloaded twice: the mid-load kill interrupted the first');
    assert.notEqual(back.threadId, loading.threadId);
    assert.equal(where(back).classifier, `cuda:0 0 ${CPU}`);
    assert.doesNotMatch(srv.log(), /could not reload/);
    assert.equal((await get(`${srv.url}/readyz`)).status, 200);
    assert.equal((await classify()).status, 200);
  });
});

describe('a GPU plan without the CUDA provider', {
  skip: cudaProviderStatus().installed && 'this onnxruntime-node has its CUDA provider',
}, () => {
  test('serve exits 1 before any worker starts, saying how to get the provider or use --cpu', async () => {
    const { code, output } = await runCli(
      [join('specs', 'multi-gpu.yaml'), '--port', '0', '--grpc-port', '0'],
      {
        env: fake.env(childEnv()),
      },
    );
    assert.equal(code, 1, output);
    assert.match(output, /model `model1` \(service `multi_gpu`\) on cuda:0/);
    assert.match(output, /no CUDA provider/);
    assert.match(output, /ONNXRUNTIME_NODE_INSTALL=cuda12/);
    assert.match(output, /--cpu/);
    assert.doesNotMatch(output, /loaded|serving/, 'a worker started');
    assert.doesNotMatch(output, /^\s+at /m, 'a stack trace');
  });

  test('with --cpu the same spec serves, every session on the CPU', async () => {
    const srv = await startCli([join('specs', 'multi-gpu.yaml'), '--cpu'], {
      env: fake.env(childEnv()),
    });
    try {
      const [w] = await listing(srv.url);
      assert.deepEqual(where(w!), { model1: `cpu null ${CPU}`, model2: `cpu null ${CPU}` });
      const res = await post(`${srv.url}/v2/models/model2/infer`, {
        inputs: [{ name: 'input', shape: [1, 8], datatype: 'FP32', data: Array.from(input8(1)) }],
      });
      assert.equal(res.status, 200, res.text);
      // The shipped bento-run has no crash route.
      const hook = await request('POST', `${srv.url}/debug/workers/multi_gpu/0/crash`, {});
      assert.equal(hook.status, 404);
      assert.equal((await listing(srv.url))[0]!.restarts, 0);
    } finally {
      assert.equal(await srv.stop(), 0, srv.log());
    }
  });
});
