// Golden files: the manifests and the Dockerfile of every example spec, as `bento-run k8s` and
// `bento-run dockerfile` print them, and the manifests of both targets for a few more specs and
// options (test/fixtures/k8s-specs). test/fixtures/k8s/crds holds KServe's CRDs, no goldens. After an intended change, regenerate and review the diff:
//   npx tsc -p tsconfig.json && UPDATE_GOLDEN=1 node scripts/run-tests.mjs k8s-golden
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { bundleSpec } from '../src/k8s/bundle.js';
import { buildDockerfile } from '../src/k8s/dockerfile.js';
import { buildManifests, type ManifestOptions } from '../src/k8s/manifests.js';
import { generatedHeader, manifestsToYaml } from '../src/k8s/render.js';
import { loadSpec } from '../src/spec/validate.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const GOLDEN = join(ROOT, 'test/fixtures/k8s');
const UPDATE = process.env.UPDATE_GOLDEN === '1';
/** The Dockerfile names the bento-run version; the goldens pin one so that releases keep them. */
const GOLDEN_VERSION = '0.1.0';
const EXAMPLES = readdirSync(join(ROOT, 'specs'))
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => f.replace(/\.yaml$/, ''))
  .sort();

/** The specs of test/fixtures/k8s-specs, by golden name prefix. */
const FIXTURE_SPECS: Record<string, string> = {
  platform: 'test/fixtures/k8s-specs/platform/bentofile.yaml',
  secured: 'test/fixtures/k8s-specs/secured.yaml',
};

/** Golden name -> spec (an example's name, or a fixture's) and options; `<spec>.yaml`: defaults. */
const CASES: Record<string, { spec: string; options: ManifestOptions }> = {
  ...Object.fromEntries(EXAMPLES.map((s) => [`${s}.yaml`, { spec: s, options: {} }])),
  'two-services.kserve.yaml': {
    spec: 'two-services',
    options: {
      target: 'kserve',
      image: 'registry.example/ml/search:1.0',
      storageUri: 'pvc://bento-models/search',
    },
  },
  'platform.yaml': {
    spec: 'platform',
    options: {
      image: 'registry.example/ml/platform:1.0',
      namespace: 'ml',
      modelsVolume: { claim: 'ml-models', subPath: 'platform' },
    },
  },
  'platform.kserve.yaml': {
    spec: 'platform',
    options: {
      target: 'kserve',
      image: 'registry.example/ml/platform:1.0',
      namespace: 'ml',
      storageUri: 's3://ml-models/platform',
    },
  },
  'secured.yaml': { spec: 'secured', options: { authSecret: 'secured-tokens' } },
  'secured.kserve.yaml': {
    spec: 'secured',
    options: { target: 'kserve', storageUri: 'gs://ml-models/secured' },
  },
  'two-services.pvc.yaml': {
    spec: 'two-services',
    options: {
      image: 'registry.example/ml/search:1.0',
      namespace: 'ml',
      replicas: 2,
      serviceReplicas: { reranker: 1 },
      models: { kind: 'pvc', claim: 'bento-models', subPath: 'search' },
    },
  },
  'cpu-and-gpu.models-image.yaml': {
    spec: 'cpu-and-gpu',
    options: {
      image: 'registry.example/ml/cpu-and-gpu:1.0',
      models: { kind: 'models-image', image: 'registry.example/ml/cpu-and-gpu-models:1.0' },
      nodeSelector: { 'cloud.google.com/gke-accelerator': 'nvidia-l4' },
      serviceNodeSelectors: { features: { 'cloud.google.com/gke-nodepool': 'cpu' } },
    },
  },
};

/** A spec and its bundle for `options`; fixture specs' models need not exist. */
function load(name: string, options: ManifestOptions = {}) {
  const fixture = FIXTURE_SPECS[name];
  const file = join(ROOT, fixture ?? `specs/${name}.yaml`);
  const { spec } = loadSpec(file, { checkFiles: fixture === undefined });
  return { spec, bundle: bundleSpec(spec, readFileSync(file, 'utf8'), options) };
}

function checkGolden(file: string, actual: string): void {
  const path = join(GOLDEN, file);
  if (UPDATE) {
    mkdirSync(GOLDEN, { recursive: true });
    writeFileSync(path, actual);
    return;
  }
  let expected: string;
  try {
    expected = readFileSync(path, 'utf8');
  } catch {
    assert.fail(`no golden file ${path}: run with UPDATE_GOLDEN=1 and review it`);
  }
  assert.equal(
    actual,
    expected,
    `${file} differs from its golden file (UPDATE_GOLDEN=1 rewrites it)`,
  );
}

describe('golden files', () => {
  for (const [file, { spec: name, options }] of Object.entries(CASES)) {
    test(`manifests: ${file}`, () => {
      const { spec, bundle } = load(name, options);
      const objects = buildManifests(spec, bundle, options);
      checkGolden(file, manifestsToYaml(objects, generatedHeader(bundle.sourceName)));
    });
  }

  for (const name of EXAMPLES) {
    test(`Dockerfile: ${name}.Dockerfile`, () => {
      const { spec, bundle } = load(name);
      checkGolden(
        `${name}.Dockerfile`,
        buildDockerfile(spec, bundle, { bentoRunVersion: GOLDEN_VERSION }),
      );
    });
  }

  test('no golden file without a case (a removed example takes its goldens along)', () => {
    if (UPDATE) return;
    const expected = new Set([...Object.keys(CASES), ...EXAMPLES.map((n) => `${n}.Dockerfile`)]);
    assert.deepEqual(
      readdirSync(GOLDEN, { withFileTypes: true })
        .filter((f) => f.isFile() && !expected.has(f.name))
        .map((f) => f.name)
        .sort(),
      [],
    );
  });
});
