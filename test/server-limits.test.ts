/**
 * Reliability at the edges (issue 12): slow and stuck clients, timeouts that empty the queues,
 * shapes and integers that must be refused before anything is allocated, onnxruntime's errors
 * as 400s without its internals, parser rejections as JSON, and bearer-token auth.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { encodeModel, GraphBuilder } from '../scripts/onnx-builder.js';
import { createAuthenticator } from '../src/server/auth.js';
import {
  get,
  type InProcessServer,
  metric,
  post,
  request,
  scrape,
  startCli,
  startInProcess,
  TEST_MODELS,
  until,
  within,
} from './helpers/server.js';

/** A raw HTTP/1.1 exchange: what the socket gets back until it closes (or `ms` passes). */
function raw(url: string, text: string, ms = 5000): Promise<string> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const s = connect(Number(port), '127.0.0.1', () => s.write(text));
    let got = '';
    const timer = setTimeout(() => {
      s.destroy();
      resolve(got);
    }, ms);
    s.on('data', (d) => {
      got += d.toString('latin1');
    });
    s.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
    s.on('error', reject);
  });
}

function jsonOf(response: string): { status: number; body: { error: string; code: string } } {
  const status = Number(response.slice(9, 12));
  return { status, body: JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4)) };
}

/** A model with a Gather: an index out of range is the client's error, caught by onnxruntime. */
function gatherSpec(): string {
  const dir = mkdtempSync(join(tmpdir(), 'bento-limits-'));
  const g = new GraphBuilder('gather');
  const idx = g.input('idx', 'int64', ['n']);
  g.output('y', 'float32', ['n', 2]);
  const table = g.float('table', [3, 2], [1, 2, 3, 4, 5, 6]);
  g.op('Gather', [table, idx], {}, 'y');
  writeFileSync(join(dir, 'gather.onnx'), encodeModel(g.build()));
  writeFileSync(
    join(dir, 'spec.yaml'),
    `version: 1
models:
  gather: { path: gather.onnx }
  tiny: { path: ${join(TEST_MODELS, 'tiny.onnx')}, session: { memory_arena: false, arena_extend_strategy: same_as_requested } }
  slow: { path: ${join(TEST_MODELS, 'slow.onnx')}, session: { intra_op_threads: 1 } }
  ids: { path: ${join(TEST_MODELS, 'types.onnx')} }
services:
  main: { models: [gather, tiny, ids] }
  hurried:
    models: [slow]
    traffic: { timeout_s: 0.3, max_concurrency: 2 }
server: { max_body_mb: 16 }
`,
  );
  return join(dir, 'spec.yaml');
}

const slowBody = (rows: number) => ({
  inputs: [{ name: 'x', shape: [rows, 64], datatype: 'FP32', data: Array(rows * 64).fill(0.5) }],
});
const tinyBody = { inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [0, 0, 0, 0] }] };

