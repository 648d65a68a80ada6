// Editor support: drives the real yaml-language-server (the server behind the VS Code YAML
// extension and most other editors' YAML support) over stdio, as an editor does, against
// schema/bentofile.schema.json, and checks what a user sees: diagnostics on the right lines,
// completions, hovers. Documents are opened under their real file:// URIs, so the relative
// `$schema` modelines resolve as they do in a user's editor. One server serves every test, every
// document is opened at once (the server validates each 200 ms after it opens), and a preloaded
// guard refuses network connections: the whole file takes about a second and needs no network.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  type CompletionItem,
  type Diagnostic,
  fileUri,
  hoverText,
  LspClient,
  type Position,
} from './helpers/lsp-client.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCHEMA_PATH = join(ROOT, 'schema', 'bentofile.schema.json');
const FIXTURES = join(ROOT, 'test', 'fixtures', 'editor');
const SPECS = join(ROOT, 'specs');
const MODELINE = /^# yaml-language-server: \$schema=\S+$/;

/** The GPU types an editor must offer for `gpu_type` (the schema may list more). */
const GPU_TYPES = [
  'nvidia-tesla-t4',
  'nvidia-l4',
  'nvidia-tesla-a100',
  'nvidia-a100-80gb',
  'nvidia-h100',
  'nvidia-h200',
];

// bad.yaml, 0-based as in LSP (an editor shows line + 1). Checked against the file below.
const WRONG_TYPE_LINE = 16; // `      gpu: two`
const UNKNOWN_KEY_LINE = 17; // `      gpu_typ: nvidia-l4`

type SchemaNode = { [keyword: string]: unknown };

function schemaNode(schema: SchemaNode, ...path: string[]): SchemaNode {
  let node: unknown = schema;
  for (const key of path) {
    node = (node as SchemaNode | undefined)?.[key];
    assert.ok(node !== undefined, `schema has no ${path.join('.')}`);
  }
  return node as SchemaNode;
}

function markdownDescription(node: SchemaNode): string {
  const text = node.markdownDescription;
  assert.equal(typeof text, 'string', 'schema node without markdownDescription');
  return text as string;
}

/** 0-based index of the one line of `text`, comments aside, that contains `needle`. */
function lineOf(text: string, needle: string): number {
  const lines = text.split('\n');
  const hits = lines.flatMap((line, i) =>
    line.includes(needle) && !line.trimStart().startsWith('#') ? [i] : [],
  );
  assert.equal(hits.length, 1, `expected one line with ${JSON.stringify(needle)}, found ${hits}`);
  return hits[0]!;
}

/** The position just after `needle`, on the one line that contains it. */
function endOf(text: string, needle: string): Position {
  const line = lineOf(text, needle);
  const character = text.split('\n')[line]!.indexOf(needle) + needle.length;
  return { line, character };
}

/** The position of the first character of `needle`, on the one line that contains it. */
function at(text: string, needle: string): Position {
  const line = lineOf(text, needle);
  return { line, character: text.split('\n')[line]!.indexOf(needle) };
}

function labels(items: CompletionItem[]): string[] {
  return items.map((i) => i.label);
}

function show(diagnostics: Diagnostic[]): string {
  return JSON.stringify(
    diagnostics.map((d) => ({ line: d.range.start.line, message: d.message })),
    null,
    1,
  );
}

interface Doc {
  path: string;
  uri: string;
  text: string;
  diagnostics: Diagnostic[];
}

