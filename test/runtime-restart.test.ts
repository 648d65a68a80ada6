// A worker thread that dies is replaced on the same slot and device and reloads its sessions,
// also when it is killed mid-load; the requests it held fail with a 5xx, the rest keep flowing.
// In-process, so the runtime's own events say when a worker is back (no polling for those).
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { PlannedWorker } from '../src/plan/types.js';
import type { RuntimeEvents, WorkerStatus } from '../src/runtime/pool.js';
import { crashWorker } from './fixtures/worker-switches.js';
import {
  get,
  type InProcessServer,
  post,
  ROOT,
  startInProcess,
  TEST_SPECS,
  until,
} from './helpers/server.js';

/** The next 'worker-ready' event of a restarted worker. */
async function nextRestart(events: EventEmitter<RuntimeEvents>): Promise<PlannedWorker> {
  for (;;) {
    const [w, , restart] = (await once(events, 'worker-ready', {
      signal: AbortSignal.timeout(20_000),
    })) as RuntimeEvents['worker-ready'];
    if (restart) return w;
  }
}

/** Records every runtime event in order, as "kind service/worker". */
function record(events: EventEmitter<RuntimeEvents>): string[] {
  const seen: string[] = [];
  events.on('worker-exit', (w) => seen.push(`exit ${w.service}/${w.worker}`));
  events.on('worker-ready', (w, _r, restart) => {
    if (restart) seen.push(`ready ${w.service}/${w.worker}`);
  });
  events.on('worker-failed', (w, e) => seen.push(`failed ${w.service}/${w.worker}: ${e.message}`));
  return seen;
}

const placement = (w: WorkerStatus) =>
  w.sessions.map((s) => ({
    model: s.model,
    device: s.device,
    deviceId: s.deviceId,
    providers: s.providers,
  }));

describe('multi-gpu spec on a fake 2-GPU plan, sessions forced onto the CPU', () => {
  const events = new EventEmitter<RuntimeEvents>();
  const seen = record(events);
  let srv: InProcessServer;
  before(async () => {
    srv = await startInProcess(join(ROOT, 'specs', 'multi-gpu.yaml'), {
      gpus: '2x-l4',
      forceCpuSessions: true,
      loadDelayMs: 300,
      events,
    });
  });
  after(() => srv?.close());

  const expected = [
    { model: 'model1', device: 'cuda:0', deviceId: 0, providers: [{ name: 'cpu' }] },
    { model: 'model2', device: 'cuda:1', deviceId: 1, providers: [{ name: 'cpu' }] },
  ];

  test('the plan puts model1 on cuda:0 and model2 on cuda:1 of one worker', () => {
    assert.deepEqual(
      srv.plan.placements.map((p) => `${p.service}/${p.worker} ${p.model} ${p.device}`),
      ['multi_gpu/0 model1 cuda:0', 'multi_gpu/0 model2 cuda:1'],
    );
    const [w] = srv.runtime.workers();
    assert.deepEqual(placement(w!), expected);
    assert.deepEqual(w!.thread, { service: 'multi_gpu', worker: 0, threadId: w!.threadId });
  });

  test('killed: back on the same slot and devices with a new thread; readiness shows the gap', async () => {
    const before = srv.runtime.workers()[0]!;
    const back = nextRestart(events);
    await crashWorker(srv.runtime, 'multi_gpu', 0);
    // The gap: the worker reloads (300 ms load delay), so neither the server nor its models are ready.
    assert.equal(srv.runtime.ready(), false);
    assert.equal(srv.runtime.modelReady('model1'), false);
    assert.equal((await get(`${srv.url}/readyz`)).status, 503);
    assert.equal((await get(`${srv.url}/v2/models/model2/ready`)).status, 503);
    const during = await post(`${srv.url}/v2/models/model1/infer`, {
      inputs: [{ name: 'input', shape: [1, 8], datatype: 'FP32', data: Array(8).fill(1) }],
    });
    assert.equal(during.status, 503, during.text);
    assert.equal(during.headers.get('retry-after'), '1');
    assert.match(during.body.error, /no worker holding model `model1` is ready/);

    const w = await back;
    assert.deepEqual([w.service, w.worker], ['multi_gpu', 0]);
    const after = srv.runtime.workers()[0]!;
    assert.equal(after.state, 'ready');
    assert.equal(after.restarts, 1);
    assert.notEqual(after.threadId, before.threadId, 'a new thread');
    assert.deepEqual(after.thread, { service: 'multi_gpu', worker: 0, threadId: after.threadId });
    assert.deepEqual(placement(after), expected);
    assert.equal(srv.runtime.ready(), true);
    assert.equal((await get(`${srv.url}/readyz`)).status, 200);
    for (const model of ['model1', 'model2']) {
      const res = await post(`${srv.url}/v2/models/${model}/infer`, {
        inputs: [{ name: 'input', shape: [1, 8], datatype: 'FP32', data: Array(8).fill(1) }],
      });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body.outputs[0].shape, [1, 4]);
    }
    assert.deepEqual(seen, ['exit multi_gpu/0', 'ready multi_gpu/0']);
  });

  test('killed mid-load: the replacement of the replacement loads and serves', async () => {
    seen.length = 0;
    const first = srv.runtime.workers()[0]!;
    await crashWorker(srv.runtime, 'multi_gpu', 0);
    // Its replacement has started reloading (restarts counts reloads) but not finished: kill it.
    const loading = await until('the replacement to start loading', () => {
      const w = srv.runtime.workers()[0]!;
      return w.restarts === first.restarts + 1 && w.state === 'loading' && w.threadId !== null
        ? w
        : undefined;
    });
    const back = nextRestart(events);
    await crashWorker(srv.runtime, 'multi_gpu', 0);
    await back;
    const w = srv.runtime.workers()[0]!;
    assert.equal(w.state, 'ready');
    assert.equal(w.restarts, first.restarts + 2);
    assert.notEqual(w.threadId, loading.threadId);
    assert.notEqual(w.threadId, first.threadId);
    assert.deepEqual(placement(w), expected);
    // Two deaths, one return: the mid-load death was not reported as a failed reload.
    assert.deepEqual(seen, ['exit multi_gpu/0', 'exit multi_gpu/0', 'ready multi_gpu/0']);
    const res = await post(`${srv.url}/v2/models/model2/infer`, {
      inputs: [{ name: 'input', shape: [2, 8], datatype: 'FP32', data: Array(16).fill(0.5) }],
    });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body.outputs[0].shape, [2, 4]);
  });
});