describe('limits', () => {
  let srv: InProcessServer;
  before(async () => {
    srv = await startInProcess(gatherSpec(), { maxBodyBytes: 16 * 1024 * 1024 });
  });
  after(() => srv?.close());
  const url = (m: string) => `${srv.url}/v2/models/${m}/infer`;
  /** The worker of service `hurried` (timeout 0.3 s, max_concurrency 2). */
  const worker = () => srv.runtime.workers().find((w) => w.service === 'hurried')!;

  test('a timeout storm: timed-out requests leave the queue, the backlog stays within max_concurrency', async () => {
    let most = 0;
    const watch = setInterval(() => {
      most = Math.max(most, worker().inFlight);
    }, 2);
    const statuses: number[] = [];
    const stop = performance.now() + 2000;
    // Four clients, each sending 3-row requests (about 165 ms a run) back to back.
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (performance.now() < stop)
          statuses.push((await post(url('slow'), slowBody(3))).status);
      }),
    );
    clearInterval(watch);
    assert.ok(most <= 2, `the worker held ${most} requests (max_concurrency 2)`);
    assert.ok(statuses.includes(504) || statuses.includes(503), statuses.join(','));
    // Right after the storm the service answers again: nothing queued is left to wait for.
    await until('the worker to be empty', () => (worker().inFlight === 0 ? true : undefined));
    const ok = await post(url('slow'), slowBody(1));
    assert.equal(ok.status, 200, ok.text);
  });

  test('a request whose deadline passes after it was posted to the thread is not run', async () => {
    await until('the worker to be empty', () => (worker().inFlight === 0 ? true : undefined));
    const before = worker();
    // A runs about 1.1 s here (well over its 0.3 s deadline on a CPU three times as fast); B,
    // posted to the thread with it, would run longer, but its deadline passes while A runs:
    // the thread answers B without running it.
    const [a, b] = await Promise.all([
      post(url('slow'), slowBody(20)),
      post(url('slow'), slowBody(30)),
    ]);
    assert.deepEqual([a.status, b.status], [504, 504], `${a.text}\n${b.text}`);
    await until('the worker to be empty', () => (worker().inFlight === 0 ? true : undefined));
    const done = worker();
    assert.equal(done.completed - before.completed, 1, 'the thread ran A alone');
    assert.equal(done.withdrawn - before.withdrawn, 1, 'the thread skipped B');
    const counted = await scrape(srv.url);
    assert.equal(
      metric(counted, 'bento_requests_withdrawn_total', {
        service: 'hurried',
        worker: '0',
        device: 'cpu',
        stage: 'thread',
      }),
      done.withdrawn,
    );
    const ok = await post(url('slow'), slowBody(1));
    assert.equal(ok.status, 200, ok.text);
  });

  test('a body trickling in cannot hold a slot past the timeout: 504, connection closed', async () => {
    const sockets: Socket[] = [];
    const answers = Array.from(
      { length: 2 },
      () =>
        new Promise<string>((resolve) => {
          const { port } = new URL(srv.url);
          const s = connect(Number(port), '127.0.0.1', () => {
            s.write(
              'POST /v2/models/slow/infer HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{"inputs":',
            );
          });
          sockets.push(s);
          let got = '';
          s.on('data', (d) => {
            got += d.toString();
          });
          s.on('close', () => resolve(got));
        }),
    );
    const trickle = setInterval(() => {
      for (const s of sockets) if (s.writable) s.write(' ');
    }, 50);
    try {
      const texts = await within(Promise.all(answers), 20_000, 'the trickling clients to be cut');
      for (const t of texts) {
        const { status, body } = jsonOf(t);
        assert.equal(status, 504, t);
        assert.equal(body.code, 'BENTO_ERR_INFER_TIMEOUT');
      }
    } finally {
      clearInterval(trickle);
    }
    await until('the worker to be empty', () => (worker().inFlight === 0 ? true : undefined));
    const ok = await post(url('slow'), slowBody(1));
    assert.equal(ok.status, 200, ok.text);
  });

  test('an INT64 element of 12 million digits: a short 400 at once, no echo', async () => {
    const huge = '9'.repeat(12_000_000);
    const res = await post(url('ids'), {
      inputs: [{ name: 'in_int64', shape: [1, 1], datatype: 'INT64', data: [huge] }],
      outputs: [{ name: 'out_int64' }],
    });
    assert.equal(res.status, 400);
    assert.equal(res.body.code, 'BENTO_ERR_INFER_INVALID');
    assert.ok(res.text.length < 1000, `the answer is ${res.text.length} bytes`);
    // Refused on its length, before any BigInt is made of it.
    assert.match(res.body.error, /at most 20 characters/);
  });

  test('INT64 beyond 2^53 as a JSON number is refused: send strings', async () => {
    const res = await request(
      'POST',
      url('ids'),
      '{"inputs":[{"name":"in_int64","shape":[1,1],"datatype":"INT64","data":[9007199254740993]}]}',
    );
    assert.equal(res.status, 400, res.text);
    assert.match(res.body.error, /data\[0\] is 9007199254740992, .* as decimal strings/);
  });

  for (const shape of [
    [0, 1e300],
    [0, 2 ** 53 + 2],
    [2 ** 62, 0],
    [0, -1],
    [65536, 65536, 0],
  ]) {
    test(`shape ${JSON.stringify(shape)} is refused before anything is allocated`, async () => {
      const res = await request(
        'POST',
        url('tiny'),
        `{"inputs":[{"name":"x","shape":${JSON.stringify(shape)},"datatype":"FP32","data":[]}]}`,
      );
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body.code, 'BENTO_ERR_INFER_INVALID');
    });
  }

  test("onnxruntime's input errors are 400s naming the model and node, without its source paths", async () => {
    const res = await post(url('gather'), {
      inputs: [{ name: 'idx', shape: [2], datatype: 'INT64', data: [0, 7] }],
    });
    assert.equal(res.status, 400, res.text);
    assert.equal(res.body.code, 'BENTO_ERR_RUNTIME_INFERENCE');
    assert.match(res.body.error, /^model `gather`: node `\S*` \(Gather\) rejected the input: /);
    assert.doesNotMatch(res.body.error, /\.cc:|\.h:|onnxruntime::/);
    const ok = await post(url('gather'), {
      inputs: [{ name: 'idx', shape: [2], datatype: 'INT64', data: [0, 2] }],
    });
    assert.deepEqual(ok.body.outputs[0].data, [1, 2, 5, 6]);
  });

  test("what Node's parser refuses is JSON too: bad chunking 400, headers over 16 KiB 431", async () => {
    const chunked = jsonOf(
      await raw(
        srv.url,
        'POST /v2/models/tiny/infer HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n',
      ),
    );
    assert.equal(chunked.status, 400);
    assert.equal(chunked.body.code, 'BENTO_ERR_HTTP_BAD_REQUEST');
    const big = jsonOf(
      await raw(srv.url, `GET /v2 HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`),
    );
    assert.equal(big.status, 431);
    assert.equal(big.body.code, 'BENTO_ERR_HTTP_HEADERS_TOO_LARGE');
  });

  test('413 names server.max_body_mb', async () => {
    const res = await post(url('tiny'), { inputs: [{ pad: 'x'.repeat(17_000_000) }] });
    assert.equal(res.status, 413);
    assert.equal(res.body.code, 'BENTO_ERR_INFER_TOO_LARGE');
    assert.match(res.body.error, /server\.max_body_mb: 16\)/);
  });

  test('a cross-site form post (text/plain) runs no inference: 415', async () => {
    assert.equal((await post(url('tiny'), tinyBody)).status, 200);
    const before = metric(await scrape(srv.url), 'bento_requests_total', {
      model: 'tiny',
      status: '200',
    });
    const res = await request('POST', url('tiny'), JSON.stringify(tinyBody), {
      'content-type': 'text/plain',
    });
    assert.equal(res.status, 415, res.text);
    assert.equal(res.body.code, 'BENTO_ERR_HTTP_MEDIA_TYPE');
    const afterCount = metric(await scrape(srv.url), 'bento_requests_total', {
      model: 'tiny',
      status: '200',
    });
    assert.equal(afterCount, before);
  });

  test('drain: clients that sent nothing, or half their headers, do not hold the server', async () => {
    const { port } = new URL(srv.url);
    const idle = connect(Number(port), '127.0.0.1');
    const half = connect(Number(port), '127.0.0.1', () =>
      half.write('POST /v2/models/tiny/infer HTTP/1.1\r\nhost: x\r\n'),
    );
    await Promise.all([
      new Promise((r) => idle.once('connect', r)),
      new Promise((r) => setTimeout(r, 100)),
    ]);
    const closed = Promise.all([idle, half].map((s) => new Promise((r) => s.once('close', r))));
    // Well before the drain's 10 s: nothing was in flight, the stuck ones are just closed.
    const clean = await within(srv.server.drain(10), 8000, 'the drain');
    await within(closed, 8000, 'the stuck connections to be closed');
    assert.equal(clean, true);
    assert.doesNotMatch(srv.log(), /error|warn/i, 'no request of these tests failed inside');
  });
});

