// `bento-run k8s --target kserve` as data: a ServingRuntime and an InferenceService per service,
// checked field by field and against KServe's CRD schemas (test/helpers/k8s-api.ts).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { K8sError, type K8sErrorCode } from '../src/errors.js';
import { type BundleOptions, bundleSpec } from '../src/k8s/bundle.js';
import { KSERVE_NAME_MAX } from '../src/k8s/kserve.js';
import { buildManifests, type ManifestOptions } from '../src/k8s/manifests.js';
import type {
  ConfigMap,
  Container,
  InferenceService,
  K8sObject,
  ServingRuntime,
} from '../src/k8s/types.js';
import { parseSpec } from '../src/spec/parse.js';
import type { ModelSpec, Spec } from '../src/spec/types.js';
import { loadSpec, validateSpec } from '../src/spec/validate.js';
import { checkAgainstApis, crdValidator, ofKind } from './helpers/k8s-api.js';
import { ROOT } from './helpers/server.js';
import { makeSpec, type SpecInput } from './helpers/spec-factory.js';

const EXAMPLES = readdirSync(join(ROOT, 'specs'))
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => f.replace(/\.yaml$/, ''))
  .sort();
const PLATFORM = 'test/fixtures/k8s-specs/platform/bentofile.yaml';
const SECURED = 'test/fixtures/k8s-specs/secured.yaml';
const URI = 's3://ml-models/bento';

/** A spec file's objects for KServe; fixture specs' models need not exist. */
function kserve(file: string, options: ManifestOptions = {}): K8sObject[] {
  const path = join(ROOT, file);
  const { spec } = loadSpec(path, { checkFiles: file.startsWith('specs/') });
  const all: ManifestOptions = { target: 'kserve', storageUri: URI, ...options };
  return buildManifests(spec, bundleSpec(spec, readFileSync(path, 'utf8'), all), all);
}

/** The YAML a factory-made spec could have been loaded from (models and services only). */
function textOf(spec: Spec): string {
  const model = (m: ModelSpec) => ({
    path: m.declaredPath,
    ...(m.storageUri === null ? {} : { storage_uri: m.storageUri }),
  });
  return JSON.stringify({
    version: 1,
    name: spec.name,
    models: Object.fromEntries(Object.values(spec.models).map((m) => [m.name, model(m)])),
    services: Object.fromEntries(spec.services.map((s) => [s.name, { models: s.models }])),
  });
}

function fromSpec(spec: Spec, options: ManifestOptions = {}): K8sObject[] {
  const all: ManifestOptions = { target: 'kserve', ...options };
  return buildManifests(spec, bundleSpec(spec, textOf(spec), all as BundleOptions), all);
}

const runtime = (objects: K8sObject[]): ServingRuntime => ofKind(objects, 'ServingRuntime')[0]!;
const container = (objects: K8sObject[]): Container => runtime(objects).spec.containers[0]!;
const isvc = (objects: K8sObject[], name: string): InferenceService => {
  const found = ofKind(objects, 'InferenceService').find((o) => o.metadata.name === name);
  assert.ok(found, `no InferenceService ${name}`);
  return found;
};
const specText = (objects: K8sObject[]) =>
  (objects[0] as ConfigMap).data['bentofile.yaml'] ?? assert.fail('no spec in the ConfigMap');

