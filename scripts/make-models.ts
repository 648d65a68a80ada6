// Writes the small ONNX models committed under specs/models and test/fixtures/models, and (on
// demand) the large benchmark models, which are never committed.
//
//   node dist/scripts/make-models.js [--root DIR] [--bench]
//
// --root writes under DIR instead of the repository root (used to check reproducibility);
// --bench also creates the missing models in <root>/bench/models.
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import {
  encodeModel,
  GraphBuilder,
  type MlpOptions,
  makeClassifier,
  makeCnn,
  makeFixedBatch,
  makeIdentityAllTypes,
  makeMlp,
  makeSlow,
  makeTiny,
  makeTwoInputs,
} from './onnx-builder.js';

/** A file to write, its path relative to the repository root. */
export interface ModelFile {
  readonly path: string;
  readonly bytes: Uint8Array;
}

/** Options of the committed MLPs, exported so tests can recompute their outputs. */
export const MODEL1: MlpOptions = { inputs: 8, hidden: 32, layers: 1, outputs: 4, seed: 1 };
export const MODEL2: MlpOptions = { inputs: 8, hidden: 32, layers: 1, outputs: 4, seed: 2 };
export const EMBEDDER: MlpOptions = {
  inputs: 16,
  hidden: 64,
  layers: 1,
  outputs: 8,
  seed: 3,
  outputName: 'embedding',
};
export const RERANKER: MlpOptions = {
  inputs: 8,
  hidden: 16,
  layers: 1,
  outputs: 1,
  seed: 4,
  outputName: 'score',
};
/** The benchmark's large MLP: 16 -> 4096 -> 4096 -> 16, about 67 MB of float32 weights. */
export const MLP_4096: MlpOptions = { inputs: 16, hidden: 4096, layers: 2, outputs: 16, seed: 5 };

/** The committed CNN: smaller than the benchmark's makeCnn() default (about 1 ms, 230 kB). */
export const CNN_SMALL_CHANNELS: readonly number[] = [32, 64, 64];

export const NOT_ONNX = 'this is not an onnx model\n';

/** Every committed model file, in a fixed order. */
export function committedModels(): ModelFile[] {
  const model1 = makeMlp(MODEL1);
  const model2 = makeMlp(MODEL2);
  const classifier = makeClassifier();
  return [
    { path: 'specs/models/classifier.onnx', bytes: classifier },
    { path: 'specs/models/model1.onnx', bytes: model1 },
    { path: 'specs/models/model2.onnx', bytes: model2 },
    { path: 'specs/models/embedder.onnx', bytes: makeMlp(EMBEDDER) },
    { path: 'specs/models/reranker.onnx', bytes: makeMlp(RERANKER) },
    { path: 'test/fixtures/models/classifier.onnx', bytes: classifier },
    { path: 'test/fixtures/models/tiny.onnx', bytes: makeTiny() },
    { path: 'test/fixtures/models/types.onnx', bytes: makeIdentityAllTypes() },
    { path: 'test/fixtures/models/fixed-batch.onnx', bytes: makeFixedBatch() },
    { path: 'test/fixtures/models/slow.onnx', bytes: makeSlow() },
    { path: 'test/fixtures/models/two-inputs.onnx', bytes: makeTwoInputs() },
    { path: 'test/fixtures/models/model1.onnx', bytes: model1 },
    { path: 'test/fixtures/models/model2.onnx', bytes: model2 },
    {
      path: 'test/fixtures/models/cnn-small.onnx',
      bytes: makeCnn({ channels: CNN_SMALL_CHANNELS }),
    },
    { path: 'test/fixtures/models/not-onnx.onnx', bytes: new TextEncoder().encode(NOT_ONNX) },
  ];
}

/**
 * Writes a file through a temporary name and a rename, so a concurrent reader (another test
 * process, a benchmark) never sees a half-written model.
 */
async function writeAtomic(path: string, bytes: Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    await writeFile(tmp, bytes);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Writes `files` under `root`, skipping files whose bytes are already the same (keeps mtimes). */
export async function writeModels(
  root: string,
  files: readonly ModelFile[] = committedModels(),
): Promise<string[]> {
  const written: string[] = [];
  for (const f of files) {
    const path = join(root, f.path);
    const current = await readFile(path).catch(() => undefined);
    if (current && Buffer.compare(current, f.bytes) === 0) continue;
    await writeAtomic(path, f.bytes);
    written.push(path);
  }
  return written;
}

/** Paths of the benchmark models. */
export interface BenchModels {
  readonly tiny: string;
  readonly cnn: string;
  readonly mlp4096: string;
  readonly image: string;
}

/** [1,3,224,224] -> GlobalAveragePool -> [1,3]: almost no compute, all of it in the request. */
function makeImagePool(): Uint8Array {
  const g = new GraphBuilder('image_pool');
  const image = g.input('image', 'float32', ['batch', 3, 224, 224]);
  g.output('mean', 'float32', ['batch', 3]);
  g.op('Flatten', [g.op('GlobalAveragePool', [image])], { axis: { int: 1 } }, 'mean');
  return encodeModel(g.build());
}

/**
 * Creates the benchmark models in `dir` (normally bench/models, git-ignored) unless present.
 * Existing files are trusted: generation is deterministic, and the 67 MB MLP takes seconds.
 */
export async function ensureBenchModels(dir: string): Promise<BenchModels> {
  const models: BenchModels = {
    tiny: join(dir, 'tiny.onnx'),
    cnn: join(dir, 'cnn.onnx'),
    mlp4096: join(dir, 'mlp-4096.onnx'),
    image: join(dir, 'image-pool.onnx'),
  };
  const makers: readonly [string, () => Uint8Array][] = [
    [models.tiny, makeTiny],
    [models.cnn, () => makeCnn()],
    [models.mlp4096, () => makeMlp(MLP_4096)],
    [models.image, makeImagePool],
  ];
  for (const [path, make] of makers) {
    if (!existsSync(path)) await writeAtomic(path, make());
  }
  return models;
}

/** dist/scripts/make-models.js -> the repository root. */
export function repoRoot(): string {
  return fileURLToPath(new URL('../../', import.meta.url));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { root: { type: 'string' }, bench: { type: 'boolean', default: false } },
  });
  const root = resolve(values.root ?? repoRoot());
  const files = committedModels();
  const written = await writeModels(root, files);
  console.log(`${written.length} of ${files.length} model files written under ${root}`);
  for (const p of written) console.log(`  ${p}`);
  if (values.bench) {
    const bench = await ensureBenchModels(join(root, 'bench', 'models'));
    console.log(`bench models: ${Object.values(bench).join(', ')}`);
  }
}

// Run only as a CLI, not when imported by tests or the benchmark.
if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