describe('a worker killed while it holds requests', () => {
  let srv: InProcessServer;
  before(async () => {
    srv = await startInProcess(join(TEST_SPECS, 'slow.yaml'), { fixtureWorker: true });
  });
  after(() => srv?.close());

  const slow = () => srv.runtime.workers().find((w) => w.service === 'slow')!;
  const slowRequest = (rows: number) =>
    post(`${srv.url}/v2/models/slow/infer`, {
      inputs: [
        { name: 'x', shape: [rows, 64], datatype: 'FP32', data: Array(rows * 64).fill(0.25) },
      ],
    });

  test('every request the dying worker holds fails with a 5xx, none is lost; other services keep serving; it comes back', async () => {
    // One request running (6 rows: about 6 x 55 ms), one posted to the thread behind it, and
    // two waiting on the main thread for the next message to the thread.
    const running = slowRequest(6);
    await until('the first request to reach its worker', () =>
      slow().inFlight === 1 ? true : undefined,
    );
    const behind = [slowRequest(1), slowRequest(1), slowRequest(1)];
    await until('three more requests to queue', () => (slow().inFlight === 4 ? true : undefined));
    const back = nextRestart(srv.runtime.events);
    await crashWorker(srv.runtime, 'slow', 0);
    const answers = await Promise.all([running, ...behind]);
    // The thread ends at its next turn, never inside onnxruntime's native call: the running
    // request may finish first. Everything behind it fails, none is lost: those posted to the
    // thread with 500 (it died holding them), those still waiting here with 503 (retry).
    const [first, ...rest] = answers;
    if (first!.status !== 200) assert.equal(first!.body.code, 'BENTO_ERR_RUNTIME_WORKER_DIED');
    for (const a of rest) {
      assert.ok(a.status === 500 || a.status === 503, a.text);
      assert.equal(a.body.code, 'BENTO_ERR_RUNTIME_WORKER_DIED');
      assert.match(
        a.body.error,
        /^service `slow`, worker 0: the worker thread died (while it held this request|before this request started; retry)/,
      );
    }
    // The fast service never noticed.
    const fast = await post(`${srv.url}/v2/models/tiny/infer`, {
      inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [0, 0, 0, 0] }],
    });
    assert.equal(fast.status, 200, fast.text);
    await back;
    assert.equal(slow().restarts, 1);
    assert.equal(slow().state, 'ready');
    const again = await slowRequest(1);
    assert.equal(again.status, 200, again.text);
    assert.equal(slow().inFlight, 0);
  });
});
