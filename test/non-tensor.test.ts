/**
 * Non-tensor values (a sequence output, as scikit-learn's ZipMap gives a sequence of maps):
 * validate warns at the model, metadata lists only tensors, a request without `outputs` gets
 * the tensors, and asking for the sequence is a 400 that says why.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { encodeModel, GraphBuilder } from '../scripts/onnx-builder.js';
import { BIN, get, type InProcessServer, post, startInProcess } from './helpers/server.js';

function sequenceModelSpec(): string {
  const dir = mkdtempSync(join(tmpdir(), 'bento-seq-'));
  const g = new GraphBuilder('seq');
  const x = g.input('x', 'float32', [1, 3]);
  g.output('y', 'float32', [1, 3]);
  g.op('Identity', [x], {}, 'y');
  g.op('SequenceConstruct', [x], {}, 's');
  const graph = g.build();
  graph.output = [
    ...(graph.output ?? []),
    { name: 's', type: { sequenceType: { elemType: { tensorType: { elemType: 1 } } } } },
  ];
  writeFileSync(join(dir, 'seq.onnx'), encodeModel(graph, 13));
  writeFileSync(
    join(dir, 'spec.yaml'),
    'version: 1\nmodels:\n  seq:\n    path: seq.onnx\nservices:\n  main: { models: [seq] }\n',
  );
  return join(dir, 'spec.yaml');
}

const spec = sequenceModelSpec();
let srv: InProcessServer;
before(async () => {
  srv = await startInProcess(spec);
});
after(() => srv?.close());
const body = { inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }] };

test('validate: a warning at the model, exit 0', () => {
  const r = spawnSync(process.execPath, [BIN, 'validate', spec], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  assert.match(
    r.stdout + r.stderr,
    /spec\.yaml:4:11: warning: models\.seq\.path: model `seq`: output `s` is not a tensor .*ZipMap/,
  );
});

test('metadata lists the tensor outputs only; a request without outputs gets them', async () => {
  const meta = await get(`${srv.url}/v2/models/seq`);
  assert.deepEqual(
    meta.body.outputs.map((o: { name: string }) => o.name),
    ['y'],
  );
  const res = await post(`${srv.url}/v2/models/seq/infer`, body);
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body.outputs, [
    { name: 'y', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] },
  ]);
});

test('asking for the sequence output: 400 saying it is not a tensor', async () => {
  const res = await post(`${srv.url}/v2/models/seq/infer`, { ...body, outputs: [{ name: 's' }] });
  assert.equal(res.status, 400, res.text);
  assert.equal(res.body.code, 'BENTO_ERR_INFER_INVALID');
  assert.match(res.body.error, /output `s` of model `seq` is not a tensor/);
});
