// The resolved Spec (defaults filled, paths absolute), warnings, the example specs, and the
// schema file itself (defaults, documentation, closed objects).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SpecError } from '../src/errors.js';
import {
  DEFAULTS,
  type Diagnostic,
  loadSpec,
  parseSpec,
  SCHEMA_PATH,
  type Spec,
  type ValidateOptions,
  validateSpec,
} from '../src/spec/index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FIXTURES = join(ROOT, 'test/fixtures');
const MODELS = join(FIXTURES, 'models');

/** Validates YAML text as if it were test/fixtures/spec.yaml (model paths: models/…). */
function validate(yaml: string, opts?: ValidateOptions) {
  return validateSpec(parseSpec(yaml, join(FIXTURES, 'spec.yaml')), opts);
}

function spec(yaml: string): Spec {
  return validate(yaml).spec;
}

function problems(yaml: string): Diagnostic[] {
  try {
    validate(yaml);
  } catch (e) {
    if (e instanceof SpecError) return [...e.diagnostics];
    throw e;
  }
  assert.fail('expected the spec to be invalid');
}

const MODELS_12 = `
version: 1
models:
  m1: { path: models/model1.onnx }
  m2: { path: models/model2.onnx }
`;

describe('workers and placement defaults', () => {
  test('workers: N runs worker i on service GPU i mod gpu, with every model there', () => {
    const s = spec(`${MODELS_12}
services:
  pair: { models: [m1, m2], resources: { gpu: 2 }, workers: 3 }
`);
    assert.deepEqual(s.services[0]?.workers, [
      { index: 0, gpus: [0], placement: { m1: 0, m2: 0 } },
      { index: 1, gpus: [1], placement: { m1: 1, m2: 1 } },
      { index: 2, gpus: [0], placement: { m1: 0, m2: 0 } },
    ]);
  });

  test('without workers: one worker per GPU, or one CPU worker', () => {
    const s = spec(`${MODELS_12}
services:
  gpu: { models: [m1], resources: { gpu: 2 } }
  cpu: { models: [m2] }
`);
    assert.deepEqual(
      s.services.map((x) => x.workers),
      [
        [
          { index: 0, gpus: [0], placement: { m1: 0 } },
          { index: 1, gpus: [1], placement: { m1: 1 } },
        ],
        [{ index: 0, gpus: [], placement: {} }],
      ],
    );
  });

  test('a listed worker without gpus gets the GPUs its placement names, else i mod gpu', () => {
    const s = spec(`${MODELS_12}
services:
  pair:
    models: [m1, m2]
    resources: { gpu: 2 }
    workers:
      - {}
      - {}
      - placement: { m2: 1 }
`);
    assert.deepEqual(s.services[0]?.workers, [
      { index: 0, gpus: [0], placement: { m1: 0, m2: 0 } },
      { index: 1, gpus: [1], placement: { m1: 1, m2: 1 } },
      // m1 has no placement: the worker's first GPU, which is the one m2 names.
      { index: 2, gpus: [1], placement: { m1: 1, m2: 1 } },
    ]);
  });

  test("a model without a placement goes on the worker's first GPU", () => {
    const s = spec(`${MODELS_12}
services:
  pair:
    models: [m1, m2]
    resources: { gpu: 2 }
    workers:
      - gpus: [1, 0]
        placement: { m2: 0 }
`);
    assert.deepEqual(s.services[0]?.workers, [
      { index: 0, gpus: [1, 0], placement: { m1: 1, m2: 0 } },
    ]);
  });
});