function k8sError(fn: () => unknown): K8sError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof K8sError, `expected a K8sError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a K8sError, nothing was thrown');
}
const codes = (e: K8sError): K8sErrorCode[] => e.problems.map((p) => p.code);

describe('KServe: the objects', () => {
  test('a ConfigMap, one ServingRuntime, then an InferenceService per service, in spec order', () => {
    assert.deepEqual(
      kserve('specs/two-services.yaml').map((o) => `${o.kind}/${o.metadata.name}`),
      [
        'ConfigMap/search-bentofile',
        'ServingRuntime/search-runtime',
        'InferenceService/search-embedder',
        'InferenceService/search-reranker',
      ],
    );
  });

  test('the runtime: format onnx (autoSelect), protocols v2 and grpc-v2, the ConfigMap mounted', () => {
    const r = runtime(kserve('specs/quickstart.yaml'));
    assert.equal(r.apiVersion, 'serving.kserve.io/v1alpha1');
    assert.deepEqual(r.spec.supportedModelFormats, [
      { name: 'onnx', version: '1', autoSelect: true },
    ]);
    assert.deepEqual(r.spec.protocolVersions, ['v2', 'grpc-v2']);
    assert.deepEqual(r.spec.volumes, [
      { name: 'bentofile', configMap: { name: 'quickstart-bentofile' } },
    ]);
    assert.deepEqual(r.metadata.annotations, {
      'prometheus.kserve.io/port': '8080',
      'prometheus.kserve.io/path': '/metrics',
    });
  });

  test('the container: kserve-container, REST on 8080 and gRPC on 8081 on every address', () => {
    const c = container(kserve('specs/quickstart.yaml'));
    assert.equal(c.name, 'kserve-container');
    assert.deepEqual(c.command, ['bento-run']);
    assert.deepEqual(c.args, [
      'serve',
      '/etc/bento/bentofile.yaml',
      '--host',
      '0.0.0.0',
      '--port',
      '8080',
      '--grpc-port',
      '8081',
    ]);
    // Knative (Serverless mode) takes one port per container.
    assert.deepEqual(c.ports, [{ name: 'http1', containerPort: 8080, protocol: 'TCP' }]);
    assert.deepEqual(c.volumeMounts, [
      { name: 'bentofile', mountPath: '/etc/bento', readOnly: true },
    ]);
  });

  test('probes: the Open Inference Protocol health routes on port 8080; startup waits 10 min', () => {
    const c = container(kserve('specs/quickstart.yaml'));
    assert.deepEqual(c.startupProbe?.httpGet, { path: '/v2/health/live', port: 8080 });
    assert.deepEqual(c.livenessProbe?.httpGet, { path: '/v2/health/live', port: 8080 });
    assert.deepEqual(c.readinessProbe?.httpGet, { path: '/v2/health/ready', port: 8080 });
    assert.equal(c.startupProbe!.periodSeconds * c.startupProbe!.failureThreshold, 600);
  });

  test('gRPC off in the spec: no --grpc-port, protocol v2 only', () => {
    const objects = kserve(SECURED);
    assert.deepEqual(runtime(objects).spec.protocolVersions, ['v2']);
    assert.ok(!container(objects).args?.includes('--grpc-port'));
  });

  test('the container runs as non-root, unprivileged: on the container, not the pod', () => {
    assert.deepEqual(container(kserve('specs/quickstart.yaml')).securityContext, {
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      runAsNonRoot: true,
      runAsUser: 1000,
      runAsGroup: 1000,
      seccompProfile: { type: 'RuntimeDefault' },
    });
  });

  test('each InferenceService: format onnx, our runtime, v2, the storage URI, --service NAME', () => {
    const objects = kserve('specs/two-services.yaml');
    for (const service of ['embedder', 'reranker']) {
      const i = isvc(objects, `search-${service}`);
      assert.equal(i.apiVersion, 'serving.kserve.io/v1beta1');
      const { resources: _, ...model } = i.spec.predictor.model;
      assert.deepEqual(model, {
        modelFormat: { name: 'onnx' },
        runtime: 'search-runtime',
        protocolVersion: 'v2',
        storageUri: URI,
        // KServe appends these to the runtime container's arguments.
        args: ['--service', service],
      });
    }
  });

  test('GPU wiring: GPU limits, CPU and memory requests, the gpu_type node selector, toleration', () => {
    const objects = kserve('specs/two-services.yaml');
    const p = isvc(objects, 'search-embedder').spec.predictor;
    assert.deepEqual(p.model.resources, {
      requests: { cpu: 8, memory: '16Gi' },
      limits: { 'nvidia.com/gpu': 2 },
    });
    assert.deepEqual(p.nodeSelector, { 'nvidia.com/gpu.product': 'NVIDIA-H100-80GB-HBM3' });
    assert.deepEqual(p.tolerations, [
      { key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' },
    ]);
    const cpu = kserve('specs/cpu-and-gpu.yaml');
    const features = isvc(cpu, 'cpu-and-gpu-features').spec.predictor;
    assert.equal(features.nodeSelector, undefined);
    assert.equal(features.tolerations, undefined);
    assert.doesNotMatch(JSON.stringify(features), /nvidia\.com/);
    const selected = kserve('specs/cpu-and-gpu.yaml', {
      nodeSelector: { 'cloud.google.com/gke-accelerator': 'nvidia-l4' },
    });
    assert.deepEqual(isvc(selected, 'cpu-and-gpu-scorer').spec.predictor.nodeSelector, {
      'cloud.google.com/gke-accelerator': 'nvidia-l4',
    });
  });

  test('scaling: min/max replicas; target_in_flight as Knative concurrency target; none: absent', () => {
    const objects = kserve(PLATFORM);
    const embedder = isvc(objects, 'platform-embedder').spec.predictor;
    assert.equal(embedder.minReplicas, 2);
    assert.equal(embedder.maxReplicas, 8);
    assert.equal(embedder.annotations['autoscaling.knative.dev/target'], '16');
    const reranker = isvc(objects, 'platform-reranker').spec.predictor;
    assert.deepEqual([reranker.minReplicas, reranker.maxReplicas], [1, 4]);
    assert.equal(reranker.annotations['autoscaling.knative.dev/target'], undefined);
    const tagger = isvc(objects, 'platform-tagger').spec.predictor;
    assert.equal(tagger.minReplicas, undefined);
    assert.equal(tagger.maxReplicas, undefined);
  });

  test("the spec digest on every predictor: a changed spec rolls KServe's pods", () => {
    const objects = kserve('specs/two-services.yaml');
    const a = isvc(objects, 'search-embedder').spec.predictor.annotations;
    assert.match(a['bento-run/spec-sha256'] ?? '', /^[0-9a-f]{64}$/);
    assert.deepEqual(isvc(objects, 'search-reranker').spec.predictor.annotations, a);
  });

  test('no termination grace period: Knative refuses the field and derives its own', () => {
    assert.doesNotMatch(JSON.stringify(kserve(PLATFORM)), /terminationGracePeriodSeconds/);
  });

  test('namespace and image on every object', () => {
    const objects = kserve('specs/quickstart.yaml', { namespace: 'ml', image: 'reg/q:1' });
    assert.ok(objects.every((o) => o.metadata.namespace === 'ml'));
    assert.equal(container(objects).image, 'reg/q:1');
  });
});

describe('KServe: the models in /mnt/models', () => {
  test('--storage-uri holds the models folder as it is: paths relative to it', () => {
    const doc = parse(specText(kserve('specs/two-services.yaml'))) as {
      models: Record<string, { path: string }>;
    };
    assert.equal(doc.models.embedder?.path, '/mnt/models/embedder.onnx');
    assert.equal(doc.models.reranker?.path, '/mnt/models/reranker.onnx');
  });

  test('models outside the spec folder too: relative to the folder holding them all', () => {
    const text = specText(kserve(PLATFORM));
    const doc = parse(text) as { models: Record<string, { path: string }> };
    assert.equal(doc.models.embedder?.path, '/mnt/models/embedder.onnx');
    assert.equal(doc.models.reranker?.path, '/mnt/models/reranker/model.onnx');
    // storage_uri: a folder holding the file under its name.
    assert.equal(doc.models.tagger?.path, '/mnt/models/tagger.onnx');
    assert.equal(
      isvc(kserve(PLATFORM), 'platform-tagger').spec.predictor.model.storageUri,
      'gs://ml-models/tagger',
    );
  });

  test('models.X.volume: the claim as a pvc:// storage URI', () => {
    const spec = makeSpec({ name: 'x', services: { api: { models: ['m'] } } });
    const inClaim = {
      ...spec,
      models: { m: { ...spec.models.m!, volume: { claim: 'models', subPath: 'm/v2' } } },
    };
    const objects = fromSpec(inClaim);
    assert.equal(isvc(objects, 'x-api').spec.predictor.model.storageUri, 'pvc://models/m/v2');
    const doc = parse(specText(objects)) as { models: { m: { path: string } } };
    assert.equal(doc.models.m.path, '/mnt/models/m.onnx');
  });

  test('the container copy is a valid spec whose models resolve under /mnt/models', () => {
    for (const name of EXAMPLES) {
      const text = specText(kserve(`specs/${name}.yaml`));
      const { spec } = validateSpec(parseSpec(text, '/etc/bento/bentofile.yaml'), {
        checkFiles: false,
      });
      for (const m of Object.values(spec.models)) {
        assert.match(m.path, /^\/mnt\/models\/[a-z0-9]+\.onnx$/, `${name}: ${m.name}`);
      }
    }
  });
});

describe('KServe: what cannot work', () => {
  const one: SpecInput = { name: 'x', services: { api: { models: ['a', 'b'] } } };

  test('a model without a storage URI: which, and the two ways to give one', () => {
    const spec = makeSpec(one);
    const e = k8sError(() => fromSpec(spec));
    assert.deepEqual(codes(e), ['BENTO_ERR_K8S_STORAGE']);
    assert.match(e.message, /models `a`, `b`: no storage URI for KServe/);
    assert.match(e.message, /--storage-uri URI, a folder holding what models holds/);
    assert.match(e.message, /models\.NAME\.storage_uri/);
  });

  test('a service whose models need two storage URIs: an InferenceService downloads one', () => {
    const spec = makeSpec(one);
    const split = {
      ...spec,
      models: {
        a: { ...spec.models.a!, storageUri: 's3://x/a' },
        b: { ...spec.models.b!, storageUri: 's3://x/b' },
      },
    };
    const e = k8sError(() => fromSpec(split));
    assert.deepEqual(codes(e), ['BENTO_ERR_K8S_STORAGE']);
    assert.match(e.message, /service `api`: .* from s3:\/\/x\/a \(a\), s3:\/\/x\/b \(b\)/);
    // In two services, two URIs are two InferenceServices: fine.
    const two = makeSpec({ name: 'x', services: { p: { models: ['a'] }, q: { models: ['b'] } } });
    const apart = { ...two, models: { a: split.models.a, b: split.models.b } };
    const objects = fromSpec(apart);
    assert.equal(isvc(objects, 'x-p').spec.predictor.model.storageUri, 's3://x/a');
    assert.equal(isvc(objects, 'x-q').spec.predictor.model.storageUri, 's3://x/b');
  });

  test('two files of one service at one container path: an error naming both', () => {
    const spec = makeSpec(one);
    const same = {
      ...spec,
      models: {
        a: {
          ...spec.models.a!,
          path: '/srv/specs/a/model.onnx',
          declaredPath: 'a/model.onnx',
          storageUri: 's3://x',
        },
        b: {
          ...spec.models.b!,
          path: '/srv/specs/b/model.onnx',
          declaredPath: 'b/model.onnx',
          storageUri: 's3://x',
        },
      },
    };
    const e = k8sError(() => fromSpec(same));
    assert.deepEqual(codes(e), ['BENTO_ERR_K8S_MODEL_PATH']);
    assert.match(
      e.message,
      /`a` \(a\/model\.onnx\) and `b` \(b\/model\.onnx\) .* \/mnt\/models\/model\.onnx/,
    );
  });

  test("the other target's flags: each named, with what KServe takes instead", () => {
    const spec = makeSpec(one);
    const e = k8sError(() =>
      fromSpec(spec, {
        storageUri: URI,
        replicas: 2,
        models: { kind: 'pvc', claim: 'models' },
        modelsVolume: { claim: 'models' },
      }),
    );
    assert.deepEqual(codes(e), [
      'BENTO_ERR_K8S_OPTION',
      'BENTO_ERR_K8S_OPTION',
      'BENTO_ERR_K8S_OPTION',
    ]);
    assert.match(e.message, /--replicas is for --target kubernetes: .* services\.NAME\.scaling/);
    assert.match(e.message, /--models-pvc is for --target kubernetes: .* --storage-uri/);
    assert.match(e.message, /--models-volume is for --target kubernetes: .* pvc:\/\/CLAIM\/FOLDER/);
    const k = k8sError(() =>
      buildManifests(spec, bundleSpec(spec, textOf(spec)), { storageUri: URI }),
    );
    assert.match(k.message, /--storage-uri is for --target kserve/);
  });

  test('a storage URI must have a scheme', () => {
    const e = k8sError(() => fromSpec(makeSpec(one), { storageUri: 'bucket/models' }));
    assert.match(e.message, /--storage-uri: `bucket\/models` is not a storage URI/);
  });

  test(`an InferenceService name over ${KSERVE_NAME_MAX} characters: Knative's revision names`, () => {
    const spec = makeSpec({
      name: 'n'.repeat(30),
      services: { ['s'.repeat(20)]: { models: ['m'] } },
    });
    const e = k8sError(() => fromSpec(spec, { storageUri: URI }));
    assert.deepEqual(codes(e), ['BENTO_ERR_K8S_NAME']);
    assert.match(e.message, /51 characters long; .* '-predictor-00001', which leaves at most 47/);
  });
});

