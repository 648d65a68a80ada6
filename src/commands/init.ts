/**
 * `bento-run init model.onnx [more.onnx...] [-o bentofile.yaml] [--force]`: a commented spec
 * that validates and serves at once, written from the models' own signatures (read by
 * spec/onnx-info.ts, as the validator reads them): one model per file, named from the file,
 * one CPU service, batching exactly where dimension 0 is dynamic on every input and output.
 * Then it prints how to serve the spec and a curl line per model with its real inputs.
 */
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { stringify } from 'yaml';
import { EXIT_OK, InitError, UsageError } from '../errors.js';
import { type OnnxInfo, type OnnxTensorInfo, readOnnxInfo } from '../spec/onnx-info.js';
import { protocolDatatype } from '../spec/pipeline-shapes.js';
import { SCHEMA_PATH, schemaText } from '../spec/schema.js';
import { DEFAULTS } from '../spec/types.js';
import { plural } from '../util/text.js';
import type { CliIO, CommandDefinition, Options } from './types.js';

const USAGE = `bento-run init MODEL.onnx [MODEL.onnx...] [-o FILE] [--force]

Writes a commented spec for these ONNX models that validates and serves as it is: one model
per file (named from the file), one service on the CPU, batching where dimension 0 is dynamic
on every input and output, and the schema modeline on top for your editor. Then prints the
command that serves it and a curl line per model with its real input names and shapes.
  -o, --output  the spec to write, or a folder for its bentofile.yaml (default: bentofile.yaml)
  --force       overwrite the output if it exists
Exit 0 when written, 2 when a file is not an ONNX model or the output exists.`;

/** The one service init writes: every model, on the CPU. */
const INIT_SERVICE = 'main';

export interface InitModel {
  /** The model's name in the spec: the file's name, made a valid model name. */
  readonly name: string;
  /** The path as the spec writes it: relative to the spec's folder. */
  readonly path: string;
  readonly info: OnnxInfo;
}

/** `my model.v2.onnx` -> `my_model.v2`: letters, digits, '_', '.', '-', a letter or digit first. */
export function modelNameOf(file: string): string {
  const stem = basename(file).replace(/\.onnx$/i, '');
  const name = stem
    .replace(/[^A-Za-z0-9_.-]+/g, '_')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 128);
  return name === '' ? 'model' : name;
}

/** The spec's `name`: a DNS-1123 label from the first model's name, or the default. */
function specNameOf(model: string): string {
  const label = model
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+/, '')
    .slice(0, 63)
    .replace(/-+$/, '');
  return label === '' ? DEFAULTS.name : label;
}

const kindOf = (info: OnnxInfo, t: OnnxTensorInfo) =>
  info.inputs.includes(t) ? 'input' : 'output';

/**
 * Why a model cannot be batched (dimension 0 is not known to be dynamic on every input and
 * output), or null when it can. The validator refuses batching on a fixed dimension 0.
 */
export function whyNotBatched(info: OnnxInfo): string | null {
  for (const t of [...info.inputs, ...info.outputs]) {
    const what = `${kindOf(info, t)} \`${t.name}\``;
    if (t.dims === null) return `the file does not give the shape of ${what}`;
    if (t.dims.length === 0) return `${what} is a scalar, with no dimension 0`;
    if (typeof t.dims[0] === 'number') return `dimension 0 of ${what} is fixed at ${t.dims[0]}`;
  }
  return null;
}

/** `FP32 [batch, 4]`, as the comments show a tensor. */
function describeTensor(t: OnnxTensorInfo): string {
  const type = protocolDatatype(t.elementType) ?? t.elementType;
  const dims = t.dims === null ? 'shape unknown' : `[${t.dims.map((d) => d ?? '?').join(', ')}]`;
  return `${type} ${dims}`;
}

/** A YAML scalar as `yaml` writes it: plain where it can be, quoted where it must. */
const scalar = (s: string) => stringify(s).trimEnd();

/**
 * A path as the spec writes it: relative to the spec's folder (forward slashes), so that the
 * folder can move with its models; absolute when the two share no folder but the root.
 */