describe('resolved spec', () => {
  const minimal = `
version: 1
models:
  classifier: { path: models/classifier.onnx }
services:
  api: { models: [classifier] }
`;

  test('fills every default', () => {
    const s = spec(minimal);
    assert.equal(s.name, DEFAULTS.name);
    assert.deepEqual(s.server, {
      host: DEFAULTS.host,
      port: DEFAULTS.port,
      maxBodyMb: DEFAULTS.maxBodyMb,
      grpcPort: DEFAULTS.grpcPort,
      drainTimeoutS: DEFAULTS.drainTimeoutS,
      tls: null,
      auth: null,
      ui: DEFAULTS.ui,
    });
    assert.deepEqual(s.services[0]?.resources, { gpu: 0, gpuType: null, cpu: null, memory: null });
    assert.deepEqual(s.services[0]?.traffic, {
      timeoutS: DEFAULTS.timeoutS,
      maxConcurrency: DEFAULTS.maxConcurrency,
    });
    assert.equal(s.models.classifier?.batching, null);
    assert.deepEqual(s.models.classifier?.session, {
      graphOptimization: DEFAULTS.graphOptimization,
      executionMode: DEFAULTS.executionMode,
    });
  });

  test('batching given as an empty mapping gets the default sizes', () => {
    const s = spec(
      minimal.replace('path: models/classifier.onnx', 'path: models/classifier.onnx, batching: {}'),
    );
    assert.deepEqual(s.models.classifier?.batching, {
      maxBatchSize: DEFAULTS.maxBatchSize,
      maxLatencyMs: DEFAULTS.maxLatencyMs,
      policy: DEFAULTS.batchPolicy,
    });
  });

  test('model paths become absolute, relative to the spec folder, with the file size', () => {
    const s = spec(minimal);
    const path = join(MODELS, 'classifier.onnx');
    assert.equal(s.dir, FIXTURES);
    assert.equal(s.models.classifier?.path, path);
    assert.equal(s.models.classifier?.declaredPath, 'models/classifier.onnx');
    assert.equal(s.models.classifier?.sizeBytes, statSync(path).size);
  });

  test('checkFiles: false skips the files (size 0)', () => {
    const { spec: s } = validate(minimal.replace('classifier.onnx', 'elsewhere.onnx'), {
      checkFiles: false,
    });
    assert.equal(s.models.classifier?.sizeBytes, 0);
  });

  test('the CPU quantity is kept as written, as a string', () => {
    const s = spec(
      minimal.replace(
        '{ models: [classifier] }',
        '{ models: [classifier], resources: { cpu: 0.5, memory: 1Gi } }',
      ),
    );
    assert.deepEqual(s.services[0]?.resources, {
      gpu: 0,
      gpuType: null,
      cpu: '0.5',
      memory: '1Gi',
    });
  });

  test('positions point at the values in the file', () => {
    const s = spec(`version: 1
models:
  classifier:
    path: models/classifier.onnx
services:
  api:
    models: [classifier]
    resources:
      gpu: 1
`);
    assert.deepEqual(s.positions.get('models.classifier.path'), { line: 4, column: 11 });
    assert.deepEqual(s.positions.get('services.api'), { line: 7, column: 5 });
    assert.deepEqual(s.positions.get('services.api.models[0]'), { line: 7, column: 14 });
    assert.deepEqual(s.positions.get('services.api.resources.gpu'), { line: 9, column: 12 });
  });

  test('anchors and aliases validate, each alias as its own copy', () => {
    const s = spec(`version: 1
models:
  a: &model { path: models/tiny.onnx, batching: { max_batch_size: 4 } }
  b: *model
services:
  first: { models: [a], traffic: &traffic { timeout_s: 5 } }
  second: { models: [b], traffic: *traffic }
`);
    assert.equal(s.models.b?.path, join(MODELS, 'tiny.onnx'));
    assert.equal(s.models.b?.batching?.maxBatchSize, 4);
    assert.deepEqual(
      s.services.map((x) => x.traffic.timeoutS),
      [5, 5],
    );
  });
});

describe('warnings', () => {
  test('a model that no service serves', () => {
    const { warnings } = validate(`${MODELS_12}
services:
  api: { models: [m1] }
`);
    assert.deepEqual(
      warnings.map((w) => [w.code, w.severity, w.path, w.line, w.column]),
      [['unused-model', 'warning', 'models.m2', 5, 3]],
    );
  });

  test('gpu_type on a service without GPUs', () => {
    const { warnings } = validate(`${MODELS_12}
services:
  api: { models: [m1, m2], resources: { gpu_type: nvidia-l4 } }
`);
    assert.deepEqual(
      warnings.map((w) => [w.code, w.path]),
      [['gpu-type-without-gpus', 'services.api.resources.gpu_type']],
    );
  });

  test('errors carry the warnings too, in position order', () => {
    const codes = problems(`${MODELS_12}
services:
  api: { models: [m1], resources: { gpu: -1 } }
`).map((d) => d.code);
    assert.deepEqual(codes, ['unused-model', 'out-of-range']);
  });
});

describe('problem details', () => {
  test('a model named like a number is a key in paths, not a list index', () => {
    const [d] = problems(`version: 1
models:
  "123": { path: 5 }
services:
  api: { models: ["123"] }
`);
    assert.deepEqual([d?.path, d?.line, d?.column], ['models.123.path', 3, 18]);
  });

  test('a long list of declared models is cut short', () => {
    const names = Array.from({ length: 12 }, (_, i) => `model${String(i).padStart(2, '0')}`);
    const models = names.map((n) => `  ${n}: { path: models/tiny.onnx }`).join('\n');
    const [d] = problems(
      `version: 1\nmodels:\n${models}\nservices:\n  api: { models: [${names}, resnet] }\n`,
    );
    assert.equal(d?.code, 'unknown-model');
    assert.match(d?.message ?? '', /\(declared: model00, .*, model09 and 2 more\)$/);
  });
});

