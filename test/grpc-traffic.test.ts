// The gRPC frontend under the same limits as REST, through a real server: beyond
// traffic.max_concurrency UNAVAILABLE, beyond traffic.timeout_s DEADLINE_EXCEEDED, the client's
// own deadline honoured, a cancelled call's queued work withdrawn, messages beyond the size
// limit RESOURCE_EXHAUSTED; bearer tokens (health RPCs open), TLS, and draining with and
// without cut calls.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ChannelCredentials } from '@grpc/grpc-js';
import { createAuthenticator } from '../src/server/auth.js';
import type { RunningGrpcServer } from '../src/server/grpc/server.js';
import { connect, rejects, startGrpc, status, type TestClient } from './helpers/grpc.js';
import {
  type InProcessServer,
  metric,
  ROOT,
  samples,
  scrape,
  startInProcess,
  TEST_SPECS,
  until,
} from './helpers/server.js';

let srv: InProcessServer;
let grpc: RunningGrpcServer;
let client: TestClient;

before(async () => {
  srv = await startInProcess(join(TEST_SPECS, 'traffic.yaml'));
  grpc = await startGrpc(srv);
  client = connect(grpc.address);
});

after(async () => {
  client?.close();
  grpc?.close();
  await srv?.close();
});

const f32 = (values: readonly number[]) => Buffer.from(Float32Array.from(values).buffer);

/** `rows` rows of the slow model (about 55 ms a row) or the tiny one. */
const slow = (model: string, rows = 1) => ({
  model_name: model,
  inputs: [{ name: 'x', datatype: 'FP32', shape: [String(rows), '64'] }],
  raw_input_contents: [f32(Array(rows * 64).fill(0.5))],
});
const tiny = {
  model_name: 'tiny',
  inputs: [
    { name: 'x', datatype: 'FP32', shape: ['1', '4'], contents: { fp32_contents: [1, 2, 3, 4] } },
  ],
};
const TINY_OUT = f32([1.5, 1, 5, 4.25]);

const worker = (service: string) => srv.runtime.workers().find((w) => w.service === service)!;
/** bento_requests_total for the model and status; 0 before the first. */
const requests = async (model: string, code: string) =>
  samples(await scrape(srv.url), 'bento_requests_total', { model, status: code }).reduce(
    (n, s) => n + s.value,
    0,
  );

describe('traffic limits', () => {
  test('overload: beyond max_concurrency (2) calls get UNAVAILABLE, the rest answers', async () => {
    const answers = await Promise.allSettled(
      Array.from({ length: 8 }, () => client.call('ModelInfer', slow('slow'))),
    );
    const ok = answers.filter((a) => a.status === 'fulfilled');
    const refused = answers.filter((a) => a.status === 'rejected');
    assert.ok(ok.length >= 2, `${ok.length} answered`);
    assert.ok(refused.length >= 1, 'none was turned away');
    for (const r of refused) {
      await rejects(
        Promise.reject(r.reason),
        status.UNAVAILABLE,
        'BENTO_ERR_INFER_OVERLOADED',
        /service `slow` is at its limit of 2 requests in flight \(traffic\.max_concurrency\)/,
      );
    }
    assert.equal(await requests('slow', '503'), refused.length);
    assert.ok(
      (await client.call('ModelInfer', slow('slow'))).raw_output_contents[0].length === 256,
    );
  });

  test('timeout: beyond timeout_s (0.01) DEADLINE_EXCEEDED with the code, the server serves on', async () => {
    await rejects(
      client.call('ModelInfer', slow('hurried')),
      status.DEADLINE_EXCEEDED,
      'BENTO_ERR_INFER_TIMEOUT',
      /inference on model `hurried` did not finish within 0\.01s \(traffic\.timeout_s\)/,
    );
    assert.equal(await requests('hurried', '504'), 1);
    const res = await client.call('ModelInfer', tiny);
    assert.deepEqual(res.raw_output_contents[0], TINY_OUT);
    await until('the abandoned run to end', () =>
      worker('hurried').inFlight === 0 ? true : undefined,
    );
    assert.equal(worker('hurried').state, 'ready');
  });

  test("the client's deadline: DEADLINE_EXCEEDED at once, counted as 504, slot freed after the run", async () => {
    const okBefore = await requests('slow', '200');
    const t0 = performance.now();
    await rejects(
      client.call('ModelInfer', slow('slow', 8), { deadlineMs: 60 }),
      status.DEADLINE_EXCEEDED,
    );
    assert.ok(performance.now() - t0 < 400, 'the call waited for the run (8 × 55 ms)');
    await until('the call to be counted', async () =>
      (await requests('slow', '504')) === 1 ? true : undefined,
    );
    await until('the slot to be freed', async () =>
      metric(await scrape(srv.url), 'bento_requests_in_flight', { service: 'slow' }) === 0
        ? true
        : undefined,
    );
    assert.equal(
      await requests('slow', '200'),
      okBefore,
      'no success counted for the dropped call',
    );
    assert.equal((await client.call('ModelInfer', slow('slow'))).outputs[0].name, 'y');
  });

  test('a call its client cancels while it waits: withdrawn unrun, its slot freed when the run before it ends', async () => {
    const slotsTaken = async () =>
      metric(await scrape(srv.url), 'bento_requests_in_flight', { service: 'slow' });
    const withdrawnBefore = worker('slow').withdrawn;
    const first = client.call('ModelInfer', slow('slow', 8)); // about 440 ms
    await until('the first call to reach the worker', () =>
      worker('slow').inFlight === 1 ? true : undefined,
    );
    const second = client.start('ModelInfer', slow('slow', 32)); // about 1.8 s, were it run
    await until('the second call to wait behind it', () =>
      worker('slow').inFlight === 2 ? true : undefined,
    );
    second.cancel();
    await rejects(second.response, status.CANCELLED);
    assert.equal((await first).outputs[0].name, 'y');
    // Had the second run, its slot would stay taken for its 1.8 s.
    await until(
      'both slots to be free',
      async () => ((await slotsTaken()) === 0 && worker('slow').inFlight === 0 ? true : undefined),
      1000,
    );
    assert.equal(
      worker('slow').withdrawn - withdrawnBefore,
      1,
      'the thread ran the cancelled call',
    );
    await until('the cancelled call to be counted', async () =>
      (await requests('slow', '499')) === 1 ? true : undefined,
    );
    assert.equal((await client.call('ModelInfer', slow('slow'))).outputs[0].name, 'y');
  });

  test('messages beyond maxMessageBytes: RESOURCE_EXHAUSTED', async () => {
    const small = await startGrpc(srv, { maxMessageBytes: 1024 });
    const c = connect(small.address);
    try {
      assert.equal((await c.call('ModelInfer', slow('slow', 1))).outputs.length, 1); // 256 bytes
      await rejects(c.call('ModelInfer', slow('slow', 8)), status.RESOURCE_EXHAUSTED); // 2 KiB
      assert.deepEqual((await c.call('ModelInfer', tiny)).raw_output_contents[0], TINY_OUT);
    } finally {
      c.close();
      small.close();
    }
  });
});

