// Pipelines over gRPC (test/fixtures/specs/pipeline.yaml): a pipeline is one more model, with
// the same metadata, ensemble configuration, repository entry, statistics and answers as REST.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { RunningGrpcServer } from '../src/server/grpc/server.js';
import {
  connect,
  type Message,
  rejects,
  startGrpc,
  status,
  type TestClient,
} from './helpers/grpc.js';
import { get, type InProcessServer, post, startInProcess, TEST_SPECS } from './helpers/server.js';

let srv: InProcessServer;
let grpc: RunningGrpcServer;
let client: TestClient;

before(async () => {
  srv = await startInProcess(join(TEST_SPECS, 'pipeline.yaml'));
  grpc = await startGrpc(srv);
  client = connect(grpc.address);
});

after(async () => {
  client?.close();
  grpc?.close();
  await srv?.close();
});

const x = Array.from({ length: 16 }, (_, i) => Math.sin(i));
const features = (rows = 2) => ({
  inputs: [{ name: 'features', datatype: 'FP32', shape: [String(rows), '8'] }],
  raw_input_contents: [Buffer.from(Float32Array.from(x.slice(0, rows * 8)).buffer)],
});

test('ModelInfer on a pipeline: the REST answer, outputs raw', async () => {
  for (const model of ['ensemble', 'two_stage']) {
    const res = await client.call('ModelInfer', { model_name: model, id: 'p1', ...features() });
    assert.equal(res.model_name, model);
    assert.equal(res.id, 'p1');
    const rest = await post(`${srv.url}/v2/models/${model}/infer`, {
      inputs: [{ name: 'features', shape: [2, 8], datatype: 'FP32', data: x }],
    });
    assert.equal(rest.status, 200, rest.text);
    for (const o of rest.body.outputs) {
      const i = res.outputs.findIndex((g: Message) => g.name === o.name);
      assert.ok(i >= 0, `${model}: no ${o.name}`);
      assert.deepEqual(res.outputs[i].shape.map(Number), o.shape);
      const raw: Buffer = res.raw_output_contents[i];
      const values = new Float32Array(
        raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length),
      );
      assert.deepEqual([...values], o.data, `${model}.${o.name}`);
    }
  }
});

test('ModelMetadata and ModelConfig: platform ensemble, the steps as Triton writes them', async () => {
  const meta = await client.call('ModelMetadata', { name: 'ensemble' });
  assert.equal(meta.platform, 'ensemble');
  assert.deepEqual(
    meta.outputs.map((o: Message) => o.name),
    ['mean', 'left'],
  );
  // The REST answer, field for field, for each pipeline (gRPC's int64s are strings).
  const numbers = (dims: readonly string[]) => dims.map(Number);
  for (const name of ['ensemble', 'two_stage']) {
    const { config } = await client.call('ModelConfig', { name });
    const rest = (await get(`${srv.url}/v2/models/${name}/config`)).body;
    assert.equal(config.platform, 'ensemble');
    assert.equal(config.scheduling_choice, 'ensemble_scheduling');
    assert.deepEqual(
      {
        name: config.name,
        max_batch_size: config.max_batch_size,
        input: config.input.map((t: Message) => [t.name, t.data_type, numbers(t.dims)]),
        output: config.output.map((t: Message) => [t.name, t.data_type, numbers(t.dims)]),
        instance_group: config.instance_group,
      },
      {
        name: rest.name,
        max_batch_size: rest.max_batch_size,
        input: rest.input.map((t: Message) => [t.name, t.data_type, t.dims]),
        output: rest.output.map((t: Message) => [t.name, t.data_type, t.dims]),
        instance_group: rest.instance_group,
      },
      name,
    );
    assert.deepEqual(
      config.ensemble_scheduling.step.map((s: Message) => ({
        ...s,
        model_version: Number(s.model_version),
      })),
      rest.ensemble_scheduling.step,
      name,
    );
  }
});

test('RepositoryIndex lists pipelines, ModelStatistics counts them, errors name them', async () => {
  const { models } = await client.call('RepositoryIndex', {});
  assert.deepEqual(models, (await post(`${srv.url}/v2/repository/index`, {})).body);
  assert.ok(models.some((m: Message) => m.name === 'two_stage' && m.state === 'READY'));
  await client.call('ModelInfer', { model_name: 'two_stage', ...features(1) });
  const [stats] = (await client.call('ModelStatistics', { name: 'two_stage' })).model_stats;
  assert.ok(Number(stats.inference_stats.success.count) >= 1);
  await rejects(
    client.call('ModelInfer', { model_name: 'ensemble', ...features(1), inputs: [] }),
    status.INVALID_ARGUMENT,
    'BENTO_ERR_INFER_INVALID',
  );
});