test('every example in specs/ validates with no errors', () => {
  const dir = join(ROOT, 'specs');
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length > 0);
  for (const f of files) {
    const { warnings } = loadSpec(join(dir, f));
    assert.deepEqual(
      warnings.filter((w) => w.severity === 'error'),
      [],
      f,
    );
  }
});

describe('the schema file', () => {
  type Schema = Record<string, unknown>;
  const schema = JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')) as Schema;
  const definitions = schema.definitions as Record<string, Schema>;
  const deref = (s: Schema): Schema =>
    typeof s.$ref === 'string' ? (definitions[s.$ref.replace('#/definitions/', '')] ?? s) : s;

  /** Every subschema with its JSON pointer. */
  function* walk(s: unknown, pointer = ''): Generator<[string, Schema]> {
    if (s === null || typeof s !== 'object') return;
    if (Array.isArray(s)) {
      for (const [i, x] of s.entries()) yield* walk(x, `${pointer}/${i}`);
      return;
    }
    yield [pointer, s as Schema];
    for (const [k, v] of Object.entries(s)) {
      // Examples, snippets and defaults are data, not schemas.
      if (!['examples', 'defaultSnippets', 'default', 'enum', 'x-messages'].includes(k)) {
        yield* walk(v, `${pointer}/${k}`);
      }
    }
  }
  const all = [...walk(schema)];

  test('its defaults are DEFAULTS', () => {
    const defaults = Object.fromEntries(
      all.filter(([, s]) => 'default' in s).map(([p, s]) => [p, s.default]),
    );
    const model = '/definitions/model/properties';
    const service = '/definitions/service/properties';
    assert.deepEqual(defaults, {
      '/properties/version': 1,
      '/properties/name': DEFAULTS.name,
      '/properties/server/properties/host': DEFAULTS.host,
      '/properties/server/properties/port': DEFAULTS.port,
      '/properties/server/properties/max_body_mb': DEFAULTS.maxBodyMb,
      '/properties/server/properties/grpc_port': DEFAULTS.grpcPort,
      '/properties/server/properties/drain_timeout_s': DEFAULTS.drainTimeoutS,
      '/properties/server/properties/ui': DEFAULTS.ui,
      [`${model}/batching/properties/max_batch_size`]: DEFAULTS.maxBatchSize,
      [`${model}/batching/properties/max_latency_ms`]: DEFAULTS.maxLatencyMs,
      [`${model}/batching/properties/policy`]: DEFAULTS.batchPolicy,
      [`${model}/session/properties/graph_optimization`]: DEFAULTS.graphOptimization,
      [`${model}/session/properties/execution_mode`]: DEFAULTS.executionMode,
      // resources.gpu: no GPUs, which is what a Spec says when resources is absent.
      [`${service}/resources/properties/gpu`]: 0,
      [`${service}/traffic/properties/timeout_s`]: DEFAULTS.timeoutS,
      [`${service}/traffic/properties/max_concurrency`]: DEFAULTS.maxConcurrency,
      [`${service}/scaling/properties/min_replicas`]: DEFAULTS.minReplicas,
    });
  });

  test('every property has a description and a markdownDescription', () => {
    const undocumented = all.flatMap(([pointer, s]) =>
      Object.entries((s.properties ?? {}) as Record<string, Schema>)
        .map(([name, p]) => [`${pointer}/properties/${name}`, deref(p)] as const)
        .filter(
          ([, p]) => typeof p.description !== 'string' || typeof p.markdownDescription !== 'string',
        )
        .map(([where]) => where),
    );
    assert.deepEqual(undocumented, []);
  });

  test('every errorMessage is a string: editors show it as the message, as it is', () => {
    const objects = all.filter(
      ([, s]) => 'errorMessage' in s && typeof s.errorMessage !== 'string',
    );
    assert.deepEqual(
      objects.map(([pointer]) => pointer),
      [],
    );
  });

  test('no object schema accepts keys it does not know', () => {
    const objects = all.filter(([, s]) => s.type === 'object' || 'properties' in s);
    assert.ok(objects.length >= 10);
    for (const [pointer, s] of objects) {
      if ('properties' in s) assert.equal(s.additionalProperties, false, pointer);
      // A name -> thing mapping (models, services, placement) says what each value must be.
      else assert.equal(typeof s.additionalProperties, 'object', pointer);
    }
  });
});
