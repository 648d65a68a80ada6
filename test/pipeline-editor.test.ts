// Pipelines in the editor: what yaml-language-server makes of the schema's `pipelines` (see
// editor.test.ts for how the server is driven). Diagnostics on the right lines, completion of
// the keys and of the datatypes. Model, step and tensor names cannot be completed (a JSON Schema
// cannot list what the document or its ONNX files declare): `bento-run validate` checks those.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type Diagnostic, fileUri, LspClient, type Position } from './helpers/lsp-client.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCHEMA_PATH = join(ROOT, 'schema', 'bentofile.schema.json');
const NO_NETWORK = join(ROOT, 'test', 'fixtures', 'editor', 'no-network.mjs');

const BAD = `# yaml-language-server: $schema=${SCHEMA_PATH}
version: 1
models:
  m: { path: m.onnx }
services:
  api: { models: [m] }
pipelines:
  p:
    inputs:
      x: { datatype: fp32, shape: [-1, 4] }
    steps:
      s:
        model: m
        inputs:
          input: { input: x, from: y }
    outputs:
      y: { step: s }
`;

const TYPING = `# yaml-language-server: $schema=${SCHEMA_PATH}
version: 1
models:
  m: { path: m.onnx }
services:
  api: { models: [m] }
pipelines:
  p:
    inputs:
      x:
        datatype: F
        shape: [-1, 4]
    steps:
      s:
        model: m
        inputs:
          input:
            st
    o
`;

/** The position just after `needle` on its (one) line. */
function endOf(text: string, needle: string): Position {
  const lines = text.split('\n');
  const line = lines.findIndex((l) => l.includes(needle));
  assert.ok(line >= 0, `no line with ${JSON.stringify(needle)}`);
  return { line, character: lines[line]!.indexOf(needle) + needle.length };
}

const lineOf = (text: string, needle: string) => endOf(text, needle).line;

describe('editor support for pipelines', () => {
  let client: LspClient;
  let tmp: string;
  let bad: { uri: string; diagnostics: Diagnostic[] };
  let typing: string;

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'bento-pipeline-editor-'));
    await writeFile(join(tmp, 'bad.yaml'), BAD);
    await writeFile(join(tmp, 'typing.yaml'), TYPING);
    client = await LspClient.start({
      cwd: ROOT,
      nodeArgs: [`--import=${pathToFileURL(NO_NETWORK).href}`],
    });
    const uri = fileUri(join(tmp, 'bad.yaml'));
    bad = { uri, diagnostics: await client.open(uri, BAD) };
    typing = fileUri(join(tmp, 'typing.yaml'));
    await client.open(typing, TYPING);
  });

  after(async () => {
    await client?.shutdown();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  test('a wrong datatype, an unknown key and a missing key, each on its line', () => {
    const lines = bad.diagnostics.map((d) => d.range.start.line).sort((a, b) => a - b);
    assert.deepEqual(lines, [
      lineOf(BAD, 'datatype: fp32'),
      lineOf(BAD, 'from: y'),
      lineOf(BAD, 'y: { step: s }'),
    ]);
  });

  test('completes the datatypes', async () => {
    const items = await client.completion(typing, endOf(TYPING, 'datatype: F'));
    const labels = items.map((i) => i.label);
    for (const d of ['FP16', 'FP32', 'FP64']) assert.ok(labels.includes(d), JSON.stringify(labels));
  });

  test("completes a source's keys and a pipeline's keys", async () => {
    const source = (await client.completion(typing, endOf(TYPING, '            st'))).map(
      (i) => i.label,
    );
    for (const k of ['input', 'step', 'output']) {
      assert.ok(source.includes(k), `no ${k} in ${JSON.stringify(source)}`);
    }
    const pipeline = (await client.completion(typing, endOf(TYPING, '    o'))).map((i) => i.label);
    assert.ok(pipeline.includes('outputs'), JSON.stringify(pipeline));
  });
});