describe('KServe: every object is valid against its CRD', () => {
  for (const name of EXAMPLES) {
    test(name, () => checkAgainstApis(kserve(`specs/${name}.yaml`)));
  }
  test('platform (volumes, scaling, tokens from the environment)', () =>
    checkAgainstApis(kserve(PLATFORM, { namespace: 'ml', image: 'reg/p:1' })));
  test('secured (tokens from a file, gRPC off)', () => checkAgainstApis(kserve(SECURED)));

  test('the CRD validators reject what the API server would', () => {
    const objects = kserve('specs/two-services.yaml');
    const validate = crdValidator('InferenceService', 'v1beta1');
    const good = isvc(objects, 'search-embedder');
    assert.equal(validate(structuredClone(good)), true);
    const misspelt = structuredClone(good) as unknown as {
      spec: { predictor: Record<string, unknown> };
    };
    misspelt.spec.predictor.minReplica = 1;
    assert.equal(validate(misspelt), false, 'an unknown field (strict field validation)');
    const wrongType = structuredClone(good) as unknown as {
      spec: { predictor: Record<string, unknown> };
    };
    wrongType.spec.predictor.minReplicas = 'two';
    assert.equal(validate(wrongType), false);
    const noPredictor = structuredClone(good) as unknown as { spec: Record<string, unknown> };
    delete noPredictor.spec.predictor;
    assert.equal(validate(noPredictor), false);
    const runtimeValidate = crdValidator('ServingRuntime', 'v1alpha1');
    const noContainers = structuredClone(runtime(objects)) as unknown as {
      spec: Record<string, unknown>;
    };
    delete noContainers.spec.containers;
    assert.equal(runtimeValidate(noContainers), false);
  });
});