function specPath(from: string, file: string): string {
  const rel = relative(from, file);
  const climbs = rel.split(sep).filter((s) => s === '..').length;
  const depth = from.split(sep).filter((s) => s !== '').length;
  return isAbsolute(rel) || (climbs > 0 && climbs >= depth) ? file : rel.split(sep).join('/');
}

/**
 * The `$schema` the modeline names: a path relative to the spec when the schema travels with
 * the project (bento-run installed in a node_modules above the spec's folder, or a checkout of
 * bento-run holding it), else the schema's published URL (its `$id`), which editors fetch:
 * a path into npx's cache or a global install would break on any other machine.
 */
export function schemaReference(outDir: string, schemaFile = SCHEMA_PATH): string {
  const packageRoot = dirname(dirname(schemaFile));
  const parent = dirname(packageRoot);
  const project =
    basename(parent) === 'node_modules'
      ? dirname(parent)
      : basename(dirname(parent)) === 'node_modules' && basename(parent).startsWith('@')
        ? dirname(dirname(parent))
        : packageRoot;
  const inside = relative(project, outDir);
  const travels =
    !inside.startsWith('..') && !isAbsolute(inside) && !packageRoot.includes(`${sep}_npx${sep}`);
  if (!travels) return (JSON.parse(schemaText()) as { $id: string }).$id;
  const rel = specPath(outDir, schemaFile);
  return rel.startsWith('.') ? rel : `./${rel}`;
}

function modelBlock(m: InitModel): string[] {
  const lines = [`  ${scalar(m.name)}:`, `    path: ${scalar(m.path)}`];
  for (const t of m.info.inputs) lines.push(`    # input  ${t.name}: ${describeTensor(t)}`);
  for (const t of m.info.outputs) lines.push(`    # output ${t.name}: ${describeTensor(t)}`);
  const why = whyNotBatched(m.info);
  if (why === null) {
    lines.push(
      '    batching:  # dimension 0 is dynamic on every input and output: requests merge along it',
      `      max_batch_size: ${DEFAULTS.maxBatchSize}`,
      `      max_latency_ms: ${DEFAULTS.maxLatencyMs}`,
    );
  } else {
    lines.push(`    # no batching: ${why}; batching merges requests along dimension 0`);
  }
  return lines;
}

/** The spec's text: the modeline, a header, every model, one CPU service, the server. */
function initSpecText(models: readonly InitModel[], schema: string): string {
  const names = models.map((m) => scalar(m.name));
  return [
    `# yaml-language-server: $schema=${schema}`,
    `# Written by \`bento-run init\` from ${plural(models.length, 'ONNX model')}. Every key is`,
    "# documented in the schema (hover over it in your editor) and in bento-run's README.",
    'version: 1',
    `name: ${specNameOf(models[0]!.name)}  # a DNS-1123 label; Kubernetes names derive from it`,
    '',
    '# Model name -> model. The name is the URL: POST /v2/models/NAME/infer',
    'models:',
    ...models.flatMap(modelBlock),
    '',
    'services:',
    `  ${INIT_SERVICE}:  # one service on the CPU, holding every model`,
    `    models: [${names.join(', ')}]`,
    '    workers: 1  # worker threads, each with its own sessions of every model',
    '    # resources: { gpu: 1 }  # a GPU for this service; `bento-run doctor` checks this machine',
    '',
    'server:',
    `  host: ${DEFAULTS.host}  # 0.0.0.0 to accept other machines; --host overrides`,
    `  port: ${DEFAULTS.port}  # --port overrides`,
    '',
  ].join('\n');
}

/** `'text'` for a POSIX shell. */
function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Beyond this, the request body is made by node on the fly rather than written on the line. */
const MAX_INLINE_BODY = 8000;

/**
 * A curl line that sends the model a request of its real inputs: dynamic dimensions 1, every
 * element zero (false, ""); null when an input has no datatype the protocol can carry.
 */
