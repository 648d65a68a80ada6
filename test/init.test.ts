// `bento-run init`: specs written from the fixture models, checked by the real validator, then
// served by the real CLI and sent the very requests its curl lines print.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { main } from '../src/cli.js';
import {
  curlLine,
  type InitModel,
  modelNameOf,
  schemaReference,
  whyNotBatched,
} from '../src/commands/init.js';
import type { CliIO } from '../src/commands/types.js';
import { readOnnxInfo } from '../src/spec/onnx-info.js';
import { SCHEMA_PATH } from '../src/spec/schema.js';
import { loadSpec } from '../src/spec/validate.js';
import { childEnv, post, ROOT, startCli, TEST_MODELS } from './helpers/server.js';

const SCHEMA_ID = (JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')) as { $id: string }).$id;

async function init(args: readonly string[]) {
  let stdout = '';
  let stderr = '';
  const io: CliIO = {
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
    env: process.env,
  };
  const code = await main(['init', ...args], io);
  return { code, stdout, stderr };
}

/** The JSON body of a printed `curl ... -d '{...}'` line. */
function curlBody(line: string): unknown {
  const m = /-d '(.*)'$/.exec(line);
  assert.ok(m, `not a curl line with an inline body: ${line}`);
  return JSON.parse(m[1]!.replace(/'\\''/g, "'"));
}

const model = (file: string): InitModel => {
  const r = readOnnxInfo(join(TEST_MODELS, file));
  assert.ok(r.ok);
  return { name: modelNameOf(file), path: file, info: r.info };
};

let tmp: string;
before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'bento-init-'));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('bento-run init: from the fixture models', () => {
  let dir: string;
  let spec: string;
  let out: { code: number; stdout: string; stderr: string };
  const files = ['classifier.onnx', 'fixed-batch.onnx', 'two-inputs.onnx', 'types.onnx'];

  before(async () => {
    dir = join(tmp, 'project');
    mkdirSync(join(dir, 'models'), { recursive: true });
    for (const f of files) copyFileSync(join(TEST_MODELS, f), join(dir, 'models', f));
    spec = join(dir, 'bentofile.yaml');
    out = await init([...files.map((f) => join(dir, 'models', f)), '-o', spec]);
  });

  test('exit 0; the spec validates, one model per file in one CPU service', () => {
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.stderr, '');
    const { spec: s, warnings } = loadSpec(spec);
    assert.deepEqual(warnings, []);
    assert.deepEqual(Object.keys(s.models), ['classifier', 'fixed-batch', 'two-inputs', 'types']);
    assert.deepEqual(
      Object.values(s.models).map((m) => m.declaredPath),
      files.map((f) => `models/${f}`),
      'paths relative to the spec, so the folder can move',
    );
    assert.equal(s.services.length, 1);
    assert.deepEqual(s.services[0]!.models, Object.keys(s.models));
    assert.equal(s.services[0]!.resources.gpu, 0);
  });

  test('batching exactly where dimension 0 is dynamic everywhere, a comment where it is not', () => {
    const { spec: s } = loadSpec(spec);
    assert.deepEqual(
      Object.values(s.models).map((m) => [m.name, m.batching !== null]),
      [
        ['classifier', true],
        ['fixed-batch', false],
        ['two-inputs', true],
        ['types', true],
      ],
    );
    const text = readFileSync(spec, 'utf8');
    assert.match(
      text,
      /# no batching: dimension 0 of input `input` is fixed at 1; batching merges requests along dimension 0/,
    );
    assert.match(text, /# input {2}a: FP32 \[batch, 3\]/, 'the signature, in comments');
  });

  test('the schema modeline on top; outside a project, the schema by its published URL', () => {
    const first = readFileSync(spec, 'utf8').split('\n')[0];
    assert.equal(first, `# yaml-language-server: $schema=${SCHEMA_ID}`);
    assert.match(SCHEMA_ID, /^https:\/\//);
  });

  test('prints the command that serves it and a curl line per model with its real inputs', () => {
    assert.match(out.stdout, new RegExp(`npx bento-run ${spec.replace(/[/.]/g, '\\$&')}\\n`));
    const curls = out.stdout.split('\n').filter((l) => l.trim().startsWith('curl '));
    assert.equal(curls.length, 4, out.stdout);
    assert.deepEqual(curlBody(curls[1]!.trim()), {
      inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [0, 0, 0, 0] }],
    });
    assert.deepEqual(curlBody(curls[2]!.trim()), {
      inputs: [
        { name: 'a', shape: [1, 3], datatype: 'FP32', data: [0, 0, 0] },
        { name: 'b', shape: [1, 3], datatype: 'FP32', data: [0, 0, 0] },
      ],
    });
    for (const c of curls) assert.match(c, /localhost:3000\/v2\/models\/[\w-]+\/infer/);
  });

  test('serves: every printed request gets its outputs', async () => {
    const srv = await startCli([spec], { env: childEnv() });
    try {
      const curls = out.stdout.split('\n').filter((l) => l.trim().startsWith('curl '));
      for (const line of curls) {
        const path = /localhost:3000(\S+)/.exec(line)![1]!;
        const res = await post(`${srv.url}${path}`, curlBody(line.trim()));
        assert.equal(res.status, 200, `${path}: ${res.text}`);
        assert.ok(res.body.outputs.length > 0);
      }
      const types = await post(`${srv.url}/v2/models/types/infer`, curlBody(curls[3]!.trim()));
      assert.equal(types.body.outputs.length, 13, 'every datatype goes through');
    } finally {
      assert.equal(await srv.stop(), 0, srv.log());
    }
  });
});

