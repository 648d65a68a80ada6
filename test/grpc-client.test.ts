// `bento-run/client/grpc` against a real server: typed arrays in and out for every datatype
// (raw and typed contents), the same answers as the REST client, metadata, readiness, Triton's
// extensions, bearer tokens and TLS, and errors as BentoClientError with REST's status and the
// server's code.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { BentoClient, BentoClientError, type InferInput } from '../src/client.js';
import { BentoGrpcClient, BentoGrpcClientError } from '../src/client-grpc.js';
import { createAuthenticator } from '../src/server/auth.js';
import type { RunningGrpcServer } from '../src/server/grpc/server.js';
import { floatToHalf } from '../src/tensor/datatypes.js';
import { startGrpc } from './helpers/grpc.js';
import { type InProcessServer, ROOT, startInProcess, TEST_SPECS } from './helpers/server.js';

let srv: InProcessServer;
let grpc: RunningGrpcServer;
let client: BentoGrpcClient;
before(async () => {
  srv = await startInProcess(join(TEST_SPECS, 'all-models.yaml'));
  grpc = await startGrpc(srv);
  client = new BentoGrpcClient(grpc.address);
});
after(async () => {
  client?.close();
  grpc?.close();
  await srv?.close();
});

const inputs = (fp16Rows = 1): Record<string, InferInput> => ({
  in_fp32: { data: Float32Array.from([1.5, -0.1, 3e38]), shape: [1, 3] },
  in_fp64: { data: Float64Array.from([0.1, -1e300, 1 / 3]), shape: [1, 3] },
  in_fp16: {
    data: Uint16Array.from([0.5, -2, 65504].slice(0, fp16Rows * 3).map(floatToHalf)),
    shape: [fp16Rows, 3],
    datatype: 'FP16',
  },
  in_int8: { data: Int8Array.from([-128, 0, 127]), shape: [1, 3] },
  in_int16: { data: Int16Array.from([-32768, 0, 32767]), shape: [1, 3] },
  in_int32: { data: Int32Array.from([-2147483648, 0, 2147483647]), shape: [1, 3] },
  in_int64: {
    data: BigInt64Array.from([-(2n ** 63n), 2n ** 53n + 1n, 2n ** 63n - 1n]),
    shape: [1, 3],
  },
  in_uint8: { data: Uint8Array.from([0, 128, 255]), shape: [1, 3] },
  in_uint16: { data: Uint16Array.from([0, 32768, 65535]), shape: [1, 3] },
  in_uint32: { data: Uint32Array.from([0, 2147483648, 4294967295]), shape: [1, 3] },
  in_uint64: { data: BigUint64Array.from([0n, 2n ** 53n + 1n, 2n ** 64n - 1n]), shape: [1, 3] },
  in_bool: { data: [true, false, true], shape: [1, 3], datatype: 'BOOL' },
  in_bytes: { data: ['héllo', '日本語', '🚀'], shape: [1, 3] },
});

function assertEcho(
  sent: Record<string, InferInput>,
  outputs: Record<string, { data: unknown; shape: readonly number[] }>,
) {
  assert.equal(Object.keys(outputs).length, 13);
  for (const [name, t] of Object.entries(sent)) {
    const out = outputs[name.replace('in_', 'out_')];
    assert.ok(out, `${name}: no output`);
    assert.deepEqual(out.shape, t.shape, name);
    const want = name === 'in_bool' ? Uint8Array.from([1, 0, 1]) : t.data;
    assert.deepEqual(out.data, want, name);
  }
}

test('infer, raw contents: every datatype as typed arrays, back as the same typed arrays', async () => {
  const sent = inputs();
  const res = await client.infer('types', sent, { id: 'g1' });
  assert.equal(res.modelName, 'types');
  assert.equal(res.id, 'g1');
  assertEcho(sent, res.outputs);
  assert.equal(res.outputs.out_fp16!.datatype, 'FP16');
  assert.ok(res.outputs.out_int64!.data instanceof BigInt64Array);
});

test('infer, typed contents: every datatype but FP16 (which the protocol carries raw only)', async () => {
  const sent = inputs(0);
  const res = await client.infer('types', sent, { contents: 'typed' });
  assertEcho(sent, res.outputs);
  await assert.rejects(
    client.infer('types', inputs(1), { contents: 'typed' }),
    /FP16 has no typed contents field/,
  );
});