describe('auth and TLS', () => {
  test('with auth: health RPCs open, every other one needs the bearer token', async () => {
    const secured = await startGrpc(srv, { auth: createAuthenticator(['t0k']) });
    const c = connect(secured.address);
    try {
      assert.deepEqual(await c.call('ServerLive'), { live: true });
      assert.deepEqual(await c.call('ServerReady'), { ready: true });
      assert.deepEqual(await c.call('ModelReady', { name: 'tiny' }), { ready: true });
      for (const [rpc, request] of [
        ['ModelInfer', tiny],
        ['ModelMetadata', { name: 'tiny' }],
        ['ServerMetadata', {}],
        ['ModelConfig', { name: 'tiny' }],
        ['ModelStatistics', {}],
        ['RepositoryIndex', {}],
      ] as const) {
        await rejects(
          c.call(rpc, request),
          status.UNAUTHENTICATED,
          'BENTO_ERR_INFER_UNAUTHENTICATED',
          /needs a bearer token/,
        );
        await rejects(c.call(rpc, request, { token: 'wrong' }), status.UNAUTHENTICATED);
        await c.call(rpc, request, { token: 't0k' });
      }
      const res = await c.call('ModelInfer', tiny, { token: 't0k' });
      assert.deepEqual(res.raw_output_contents[0], TINY_OUT);
    } finally {
      c.close();
      secured.close();
    }
  });

  test('with TLS: a client trusting the certificate is served, a plaintext one is not', async () => {
    const dir = join(ROOT, 'test', 'fixtures', 'grpc-tls');
    const tls = await startGrpc(srv, {
      tls: { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') },
    });
    const secure = connect(
      `localhost:${tls.port}`,
      ChannelCredentials.createSsl(readFileSync(join(dir, 'cert.pem'))),
    );
    const plain = connect(`localhost:${tls.port}`);
    try {
      assert.deepEqual(await secure.call('ServerLive'), { live: true });
      assert.deepEqual((await secure.call('ModelInfer', tiny)).raw_output_contents[0], TINY_OUT);
      await rejects(plain.call('ServerLive', {}, { deadlineMs: 2000 }), status.UNAVAILABLE);
    } finally {
      secure.close();
      plain.close();
      tls.close();
    }
  });
});

describe('drain', () => {
  test('drain lets a call in flight finish, resolves true, and accepts no more', async () => {
    const g = await startGrpc(srv);
    const c = connect(g.address);
    try {
      await c.call('ServerLive'); // connected
      const call = c.call('ModelInfer', slow('slow', 4));
      await until('the call to reach its worker', () =>
        worker('slow').inFlight === 1 ? true : undefined,
      );
      const clean = await g.drain(10);
      assert.equal(clean, true);
      assert.equal((await call).outputs[0].name, 'y');
      const late = connect(g.address);
      await rejects(late.call('ServerLive', {}, { deadlineMs: 2000 }), status.UNAVAILABLE);
      late.close();
    } finally {
      c.close();
      g.close();
    }
  });

  test('drain past its timeout cuts the call and resolves false', async () => {
    const g = await startGrpc(srv);
    const c = connect(g.address);
    try {
      const call = c.call('ModelInfer', slow('slow', 12));
      await until('the call to reach its worker', () =>
        worker('slow').inFlight === 1 ? true : undefined,
      );
      assert.equal(await g.drain(0.05), false);
      await assert.rejects(call);
    } finally {
      c.close();
      g.close();
    }
    await until('the cut run to end', () => (worker('slow').inFlight === 0 ? true : undefined));
  });
});