test("--log-format json: onnxruntime's own lines do not bypass it, even on an input it rejects", async () => {
  const srv = await startCli([gatherSpec(), '--log-format', 'json', '--host', '127.0.0.1']);
  try {
    const bad = await post(`${srv.url}/v2/models/gather/infer`, {
      inputs: [{ name: 'idx', shape: [2], datatype: 'INT64', data: [0, 7] }],
    });
    assert.equal(bad.status, 400, bad.text);
  } finally {
    assert.equal(await srv.stop(), 0, srv.log());
  }
  const lines = srv
    .log()
    .split('\n')
    .filter((l) => l !== '');
  assert.ok(lines.length > 3, srv.log());
  for (const line of lines) assert.doesNotThrow(() => JSON.parse(line), line);
});

describe('server.auth', () => {
  let srv: InProcessServer;
  before(async () => {
    srv = await startInProcess(join(TEST_MODELS, '..', 'specs', 'slow.yaml'), {
      auth: createAuthenticator(['s3cret', 'other']),
    });
  });
  after(() => srv?.close());

  test('health routes are open; everything else needs a bearer token: 401 with WWW-Authenticate', async () => {
    assert.equal((await get(`${srv.url}/v2/health/ready`)).status, 200);
    assert.equal((await get(`${srv.url}/livez`)).status, 200);
    for (const path of ['/v2', '/v2/models/tiny', '/metrics', '/debug/workers']) {
      const res = await get(`${srv.url}${path}`);
      assert.equal(res.status, 401, path);
      assert.equal(res.body.code, 'BENTO_ERR_INFER_UNAUTHENTICATED');
      assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/);
    }
    const wrong = await request('POST', `${srv.url}/v2/models/tiny/infer`, tinyBody, {
      authorization: 'Bearer s3cre',
    });
    assert.equal(wrong.status, 401);
    for (const token of ['s3cret', 'other']) {
      const ok = await request('POST', `${srv.url}/v2/models/tiny/infer`, tinyBody, {
        authorization: `Bearer ${token}`,
      });
      assert.equal(ok.status, 200, ok.text);
    }
  });
});