export function curlLine(model: InitModel, base = `localhost:${DEFAULTS.port}`): string | null {
  const inputs: { name: string; shape: number[]; datatype: string; count: number }[] = [];
  for (const t of model.info.inputs) {
    const datatype = protocolDatatype(t.elementType);
    if (datatype === null) return null;
    const shape = (t.dims ?? [1]).map((d) => (typeof d === 'number' ? d : 1));
    inputs.push({ name: t.name, shape, datatype, count: shape.reduce((a, b) => a * b, 1) });
  }
  const zero = (datatype: string) => (datatype === 'BOOL' ? false : datatype === 'BYTES' ? '' : 0);
  const url = `${base}/v2/models/${encodeURIComponent(model.name)}/infer -H 'content-type: application/json'`;
  const body = JSON.stringify({
    inputs: inputs.map((i) => ({
      name: i.name,
      shape: i.shape,
      datatype: i.datatype,
      data: new Array(i.count).fill(zero(i.datatype)),
    })),
  });
  if (body.length <= MAX_INLINE_BODY) return `curl -s ${url} -d ${shellQuote(body)}`;
  // Too long for one shell argument: node writes the same body into curl's stdin.
  const template = JSON.stringify({
    inputs: inputs.map((i) => ({
      name: i.name,
      shape: i.shape,
      datatype: i.datatype,
      data: [i.count, zero(i.datatype)],
    })),
  });
  const make = `const b=${template};for(const i of b.inputs)i.data=new Array(i.data[0]).fill(i.data[1]);process.stdout.write(JSON.stringify(b))`;
  return `node -e ${shellQuote(make)} | curl -s ${url} --data-binary @-`;
}

/** Reads every model file; any that is not an ONNX model stops init before it writes. */
function readModels(files: readonly string[], outDir: string): InitModel[] {
  const taken = new Set<string>();
  return files.map((file) => {
    const r = readOnnxInfo(file);
    if (!r.ok) {
      const why = r.missing ? '' : ': `init` writes a spec for ONNX model files (.onnx)';
      throw new InitError('BENTO_ERR_INIT_NOT_ONNX', `${file} ${r.reason}${why}`);
    }
    let name = modelNameOf(file);
    for (let n = 2; taken.has(name); n++) name = `${modelNameOf(file)}-${n}`;
    taken.add(name);
    return { name, path: specPath(outDir, resolve(file)), info: r.info };
  });
}

/** `-o`: a file, or a folder for its bentofile.yaml. */
function outputFile(output: string | undefined): string {
  const out = output ?? 'bentofile.yaml';
  return existsSync(out) && statSync(out).isDirectory() ? join(out, 'bentofile.yaml') : out;
}

function write(file: string, text: string, force: boolean): void {
  try {
    mkdirSync(dirname(resolve(file)), { recursive: true });
    writeFileSync(file, text, { flag: force ? 'w' : 'wx' });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'EEXIST') {
      throw new InitError(
        'BENTO_ERR_INIT_EXISTS',
        `${file} exists; pass --force to overwrite it, or -o to write elsewhere`,
      );
    }
    throw new InitError('BENTO_ERR_INIT_OUTPUT', `cannot write ${file}: ${err.message}`, {
      cause: e,
    });
  }
}

function init(files: string[], opts: Options, io: CliIO): number {
  if (files.length === 0) {
    throw new UsageError(`\`init\` needs an ONNX model file\n\nUsage: ${USAGE}\n`);
  }
  const file = outputFile(opts.output);
  const outDir = dirname(resolve(file));
  const models = readModels(files, outDir);
  write(file, initSpecText(models, schemaReference(outDir)), opts.force === true);
  const batched = models.filter((m) => whyNotBatched(m.info) === null).map((m) => m.name);
  io.stdout(
    `wrote ${file}: ${plural(models.length, 'model')} in service \`${INIT_SERVICE}\` on the CPU` +
      `${batched.length > 0 ? `, batching ${batched.join(', ')}` : ''}\n\n`,
  );
  const serve = /\.ya?ml$/i.test(file) ? shellQuote(file) : `serve ${shellQuote(file)}`;
  io.stdout(`Serve it:\n  npx bento-run ${serve}\n\nThen, from another terminal:\n`);
  for (const m of models) {
    const curl = curlLine(m);
    io.stdout(
      curl === null
        ? `  (model \`${m.name}\` has an input of a type the protocol has no datatype for)\n`
        : `  ${curl}\n`,
    );
  }
  return EXIT_OK;
}

export const initCommand: CommandDefinition = {
  summary: 'write a spec for ONNX model files that validates and serves',
  usage: USAGE,
  options: ['output', 'force'],
  run: init,
};
