// Piscina stops replacing a pool's threads for good once one dies before it is ready. The
// runtime then starts a new pool for the same slot: a worker always comes back on its device.
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { RuntimeEvents } from '../src/runtime/pool.js';
import { crashWorker } from './fixtures/worker-switches.js';
import { type InProcessServer, post, ROOT, startInProcess } from './helpers/server.js';

const events = new EventEmitter<RuntimeEvents>();
let srv: InProcessServer;

before(async () => {
  srv = await startInProcess(join(ROOT, 'specs', 'multi-gpu.yaml'), {
    gpus: '2x-l4',
    forceCpuSessions: true,
    events,
  });
});
after(() => srv?.close());

test('replacements that die during their start still end with the worker back on its devices', async () => {
  const exits: number[] = [];
  events.on('worker-exit', (w) => exits.push(w.worker));
  const firstThread = srv.runtime.workers()[0]!.threadId;
  const back = (async () => {
    for (;;) {
      const [, , restart] = (await once(events, 'worker-ready', {
        signal: AbortSignal.timeout(20_000),
      })) as RuntimeEvents['worker-ready'];
      if (restart) return;
    }
  })();
  // The crash, then two replacement threads that exit before they are ready.
  await crashWorker(srv.runtime, 'multi_gpu', 0, { failBootstraps: 2 });
  await back;
  const w = srv.runtime.workers()[0]!;
  assert.equal(w.state, 'ready');
  assert.notEqual(w.threadId, firstThread);
  assert.ok(exits.length >= 3, `worker exits seen: ${exits.length}`);
  assert.deepEqual(
    w.sessions.map((s) => `${s.model}@${s.device}/${s.deviceId}`),
    ['model1@cuda:0/0', 'model2@cuda:1/1'],
  );
  for (const model of ['model1', 'model2']) {
    const res = await post(`${srv.url}/v2/models/${model}/infer`, {
      inputs: [{ name: 'input', shape: [1, 8], datatype: 'FP32', data: Array(8).fill(1) }],
    });
    assert.equal(res.status, 200, res.text);
  }
});