describe('editor support: yaml-language-server with schema/bentofile.schema.json', () => {
  let client: LspClient;
  let schema: SchemaNode;
  let tmp: string;
  const docs = new Map<string, Doc>();
  let specNames: string[] = [];

  function doc(name: string): Doc {
    const d = docs.get(name);
    assert.ok(d, `document ${name} was not opened`);
    return d;
  }

  before(async () => {
    schema = JSON.parse(await readFile(SCHEMA_PATH, 'utf8')) as SchemaNode;
    tmp = await mkdtemp(join(tmpdir(), 'bento-editor-'));

    // Files to open: name -> path on disk. The temp files are written first: their URIs must
    // name real files, like every other document here.
    const files = new Map<string, string>();
    for (const f of ['bad', 'complete', 'object-messages', 'non-nvidia-gpu-type']) {
      files.set(f, join(FIXTURES, `${f}.yaml`));
    }
    specNames = (await readdir(SPECS)).filter((f) => f.endsWith('.yaml')).sort();
    for (const f of specNames) files.set(`specs/${f}`, join(SPECS, f));
    // bad.yaml with the other ways to name the schema. The modeline stays on line 1 (or becomes a
    // plain comment) so that every line keeps its number.
    const bad = await readFile(join(FIXTURES, 'bad.yaml'), 'utf8');
    const [modeline, ...rest] = bad.split('\n');
    assert.match(modeline!, MODELINE);
    const variants: [name: string, firstLine: string][] = [
      ['abs-path.yaml', `# yaml-language-server: $schema=${SCHEMA_PATH}`],
      ['file-url.yaml', `# yaml-language-server: $schema=${pathToFileURL(SCHEMA_PATH).href}`],
      // No modeline: the yaml.schemas setting below associates the schema with bentofile.yaml.
      ['bentofile.yaml', '# (no modeline: the yaml.schemas setting applies)'],
    ];
    for (const [name, firstLine] of variants) {
      await writeFile(join(tmp, name), [firstLine, ...rest].join('\n'));
      files.set(`tmp/${name}`, join(tmp, name));
    }

    client = await LspClient.start({
      cwd: ROOT,
      nodeArgs: [`--import=${pathToFileURL(join(FIXTURES, 'no-network.mjs')).href}`],
      yaml: { schemas: { [pathToFileURL(SCHEMA_PATH).href]: '**/bentofile.yaml' } },
    });
    await Promise.all(
      [...files].map(async ([name, path]) => {
        const text = await readFile(path, 'utf8');
        const uri = fileUri(path);
        const diagnostics = await client.open(uri, text);
        docs.set(name, { path, uri, text, diagnostics });
      }),
    );
  });

  after(async () => {
    await client?.shutdown();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  test('reports the unknown key and the wrong type, each on its line', () => {
    const { text, diagnostics } = doc('bad');
    const lines = text.split('\n');
    assert.match(
      lines[WRONG_TYPE_LINE]!,
      /^ {6}gpu: two$/,
      'bad.yaml changed: fix WRONG_TYPE_LINE',
    );
    assert.match(
      lines[UNKNOWN_KEY_LINE]!,
      /^ {6}gpu_typ: nvidia-l4$/,
      'bad.yaml changed: fix UNKNOWN_KEY_LINE',
    );
    assert.deepEqual(
      diagnostics.map((d) => d.range.start.line).sort((a, b) => a - b),
      [WRONG_TYPE_LINE, UNKNOWN_KEY_LINE],
      `expected exactly the two problems of bad.yaml, got ${show(diagnostics)}`,
    );

    const unknown = diagnostics.find((d) => d.range.start.line === UNKNOWN_KEY_LINE)!;
    // yaml-language-server 1.x: "Property gpu_typ is not allowed."
    assert.equal(typeof unknown.message, 'string');
    assert.match(unknown.message as string, /\bgpu_typ\b.*not allowed/);
    assert.equal(unknown.severity, 1, 'an error');
    // The squiggle is on the key.
    assert.deepEqual(unknown.range, {
      start: { line: UNKNOWN_KEY_LINE, character: 6 },
      end: { line: UNKNOWN_KEY_LINE, character: 6 + 'gpu_typ'.length },
    });

    const wrongType = diagnostics.find((d) => d.range.start.line === WRONG_TYPE_LINE)!;
    assert.equal(typeof wrongType.message, 'string');
    assert.match(wrongType.message as string, /integer/, 'says that gpu is an integer');
    assert.equal(wrongType.severity, 1, 'an error');
    // The squiggle is on the value.
    assert.deepEqual(wrongType.range, {
      start: { line: WRONG_TYPE_LINE, character: 11 },
      end: { line: WRONG_TYPE_LINE, character: 11 + 'two'.length },
    });
  });

  test('finds the schema through an absolute path, a file:// URL or yaml.schemas, like the relative modeline', () => {
    const expected = show(doc('bad').diagnostics);
    for (const name of ['tmp/abs-path.yaml', 'tmp/file-url.yaml', 'tmp/bentofile.yaml']) {
      assert.equal(show(doc(name).diagnostics), expected, name);
    }
  });

  test('the example specs, quickstart first, declare the schema and have no diagnostics', () => {
    assert.ok(specNames.includes('quickstart.yaml'), 'specs/quickstart.yaml is missing');
    for (const name of ['quickstart.yaml', ...specNames.filter((n) => n !== 'quickstart.yaml')]) {
      const { text, diagnostics } = doc(`specs/${name}`);
      assert.match(text.split('\n')[0]!, MODELINE, `specs/${name}: no schema modeline on line 1`);
      assert.deepEqual(diagnostics, [], `specs/${name}: ${show(diagnostics)}`);
    }
  });

  test('completes gpu_type with the known GPU types', async () => {
    const { uri, text } = doc('complete');
    // Half typed: `gpu_type: nvidia-|`.
    const typing = endOf(text, 'gpu_type: nvidia-');
    const items = await client.completion(uri, typing);
    for (const type of GPU_TYPES) {
      assert.ok(labels(items).includes(type), `no ${type} in ${JSON.stringify(labels(items))}`);
    }
    // Each replaces what was typed of the value.
    const l4 = items.find((i) => i.label === 'nvidia-l4')!;
    assert.deepEqual(l4.textEdit, {
      range: { start: { line: typing.line, character: typing.character - 7 }, end: typing },
      newText: 'nvidia-l4',
    });

    // Nothing typed yet: `gpu_type: |` (an unsaved edit of the same file).
    const empty = text.replace('gpu_type: nvidia-', 'gpu_type: ');
    await client.change(uri, empty);
    try {
      const items = await client.completion(uri, endOf(empty, 'gpu_type: '));
      for (const type of GPU_TYPES) {
        assert.ok(labels(items).includes(type), `no ${type} in ${JSON.stringify(labels(items))}`);
      }
    } finally {
      await client.change(uri, text);
    }
  });

  test('completes the keys of a service', async () => {
    const { uri, text } = doc('complete');
    const items = await client.completion(uri, endOf(text, '    w'));
    for (const key of ['resources', 'workers', 'traffic']) {
      assert.ok(labels(items).includes(key), `no ${key} in ${JSON.stringify(labels(items))}`);
    }
    const resources = items.find((i) => i.label === 'resources')!;
    const documentation = resources.documentation;
    assert.ok(typeof documentation === 'object', 'resources has markdown documentation');
    assert.ok(
      documentation.value.includes(
        markdownDescription(
          schemaNode(schema, 'definitions', 'service', 'properties', 'resources'),
        ),
      ),
      documentation.value,
    );
  });

  test("hover on a key shows the schema's markdownDescription", async () => {
    const { uri, text } = doc('complete');
    const resources = hoverText(await client.hover(uri, at(text, 'resources:')));
    const resourcesDoc = markdownDescription(
      schemaNode(schema, 'definitions', 'service', 'properties', 'resources'),
    );
    assert.ok(resources.includes(resourcesDoc), `hover on resources: ${resources}`);

    // Through a $ref: resources.gpu_type -> definitions.gpuType.
    const gpuType = hoverText(await client.hover(uri, at(text, 'gpu_type:')));
    const gpuTypeDoc = markdownDescription(schemaNode(schema, 'definitions', 'gpuType'));
    assert.ok(gpuType.includes(gpuTypeDoc), `hover on gpu_type: ${gpuType}`);
  });

  test('every diagnostic message is a string, as LSP requires', () => {
    const problems = [...docs].flatMap(([name, d]) =>
      d.diagnostics
        .filter((x) => typeof x.message !== 'string')
        .map((x) => `${name}:${x.range.start.line + 1}: ${JSON.stringify(x.message)}`),
    );
    assert.equal(
      doc('object-messages').diagnostics.length,
      5,
      show(doc('object-messages').diagnostics),
    );
    assert.deepEqual(problems, []);
  });

  test("a gpu_type that is not nvidia-* gets the schema's errorMessage", () => {
    const { text, diagnostics } = doc('non-nvidia-gpu-type');
    assert.deepEqual(
      diagnostics.map((d) => ({ line: d.range.start.line, message: d.message })),
      [
        {
          line: lineOf(text, 'gpu_type: amd-mi300x'),
          message: schemaNode(schema, 'definitions', 'gpuType').errorMessage,
        },
      ],
    );
  });

  test('never reached for the network', () => {
    assert.ok(!client.stderr.includes('[no-network]'), client.stderr);
  });
});

describe('editor support: the schema finds editors without a modeline', () => {
  interface Catalog {
    $schema: string;
    version: number;
    schemas: { name: string; description: string; fileMatch: string[]; url: string }[];
  }
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    name: string;
    files: string[];
    exports: Record<string, string>;
  };

  test('the schema has an $id (a URL) and a title', () => {
    const schema = JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')) as SchemaNode;
    assert.equal(typeof schema.title, 'string');
    assert.match(schema.title as string, /bento-run/);
    assert.match(String(schema.$id), /^https:\/\/\S+\/bentofile\.schema\.json$/);
  });

  test("the shipped catalog entry (SchemaStore's format) matches bentofile.yaml and points at the shipped schema", () => {
    const catalog = JSON.parse(
      readFileSync(join(ROOT, 'schema', 'catalog.json'), 'utf8'),
    ) as Catalog;
    const schema = JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')) as SchemaNode;
    assert.equal(catalog.$schema, 'https://json.schemastore.org/schema-catalog.json');
    assert.equal(catalog.version, 1);
    assert.equal(catalog.schemas.length, 1);
    const [entry] = catalog.schemas;
    assert.deepEqual(entry!.fileMatch, ['bentofile.yaml', 'bentofile.yml']);
    assert.ok(entry!.name && entry!.description);
    // The URL is the schema's own $id: the file this package ships at schema/, as a CDN of the
    // npm registry serves it.
    assert.equal(entry!.url, schema.$id);
    assert.ok(entry!.url.endsWith(`/${pkg.name}/schema/bentofile.schema.json`), entry!.url);
    assert.ok(pkg.files.includes('schema'), 'package.json files ships schema/');
    assert.equal(pkg.exports['./schema/catalog.json'], './schema/catalog.json');
  });
});