test('the same outputs as the REST client, binary and JSON', async () => {
  const rest = new BentoClient(srv.url);
  try {
    const x = {
      input: { data: Float32Array.from([5.1, 3.5, 1.4, 0.2, 6.7, 3.1, 4.4, 1.4]), shape: [2, 4] },
    };
    const viaGrpc = await client.infer('classifier', x);
    assert.deepEqual(
      viaGrpc.outputs,
      (await rest.infer('classifier', x, { binary: true })).outputs,
    );
    assert.deepEqual(viaGrpc.outputs, (await rest.infer('classifier', x)).outputs);
    const both = await client.infer(
      'two_inputs',
      {
        a: { data: Float32Array.from([1, 2, 3]), shape: [1, 3] },
        b: { data: Float32Array.from([4, 5, 6]), shape: [1, 3] },
      },
      { outputs: ['product'] },
    );
    assert.deepEqual(Object.keys(both.outputs), ['product']);
    assert.deepEqual(both.outputs.product!.data, Float32Array.from([4, 10, 18]));
    assert.equal(both.id, undefined);
  } finally {
    await rest.close();
  }
});

test('metadata, ready, live, config, statistics, repository index', async () => {
  assert.equal((await client.metadata()).name, 'bento-run');
  const model = await client.metadata('two_inputs');
  assert.equal(model.platform, 'onnxruntime_onnx');
  assert.deepEqual(
    model.inputs.map((t) => [t.name, t.datatype, t.shape]),
    [
      ['a', 'FP32', [-1, 3]],
      ['b', 'FP32', [-1, 3]],
    ],
  );
  assert.equal(await client.live(), true);
  assert.equal(await client.ready(), true);
  assert.equal(await client.ready('classifier'), true);
  assert.equal(await client.ready('nope'), false);
  const config = await client.config('fixed_batch');
  assert.equal(config.name, 'fixed_batch');
  const stats = await client.statistics('classifier');
  assert.equal(stats.length, 1);
  assert.equal(stats[0]!.name, 'classifier');
  assert.ok(
    Number((stats[0]!.inference_stats as { success: { count: string } }).success.count) >= 1,
  );
  const index = await client.repositoryIndex();
  assert.ok(index.some((m) => m.name === 'types' && m.state === 'READY'));
});

test('errors: BentoGrpcClientError, a BentoClientError with REST status and the server code', async () => {
  await assert.rejects(
    client.infer('nope', { x: { data: Float32Array.from([1]), shape: [1, 1] } }),
    (e: unknown) =>
      e instanceof BentoGrpcClientError &&
      e instanceof BentoClientError &&
      e.status === 404 &&
      e.grpcCode === status.NOT_FOUND &&
      e.code === 'BENTO_ERR_INFER_MODEL_NOT_FOUND' &&
      /^gRPC NOT_FOUND: unknown model `nope`/.test(e.message),
  );
  await assert.rejects(
    client.infer('tiny', { x: { data: Float32Array.from([1, 2, 3]), shape: [1, 4] } }),
    (e: unknown) =>
      e instanceof BentoGrpcClientError &&
      e.status === 400 &&
      e.code === 'BENTO_ERR_INFER_INVALID' &&
      /raw_input_contents\[0\] has 12 bytes, the shape needs 4 × 4 = 16/.test(e.message),
  );
  const ok = await client.infer('tiny', {
    x: { data: Float32Array.from([0, 0, 0, 0]), shape: [1, 4] },
  });
  assert.deepEqual(ok.outputs.y!.data, Float32Array.from([0.5, -1, 2, 0.25]));
});

test('a token for server.auth, and TLS', async () => {
  const dir = join(ROOT, 'test', 'fixtures', 'grpc-tls');
  const secured = await startGrpc(srv, {
    auth: createAuthenticator(['t0k']),
    tls: { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') },
  });
  const address = `localhost:${secured.port}`;
  const ca = readFileSync(join(dir, 'cert.pem'));
  const withToken = new BentoGrpcClient(address, { token: 't0k', tls: { ca } });
  const without = new BentoGrpcClient(address, { tls: { ca } });
  try {
    assert.equal((await withToken.metadata('tiny')).name, 'tiny');
    assert.equal(await without.live(), true, 'health is open');
    await assert.rejects(
      without.metadata('tiny'),
      (e: unknown) =>
        e instanceof BentoGrpcClientError &&
        e.status === 401 &&
        e.code === 'BENTO_ERR_INFER_UNAUTHENTICATED',
    );
  } finally {
    withToken.close();
    without.close();
    secured.close();
  }
});

test('the package exports it as bento-run/client/grpc', async () => {
  const specifier = 'bento-run/client/grpc'; // a variable: resolved by Node at run time
  const mod = (await import(specifier)) as typeof import('../src/client-grpc.js');
  assert.equal(mod.BentoGrpcClient, BentoGrpcClient);
});
