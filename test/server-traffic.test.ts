// Traffic limits through a real server: beyond traffic.max_concurrency a request gets 503 with
// Retry-After (never reaching a worker), beyond traffic.timeout_s 504 with its slot freed; the
// server keeps serving after both.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  type InProcessServer,
  metric,
  post,
  scrape,
  startInProcess,
  TEST_SPECS,
  until,
} from './helpers/server.js';

let srv: InProcessServer;
before(async () => {
  srv = await startInProcess(join(TEST_SPECS, 'traffic.yaml'));
});
after(() => srv?.close());

const slowBody = {
  inputs: [{ name: 'x', shape: [1, 64], datatype: 'FP32', data: Array(64).fill(0.5) }],
};
const tinyBody = { inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] };
const completed = (service: string) =>
  srv.runtime
    .workers()
    .filter((w) => w.service === service)
    .reduce((n, w) => n + w.completed, 0);

test('overload: beyond max_concurrency (2) requests get 503 with Retry-After, the rest 200', async () => {
  const ranBefore = completed('slow');
  const answers = await Promise.all(
    Array.from({ length: 8 }, () => post(`${srv.url}/v2/models/slow/infer`, slowBody)),
  );
  const ok = answers.filter((a) => a.status === 200);
  const rejected = answers.filter((a) => a.status === 503);
  assert.equal(
    ok.length + rejected.length,
    8,
    answers.map((a) => `${a.status} ${a.text}`).join('\n'),
  );
  assert.ok(ok.length >= 2, `${ok.length} answered 200`);
  assert.ok(rejected.length >= 1, 'none was turned away');
  for (const r of rejected) {
    assert.equal(r.headers.get('retry-after'), '1');
    assert.match(
      r.body.error,
      /service `slow` is at its limit of 2 requests in flight \(traffic\.max_concurrency\)/,
    );
  }
  for (const r of ok) {
    assert.deepEqual(r.body.outputs[0].shape, [1, 64]);
    assert.equal(r.body.outputs[0].data.length, 64);
  }
  assert.equal(completed('slow') - ranBefore, ok.length, 'a rejected request reached the worker');

  // Still serving, and the gauge and counters agree.
  const again = await post(`${srv.url}/v2/models/slow/infer`, slowBody);
  assert.equal(again.status, 200, again.text);
  assert.deepEqual(again.body.outputs, ok[0]!.body.outputs, 'same input, same answer');
  const m = await scrape(srv.url);
  assert.equal(metric(m, 'bento_requests_in_flight', { service: 'slow' }), 0);
  assert.equal(
    metric(m, 'bento_requests_total', { model: 'slow', status: '503' }),
    rejected.length,
  );
  assert.equal(metric(m, 'bento_requests_total', { model: 'slow', status: '200' }), ok.length + 1);
});

test('timeout: beyond timeout_s (0.01) a request gets 504, its slot is freed when the run ends, the server serves on', async () => {
  const res = await post(`${srv.url}/v2/models/hurried/infer`, slowBody);
  assert.equal(res.status, 504, res.text);
  assert.match(
    res.body.error,
    /inference on model `hurried` did not finish within 0\.01s \(traffic\.timeout_s\)/,
  );
  assert.equal(res.body.code, 'BENTO_ERR_INFER_TIMEOUT');
  assert.equal(
    metric(await scrape(srv.url), 'bento_requests_total', { model: 'hurried', status: '504' }),
    1,
  );

  // Other services answer, and the timed-out worker survives and is still ready.
  const fast = await post(`${srv.url}/v2/models/tiny/infer`, tinyBody);
  assert.equal(fast.status, 200, fast.text);
  assert.deepEqual(fast.body.outputs[0].data, [1.5, 1, 5, 4.25]);
  // The abandoned run still finishes in its worker: the thread was neither stuck nor replaced.
  const worker = () => srv.runtime.workers().find((w) => w.service === 'hurried')!;
  await until('the abandoned run to finish in its worker', () =>
    worker().inFlight === 0 ? true : undefined,
  );
  assert.equal(worker().state, 'ready');
  assert.equal(worker().restarts, 0);
  // (On a loaded machine its deadline may pass before the thread takes it: then it is skipped.)
  assert.equal(worker().completed + worker().withdrawn, 1);
  // Running work held its slot until it ended (a worker's backlog never exceeds the limit).
  await until('the slot to be freed', async () =>
    metric(await scrape(srv.url), 'bento_requests_in_flight', { service: 'hurried' }) === 0
      ? true
      : undefined,
  );
});

test('sessions run off the main thread: the server answers while a long inference runs', async () => {
  const rows = 8; // about 8 x 55 ms of session.run
  let settled = false;
  const long = post(`${srv.url}/v2/models/slow/infer`, {
    inputs: [{ name: 'x', shape: [rows, 64], datatype: 'FP32', data: Array(rows * 64).fill(0.5) }],
  }).finally(() => {
    settled = true;
  });
  await until('the long request to reach its worker', () =>
    srv.runtime.workers().find((w) => w.service === 'slow')!.inFlight === 1 ? true : undefined,
  );
  for (const path of ['/livez', '/v2/models/slow', '/metrics']) {
    const res = await fetch(`${srv.url}${path}`);
    await res.arrayBuffer();
    assert.equal(res.status, 200, path);
    assert.equal(settled, false, `${path} waited for the inference: it ran on the main thread`);
  }
  const fast = await post(`${srv.url}/v2/models/tiny/infer`, tinyBody);
  assert.equal(fast.status, 200);
  assert.equal(settled, false, 'another service waited for the inference');
  assert.equal((await long).status, 200);
});