describe('bento-run init: what it refuses', () => {
  test('an existing output: exit 2 without --force, overwritten with it', async () => {
    const out = join(tmp, 'exists.yaml');
    writeFileSync(out, 'mine\n');
    const refused = await init([join(TEST_MODELS, 'tiny.onnx'), '-o', out]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /exists\.yaml exists; pass --force to overwrite it/);
    assert.equal(readFileSync(out, 'utf8'), 'mine\n');
    const forced = await init([join(TEST_MODELS, 'tiny.onnx'), '-o', out, '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.ok(loadSpec(out).spec.models.tiny);
  });

  test('a file that is not an ONNX model: exit 2, says so, writes nothing', async () => {
    const out = join(tmp, 'not-onnx.yaml');
    const r = await init([
      join(TEST_MODELS, 'tiny.onnx'),
      join(TEST_MODELS, 'not-onnx.onnx'),
      '-o',
      out,
    ]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /not-onnx\.onnx is not an ONNX model \(not a protobuf file\)/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    assert.throws(() => readFileSync(out), /ENOENT/);
  });

  test('a missing file, and no file at all: exit 2', async () => {
    const missing = await init([join(tmp, 'nope.onnx'), '-o', join(tmp, 'nope.yaml')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /nope\.onnx does not exist/);
    const none = await init([]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /`init` needs an ONNX model file/);
  });

  test('-o a folder writes its bentofile.yaml', async () => {
    const dir = join(tmp, 'folder');
    mkdirSync(dir);
    const r = await init([join(TEST_MODELS, 'tiny.onnx'), '-o', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(loadSpec(join(dir, 'bentofile.yaml')).spec.models.tiny);
  });
});

describe('init: names, batching, the modeline, the curl line', () => {
  test('a model is named from its file, made a valid model name', () => {
    assert.equal(modelNameOf('/x/resnet-50.onnx'), 'resnet-50');
    assert.equal(modelNameOf('my model (v2).ONNX'), 'my_model_v2_');
    assert.equal(modelNameOf('_private.onnx'), 'private');
    assert.equal(modelNameOf('.onnx'), 'model');
  });

  test('two files of one name get two models', async () => {
    const dir = join(tmp, 'same-name');
    for (const sub of ['a', 'b']) {
      mkdirSync(join(dir, sub), { recursive: true });
      copyFileSync(join(TEST_MODELS, 'tiny.onnx'), join(dir, sub, 'tiny.onnx'));
    }
    const out = join(dir, 'bentofile.yaml');
    const r = await init([join(dir, 'a', 'tiny.onnx'), join(dir, 'b', 'tiny.onnx'), '-o', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(Object.keys(loadSpec(out).spec.models), ['tiny', 'tiny-2']);
  });

  test('why a model is not batched', () => {
    assert.equal(whyNotBatched(model('classifier.onnx').info), null);
    assert.equal(
      whyNotBatched(model('fixed-batch.onnx').info),
      'dimension 0 of input `input` is fixed at 1',
    );
    const info = model('tiny.onnx').info;
    assert.equal(
      whyNotBatched({ ...info, outputs: [{ name: 'y', elementType: 'float', dims: null }] }),
      'the file does not give the shape of output `y`',
    );
  });

  test('the modeline: relative where the schema travels with the project, else the URL', () => {
    const schema = (root: string) => join(root, 'schema', 'bentofile.schema.json');
    const installed = schema('/home/u/app/node_modules/bento-run');
    assert.equal(
      schemaReference('/home/u/app', installed),
      './node_modules/bento-run/schema/bentofile.schema.json',
    );
    assert.equal(
      schemaReference('/home/u/app/specs', installed),
      '../node_modules/bento-run/schema/bentofile.schema.json',
    );
    assert.equal(schemaReference('/srv/other', installed), SCHEMA_ID);
    assert.equal(
      schemaReference(
        '/home/u/.npm/_npx/1a2b/node_modules',
        schema('/home/u/.npm/_npx/1a2b/node_modules/bento-run'),
      ),
      SCHEMA_ID,
      'npx cache',
    );
    assert.equal(schemaReference(join(ROOT, 'specs')), '../schema/bentofile.schema.json');
  });

  test('a body too long for one shell argument is made by node and piped into curl', () => {
    const big: InitModel = {
      name: 'big',
      path: 'big.onnx',
      info: {
        irVersion: 8,
        opsetVersion: 17,
        inputs: [
          { name: 'x', elementType: 'float', dims: ['batch', 5000] },
          { name: 'mask', elementType: 'bool', dims: ['batch', 2] },
        ],
        outputs: [{ name: 'y', elementType: 'float', dims: ['batch', 1] }],
      },
    };
    const line = curlLine(big)!;
    const m =
      /^node -e '(.*)' \| curl -s localhost:3000\/v2\/models\/big\/infer .*--data-binary @-$/.exec(
        line,
      );
    assert.ok(m, line);
    const body = JSON.parse(execFileSync(process.execPath, ['-e', m[1]!], { encoding: 'utf8' }));
    assert.deepEqual(body.inputs[0].shape, [1, 5000]);
    assert.equal(body.inputs[0].data.length, 5000);
    assert.deepEqual(body.inputs[1], {
      name: 'mask',
      shape: [1, 2],
      datatype: 'BOOL',
      data: [false, false],
    });
  });
});
