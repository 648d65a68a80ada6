// The small models that pipelines need beside the committed ones (make-models.ts): a join for
// the diamond example (specs/pipeline.yaml) and a cast for the datatype cases of the bad-spec
// corpus. Deterministic, like every model the builder makes.
//
//   node dist/scripts/pipeline-models.js [--root DIR]
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { type ModelFile, repoRoot, writeModels } from './make-models.js';
import { encodeModel, GraphBuilder, ONNX_DATA_TYPE } from './onnx-builder.js';

/** Width of the average model's tensors: the outputs of model1 and model2 (8 -> 4). */
export const AVERAGE_WIDTH = 4;

/** `a`, `b` float32 [batch, 4] -> `mean` = (a + b) / 2, float32 [batch, 4]: joins two steps. */
export function makeAverage(width = AVERAGE_WIDTH): Uint8Array {
  const g = new GraphBuilder('average');
  const a = g.input('a', 'float32', ['batch', width]);
  const b = g.input('b', 'float32', ['batch', width]);
  g.output('mean', 'float32', ['batch', width]);
  g.op('Mean', [a, b], {}, 'mean');
  return encodeModel(g.build());
}

/** `x` float32 [batch, 4] -> `y` int64 [batch, 4] (Cast, truncating): an output of another type. */
export function makeToInt64(): Uint8Array {
  const g = new GraphBuilder('to_int64');
  const x = g.input('x', 'float32', ['batch', 4]);
  g.output('y', 'int64', ['batch', 4]);
  g.op('Cast', [x], { to: { int: ONNX_DATA_TYPE.int64 } }, 'y');
  return encodeModel(g.build());
}

/** The pipeline models, their paths relative to the repository root. */
export function pipelineModels(): ModelFile[] {
  const average = makeAverage();
  return [
    { path: 'specs/models/average.onnx', bytes: average },
    { path: 'test/fixtures/models/average.onnx', bytes: average },
    { path: 'test/fixtures/models/to-int64.onnx', bytes: makeToInt64() },
  ];
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { root: { type: 'string' } } });
  const root = resolve(values.root ?? repoRoot());
  const files = pipelineModels();
  const written = await writeModels(root, files);
  console.log(`${written.length} of ${files.length} pipeline model files written under ${root}`);
  for (const p of written) console.log(`  ${p}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
