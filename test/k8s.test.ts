// `bento-run k8s` as data: spec -> bundle -> Kubernetes objects, checked field by field and
// against the Kubernetes API's own schemas (kubernetes-models validates in-process).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import { Deployment as DeploymentModel } from 'kubernetes-models/apps/v1/Deployment';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { K8sError, type K8sErrorCode } from '../src/errors.js';
import { type Bundle, bundleSpec } from '../src/k8s/bundle.js';
import { buildManifests, type ManifestOptions, PROBES } from '../src/k8s/manifests.js';
import {
  dns1035LabelProblem,
  dns1123LabelProblem,
  labelKeyProblem,
  labelValueProblem,
} from '../src/k8s/names.js';
import { manifestFileName, manifestsToYaml } from '../src/k8s/render.js';
import type {
  ConfigMap,
  Container,
  Deployment,
  K8sObject,
  Service,
  Volume,
} from '../src/k8s/types.js';
import { KNOWN_GPU_TYPES } from '../src/plan/gpu-types.js';
import { parseSpec } from '../src/spec/parse.js';
import type { Spec } from '../src/spec/types.js';
import { loadSpec, validateSpec } from '../src/spec/validate.js';
import { CORE_FIELDS_EXIST, checkAgainstApis } from './helpers/k8s-api.js';
import { makeSpec, type SpecInput } from './helpers/spec-factory.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const EXAMPLES = readdirSync(join(ROOT, 'specs'))
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => f.replace(/\.yaml$/, ''))
  .sort();

/** An example spec from specs/, with its bundle. */
function example(name: string): { spec: Spec; bundle: Bundle } {
  const file = join(ROOT, 'specs', `${name}.yaml`);
  const { spec } = loadSpec(file);
  return { spec, bundle: bundleSpec(spec, readFileSync(file, 'utf8')) };
}

function manifests(name: string, options: ManifestOptions = {}): K8sObject[] {
  const { spec, bundle } = example(name);
  return buildManifests(spec, bundle, options);
}

/** The YAML a factory-made spec could have been loaded from (models and services only). */
function textOf(spec: Spec): string {
  return stringify({
    version: 1,
    name: spec.name,
    models: Object.fromEntries(
      Object.values(spec.models).map((m) => [m.name, { path: m.declaredPath }]),
    ),
    services: Object.fromEntries(spec.services.map((s) => [s.name, { models: s.models }])),
  });
}

function fromFactory(input: SpecInput, options: ManifestOptions = {}): K8sObject[] {
  const spec = makeSpec(input);
  return buildManifests(spec, bundleSpec(spec, textOf(spec)), options);
}

const deployments = (objects: K8sObject[]) =>
  objects.filter((o): o is Deployment => o.kind === 'Deployment');
const services = (objects: K8sObject[]) =>
  objects.filter((o): o is Service => o.kind === 'Service');
const configMaps = (objects: K8sObject[]) =>
  objects.filter((o): o is ConfigMap => o.kind === 'ConfigMap');

function deployment(objects: K8sObject[], name: string): Deployment {
  const d = deployments(objects).find((o) => o.metadata.name === name);
  assert.ok(d, `no Deployment ${name} in ${objects.map((o) => o.metadata.name).join(', ')}`);
  return d;
}

function container(d: Deployment): Container {
  const c = d.spec.template.spec.containers[0];
  assert.ok(c);
  return c;
}

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

describe('buildManifests: objects per service', () => {
  test('two services: a ConfigMap, then a Deployment and a Service each, in spec order', () => {
    const objects = manifests('two-services');
    assert.deepEqual(
      objects.map((o) => `${o.kind}/${o.metadata.name}`),
      [
        'ConfigMap/search-bentofile',
        'Deployment/search-embedder',
        'Service/search-embedder',
        'Deployment/search-reranker',
        'Service/search-reranker',
      ],
    );
  });

  test('each pod runs `bento-run serve` on the ConfigMap spec for its own service', () => {
    const objects = manifests('two-services');
    for (const service of ['embedder', 'reranker']) {
      const c = container(deployment(objects, `search-${service}`));
      assert.deepEqual(c.command, ['bento-run']);
      assert.deepEqual(c.args, [
        'serve',
        '/etc/bento/bentofile.yaml',
        '--service',
        service,
        '--host',
        '0.0.0.0',
        '--port',
        '3000',
      ]);
      assert.deepEqual(c.ports, [
        { name: 'http', containerPort: 3000, protocol: 'TCP' },
        { name: 'grpc', containerPort: 8001, protocol: 'TCP' },
      ]);
    }
  });

  test("GPU limits, CPU and memory requests come from each service's resources", () => {
    const objects = manifests('two-services');
    assert.deepEqual(container(deployment(objects, 'search-embedder')).resources, {
      requests: { cpu: 8, memory: '16Gi' },
      limits: { 'nvidia.com/gpu': 2 },
    });
    assert.deepEqual(container(deployment(objects, 'search-reranker')).resources, {
      requests: { cpu: 4, memory: '8Gi' },
      limits: { 'nvidia.com/gpu': 1 },
    });
  });

  test('a GPU service: product node selector from gpu_type, GPU toleration, one-at-a-time rollout', () => {
    for (const [spec, name, product] of [
      ['two-services', 'search-embedder', 'NVIDIA-H100-80GB-HBM3'],
      ['two-services', 'search-reranker', 'NVIDIA-H100-80GB-HBM3'],
      ['workers', 'workers-classifier', 'NVIDIA-L4'],
    ] as const) {
      const d = deployment(manifests(spec), name);
      const pod = d.spec.template.spec;
      assert.deepEqual(pod.nodeSelector, { 'nvidia.com/gpu.product': product }, name);
      assert.deepEqual(pod.tolerations, [
        { key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' },
      ]);
      assert.deepEqual(d.spec.strategy, {
        type: 'RollingUpdate',
        rollingUpdate: { maxSurge: 0, maxUnavailable: 1 },
      });
    }
  });

  test('every known gpu_type (and its aliases) selects its GFD product label', () => {
    for (const t of KNOWN_GPU_TYPES) {
      for (const gpuType of [t.type, ...t.aliases]) {
        const objects = fromFactory({
          name: 'x',
          services: { api: { models: ['m'], gpu: 1, gpuType } },
        });
        assert.deepEqual(
          deployment(objects, 'x-api').spec.template.spec.nodeSelector,
          { 'nvidia.com/gpu.product': t.product },
          gpuType,
        );
      }
    }
  });

  test('a GPU service without gpu_type: GPU limit and toleration, no node selector', () => {
    const d = deployment(manifests('multi-gpu'), 'multi-gpu-multi-gpu');
    assert.deepEqual(container(d).resources, { limits: { 'nvidia.com/gpu': 2 } });
    assert.equal(d.spec.template.spec.nodeSelector, undefined);
    assert.equal(d.spec.template.spec.tolerations?.length, 1);
  });

  test('a CPU service has no GPU limit, node selector, toleration or special rollout', () => {
    for (const [spec, name] of [
      ['quickstart', 'quickstart-api'],
      ['cpu-and-gpu', 'cpu-and-gpu-features'],
    ] as const) {
      const d = deployment(manifests(spec), name);
      const pod = d.spec.template.spec;
      assert.equal(container(d).resources, undefined, name);
      assert.equal(pod.nodeSelector, undefined, name);
      assert.equal(pod.tolerations, undefined, name);
      assert.equal(d.spec.strategy, undefined, name);
      assert.doesNotMatch(JSON.stringify(d), /nvidia\.com/, name);
    }
    // ...while the GPU service beside it has them.
    const scorer = deployment(manifests('cpu-and-gpu'), 'cpu-and-gpu-scorer');
    assert.deepEqual(container(scorer).resources, { limits: { 'nvidia.com/gpu': 1 } });
  });

  test('probes: startup waits 10 minutes for models on /livez, then /livez and /readyz', () => {
    const c = container(deployment(manifests('quickstart'), 'quickstart-api'));
    assert.deepEqual(c.startupProbe?.httpGet, { path: '/livez', port: 'http' });
    assert.deepEqual(c.livenessProbe?.httpGet, { path: '/livez', port: 'http' });
    assert.deepEqual(c.readinessProbe?.httpGet, { path: '/readyz', port: 'http' });
    const s = c.startupProbe!;
    assert.equal(s.periodSeconds * s.failureThreshold, 600);
    assert.equal(PROBES.startup.failureThreshold, s.failureThreshold);
  });

  test('Prometheus scrape annotations and the spec digest on the pod template', () => {
    const objects = manifests('two-services');
    const cm = configMaps(objects)[0]!;
    const digest = createHash('sha256').update(cm.data['bentofile.yaml']!).digest('hex');
    for (const d of deployments(objects)) {
      assert.deepEqual(d.spec.template.metadata.annotations, {
        'prometheus.io/scrape': 'true',
        'prometheus.io/port': '3000',
        'prometheus.io/path': '/metrics',
        'bento-run/spec-sha256': digest,
      });
    }
  });

  test('labels: name, instance, component, managed-by; selectors pick one service', () => {
    const objects = manifests('multi-gpu');
    const d = deployment(objects, 'multi-gpu-multi-gpu');
    const labels = {
      'app.kubernetes.io/name': 'multi-gpu',
      'app.kubernetes.io/instance': 'multi-gpu-multi-gpu',
      'app.kubernetes.io/component': 'multi_gpu',
      'app.kubernetes.io/managed-by': 'bento-run',
    };
    const selector = {
      'app.kubernetes.io/name': 'multi-gpu',
      'app.kubernetes.io/component': 'multi_gpu',
    };
    const svc = services(objects)[0]!;
    assert.deepEqual(d.metadata.labels, labels);
    assert.deepEqual(d.spec.template.metadata.labels, labels);
    assert.deepEqual(svc.metadata.labels, labels);
    assert.deepEqual(d.spec.selector.matchLabels, selector);
    assert.deepEqual(svc.spec.selector, selector);
    assert.deepEqual(configMaps(objects)[0]!.metadata.labels, {
      'app.kubernetes.io/name': 'multi-gpu',
      'app.kubernetes.io/managed-by': 'bento-run',
    });
  });

  test("names: '<spec name>-<service name>', '_' becoming '-'; the flag keeps the service's name", () => {
    const objects = manifests('multi-gpu');
    assert.deepEqual(
      objects.map((o) => o.metadata.name),
      ['multi-gpu-bentofile', 'multi-gpu-multi-gpu', 'multi-gpu-multi-gpu'],
    );
    assert.equal(container(deployment(objects, 'multi-gpu-multi-gpu')).args?.[3], 'multi_gpu');
  });

  test('the Service: ClusterIP on the spec port, to the named container port', () => {
    const svc = services(manifests('quickstart'))[0]!;
    assert.deepEqual(svc.spec, {
      type: 'ClusterIP',
      selector: {
        'app.kubernetes.io/name': 'quickstart',
        'app.kubernetes.io/component': 'api',
      },
      ports: [
        { name: 'http', port: 3000, targetPort: 'http', protocol: 'TCP' },
        { name: 'grpc', port: 8001, targetPort: 'grpc', protocol: 'TCP' },
      ],
    });
  });

  test('replicas: 1 by default, --replicas for all, per service over that', () => {
    const replicas = (options: ManifestOptions) =>
      deployments(manifests('two-services', options)).map((d) => d.spec.replicas);
    assert.deepEqual(replicas({}), [1, 1]);
    assert.deepEqual(replicas({ replicas: 3 }), [3, 3]);
    assert.deepEqual(replicas({ replicas: 3, serviceReplicas: { reranker: 0 } }), [3, 0]);
  });

  test('namespace: on every object when given, on none otherwise', () => {
    assert.ok(manifests('two-services').every((o) => o.metadata.namespace === undefined));
    assert.ok(
      manifests('two-services', { namespace: 'ml' }).every((o) => o.metadata.namespace === 'ml'),
    );
  });

  test('image: <spec name>:latest by default, --image otherwise', () => {
    assert.equal(container(deployments(manifests('quickstart'))[0]!).image, 'quickstart:latest');
    const given = manifests('quickstart', { image: 'registry.example/ml/quickstart:1.2' });
    assert.equal(container(deployments(given)[0]!).image, 'registry.example/ml/quickstart:1.2');
  });

  test('--service: only those services, the ConfigMap still holds the whole spec', () => {
    const objects = manifests('two-services', { services: ['reranker'] });
    assert.deepEqual(
      objects.map((o) => `${o.kind}/${o.metadata.name}`),
      ['ConfigMap/search-bentofile', 'Deployment/search-reranker', 'Service/search-reranker'],
    );
    assert.match(configMaps(objects)[0]!.data['bentofile.yaml']!, /embedder:/);
  });

  test('a pod gets server.drain_timeout_s + 15 s after SIGTERM, to drain and then exit', () => {
    for (const name of EXAMPLES) {
      for (const d of deployments(manifests(name))) {
        assert.equal(d.spec.template.spec.terminationGracePeriodSeconds, 30 + 15, name);
      }
    }
    const spec = makeSpec({ name: 'x', services: { api: { models: ['m'] } } });
    const drain = { ...spec, server: { ...spec.server, drainTimeoutS: 20.5 } };
    const d = deployments(buildManifests(drain, bundleSpec(drain, textOf(spec))))[0]!;
    assert.equal(d.spec.template.spec.terminationGracePeriodSeconds, 36);
  });

  test('gRPC: a container port and a Service port when the spec serves it on a fixed port', () => {
    const spec = makeSpec({ name: 'x', services: { api: { models: ['m'] } } });
    const at = (grpcPort: number | null) => {
      const s = { ...spec, server: { ...spec.server, grpcPort } };
      const objects = buildManifests(s, bundleSpec(s, textOf(spec)));
      return {
        container: container(deployments(objects)[0]!).ports?.map((p) => p.name),
        service: services(objects)[0]!.spec.ports.map((p) => `${p.name}:${p.port}`),
      };
    };
    assert.deepEqual(at(9000), {
      container: ['http', 'grpc'],
      service: ['http:3000', 'grpc:9000'],
    });
    // Off, or a free port (which a pod cannot announce): REST only.
    assert.deepEqual(at(null), { container: ['http'], service: ['http:3000'] });
    assert.deepEqual(at(0), { container: ['http'], service: ['http:3000'] });
  });

  test('pods run as non-root with no privileges (Pod Security "restricted")', () => {
    const d = deployments(manifests('quickstart'))[0]!;
    assert.deepEqual(d.spec.template.spec.securityContext, {
      runAsNonRoot: true,
      runAsUser: 1000,
      runAsGroup: 1000,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    assert.deepEqual(container(d).securityContext, {
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
  });
});

describe('buildManifests: node selectors', () => {
  test('KEY=VALUE replaces every GPU service selector and leaves CPU services alone', () => {
    const objects = manifests('cpu-and-gpu', {
      nodeSelector: { 'cloud.google.com/gke-accelerator': 'nvidia-l4' },
    });
    assert.deepEqual(deployment(objects, 'cpu-and-gpu-scorer').spec.template.spec.nodeSelector, {
      'cloud.google.com/gke-accelerator': 'nvidia-l4',
    });
    assert.equal(
      deployment(objects, 'cpu-and-gpu-features').spec.template.spec.nodeSelector,
      undefined,
    );
    const h100 = manifests('two-services', {
      nodeSelector: { 'nvidia.com/gpu.product': 'NVIDIA-H100-PCIe' },
    });
    for (const d of deployments(h100)) {
      assert.deepEqual(d.spec.template.spec.nodeSelector, {
        'nvidia.com/gpu.product': 'NVIDIA-H100-PCIe',
      });
    }
  });

  test('SERVICE:KEY=VALUE sets one service, CPU services included, over KEY=VALUE', () => {
    const objects = manifests('cpu-and-gpu', {
      nodeSelector: { pool: 'gpu' },
      serviceNodeSelectors: { features: { pool: 'cpu' }, scorer: { pool: 'l4' } },
    });
    assert.deepEqual(deployment(objects, 'cpu-and-gpu-features').spec.template.spec.nodeSelector, {
      pool: 'cpu',
    });
    assert.deepEqual(deployment(objects, 'cpu-and-gpu-scorer').spec.template.spec.nodeSelector, {
      pool: 'l4',
    });
    // A selector never gives a CPU service a GPU toleration.
    assert.equal(
      deployment(objects, 'cpu-and-gpu-features').spec.template.spec.tolerations,
      undefined,
    );
  });

  test('an unknown gpu_type has no product label: an error, unless a selector is given', () => {
    const input: SpecInput = {
      name: 'x',
      services: { api: { models: ['m'], gpu: 1, gpuType: 'nvidia-geforce-rtx-4090' } },
    };
    const e = k8sError(() => fromFactory(input));
    assert.deepEqual(codes(e), ['BENTO_ERR_K8S_GPU_TYPE']);
    assert.match(
      e.message,
      /specs\/test\.yaml:14:17: service `api`: gpu_type `nvidia-geforce-rtx-4090`/,
    );
    assert.match(e.message, /--node-selector api:nvidia\.com\/gpu\.product=/);
    const objects = fromFactory(input, {
      serviceNodeSelectors: { api: { 'nvidia.com/gpu.product': 'NVIDIA-GeForce-RTX-4090' } },
    });
    assert.deepEqual(deployment(objects, 'x-api').spec.template.spec.nodeSelector, {
      'nvidia.com/gpu.product': 'NVIDIA-GeForce-RTX-4090',
    });
  });
});

describe('buildManifests: the spec and the models in the pod', () => {
  test('the ConfigMap holds the spec with model paths under /bento, comments kept', () => {
    const cm = configMaps(manifests('two-services'))[0]!;
    const text = cm.data['bentofile.yaml']!;
    const original = readFileSync(join(ROOT, 'specs/two-services.yaml'), 'utf8');
    assert.doesNotMatch(text, /yaml-language-server/);
    assert.match(text, /^# Two services on disjoint GPU blocks/m);
    const doc = parse(text) as { models: Record<string, { path: string }> };
    assert.equal(doc.models.embedder?.path, '/bento/models/embedder.onnx');
    assert.equal(doc.models.reranker?.path, '/bento/models/reranker.onnx');
    // Only the paths changed: the rest is the user's text, byte for byte.
    const body = (t: string) =>
      t
        .split('\n')
        .filter((l) => !l.startsWith('#') && !/^\s+path:/.test(l))
        .join('\n');
    assert.equal(body(text), body(original));
  });

  test('the container copy is a valid spec whose models resolve under /bento', () => {
    for (const name of EXAMPLES) {
      const text = configMaps(manifests(name))[0]!.data['bentofile.yaml']!;
      const { spec } = validateSpec(parseSpec(text, '/etc/bento/bentofile.yaml'), {
        checkFiles: false,
      });
      for (const m of Object.values(spec.models)) {
        assert.match(m.path, /^\/bento\/models\/[a-z0-9]+\.onnx$/, `${name}: ${m.name}`);
      }
    }
  });

  test('a flow-style model keeps its style; a path needing quotes gets them', () => {
    const spec = makeSpec({ name: 'x', services: { api: { models: ['m'] } } });
    const text =
      'version: 1\nmodels:\n  m: { path: models/m.onnx }\nservices:\n  api: { models: [m] }\n';
    assert.match(bundleSpec(spec, text).specText, /m: \{ path: \/bento\/models\/m\.onnx \}/);
    const odd = {
      ...spec,
      models: { m: { ...spec.models.m!, path: '/srv/specs/my models/m.onnx' } },
    };
    const rewritten = bundleSpec(odd, text).specText;
    assert.match(rewritten, /path: "\/bento\/my models\/m\.onnx"/);
    assert.equal(
      (parse(rewritten) as { models: { m: { path: string } } }).models.m.path,
      '/bento/my models/m.onnx',
    );
  });

  test('the spec is mounted at /etc/bento; by default the models are in the image', () => {
    const d = deployments(manifests('quickstart'))[0]!;
    assert.deepEqual(d.spec.template.spec.volumes, [
      { name: 'bentofile', configMap: { name: 'quickstart-bentofile' } },
    ]);
    assert.deepEqual(container(d).volumeMounts, [
      { name: 'bentofile', mountPath: '/etc/bento', readOnly: true },
    ]);
    assert.equal(d.spec.template.spec.initContainers, undefined);
  });

  test('--models-pvc: the claim mounted read-only at /bento, optionally a folder of it', () => {
    const d = deployments(
      manifests('quickstart', { models: { kind: 'pvc', claim: 'models', subPath: 'v1' } }),
    )[0]!;
    assert.deepEqual(d.spec.template.spec.volumes[1], {
      name: 'models',
      persistentVolumeClaim: { claimName: 'models', readOnly: true },
    });
    assert.deepEqual(container(d).volumeMounts[1], {
      name: 'models',
      mountPath: '/bento',
      readOnly: true,
      subPath: 'v1',
    });
  });

  test('--models-image: an init container copies /bento into an emptyDir', () => {
    const d = deployments(
      manifests('quickstart', { models: { kind: 'models-image', image: 'reg/models:1' } }),
    )[0]!;
    const volumes: Volume[] = d.spec.template.spec.volumes;
    assert.deepEqual(volumes[1], { name: 'models', emptyDir: {} });
    const init = d.spec.template.spec.initContainers?.[0];
    assert.equal(init?.image, 'reg/models:1');
    assert.deepEqual(init?.command, ['cp', '-R', '/bento/.', '/mnt/bento/']);
    assert.deepEqual(init?.volumeMounts, [{ name: 'models', mountPath: '/mnt/bento' }]);
    assert.deepEqual(container(d).volumeMounts[1], {
      name: 'models',
      mountPath: '/bento',
      readOnly: true,
    });
  });

  test('a model outside the spec folder, without a volume: an error naming the fixes', () => {
    const spec = makeSpec({ name: 'x', services: { api: { models: ['m'] } } });
    const outside = {
      ...spec,
      models: {
        m: { ...spec.models.m!, path: '/srv/shared/m.onnx', declaredPath: '../shared/m.onnx' },
      },
    };
    const e = k8sError(() => bundleSpec(outside, textOf(spec)));
    assert.deepEqual(codes(e), ['BENTO_ERR_K8S_MODEL_OUTSIDE_FOLDER']);
    assert.match(e.message, /model `m`: \.\.\/shared\/m\.onnx is outside the spec's folder/);
    assert.match(e.message, /--models-volume CLAIM, a claim holding \.\.\/shared/);
    assert.match(e.message, /models\.m\.volume: CLAIM, a claim holding m\.onnx/);
  });

  test('models sharing one file are copied once', () => {
    const spec = makeSpec({ name: 'x', services: { api: { models: ['a', 'b'] } } });
    const shared = {
      ...spec,
      models: {
        a: { ...spec.models.a!, path: '/srv/specs/models/same.onnx' },
        b: { ...spec.models.b!, path: '/srv/specs/models/same.onnx' },
      },
    };
    assert.deepEqual(bundleSpec(shared, textOf(spec)).files, [
      {
        models: ['a', 'b'],
        source: 'models/same.onnx',
        target: '/bento/models/same.onnx',
        origin: { kind: 'folder' },
      },
    ]);
  });
});

describe('buildManifests: names and options that cannot work', () => {
  test('a name over 63 characters: the name, the rule and the fix', () => {
    const e = k8sError(() =>
      fromFactory({ name: 'a'.repeat(40), services: { ['b'.repeat(30)]: { models: ['m'] } } }),
    );
    assert.deepEqual(codes(e), ['BENTO_ERR_K8S_NAME']);
    assert.match(e.message, /^cannot write Kubernetes objects for specs\/test\.yaml:\n/);
    assert.match(
      e.message,
      /specs\/test\.yaml:10:3: service `b{30}`: its Kubernetes name `a{40}-b{30}`/,
    );
    assert.match(e.message, /71 characters long \(at most 63\)/);
  });

  test('two services that become one name: both named', () => {
    const e = k8sError(() =>
      fromFactory({ name: 'x', services: { a_b: { models: ['m'] }, 'a-b': { models: ['n'] } } }),
    );
    assert.deepEqual(codes(e), ['BENTO_ERR_K8S_NAME']);
    assert.match(e.message, /services `a_b` and `a-b` both become the Kubernetes name `x-a-b`/);
  });

  test('a Service name must start with a letter (DNS-1035)', () => {
    const e = k8sError(() => fromFactory({ name: '1st', services: { api: { models: ['m'] } } }));
    assert.match(e.message, /`1st-api`.*must start with a letter/);
  });

  test('every bad name at once', () => {
    const long = 'c'.repeat(60);
    const e = k8sError(() =>
      fromFactory({
        name: 'xyz',
        services: { [long]: { models: ['m'] }, [`${long}d`]: { models: ['n'] } },
      }),
    );
    assert.equal(e.problems.length, 2);
    assert.equal(e.exitCode, 2);
    const mixed = k8sError(() =>
      fromFactory({
        name: 'xyzw',
        services: {
          [long]: { models: ['m'] },
          api: { models: ['n'], gpu: 1, gpuType: 'nvidia-geforce-rtx-4090' },
        },
      }),
    );
    assert.deepEqual(codes(mixed), ['BENTO_ERR_K8S_NAME', 'BENTO_ERR_K8S_GPU_TYPE']);
  });

  test('bad options: each named, every one reported, valid choices listed', () => {
    const e = k8sError(() =>
      manifests('two-services', {
        namespace: 'Not_A_Namespace',
        replicas: -1,
        serviceReplicas: { rerankr: 2 },
        nodeSelector: { 'bad key!': 'v', pool: 'x'.repeat(64) },
        models: { kind: 'pvc', claim: 'Claim', subPath: '../up' },
        services: ['nope'],
      }),
    );
    assert.deepEqual(codes(e).sort(), [
      'BENTO_ERR_K8S_OPTION',
      'BENTO_ERR_K8S_OPTION',
      'BENTO_ERR_K8S_OPTION',
      'BENTO_ERR_K8S_OPTION',
      'BENTO_ERR_K8S_OPTION',
      'BENTO_ERR_K8S_OPTION',
      'BENTO_ERR_K8S_UNKNOWN_SERVICE',
      'BENTO_ERR_K8S_UNKNOWN_SERVICE',
    ]);
    assert.match(e.message, /--namespace: `Not_A_Namespace` is not a namespace name/);
    assert.match(e.message, /--replicas: must be a whole number >= 0 \(got -1\)/);
    assert.match(e.message, /no service `rerankr` \(services: embedder, reranker\)/);
    assert.match(e.message, /`bad key!` is not a label key/);
    assert.match(e.message, /is not a label value: it is 64 characters long/);
    assert.match(e.message, /--models-pvc: `Claim` is not a claim name/);
    assert.match(e.message, /--models-pvc: the folder `\.\.\/up` must be relative, without '\.\.'/);
    assert.match(e.message, /--service nope: the spec has no service `nope`/);
  });
});

describe('rendering', () => {
  test('the YAML stream parses back to the very objects, with no anchors', () => {
    for (const name of EXAMPLES) {
      const objects = manifests(name, { models: { kind: 'models-image', image: 'm:1' } });
      const text = manifestsToYaml(objects, 'header');
      assert.ok(text.startsWith('# header\n'));
      assert.doesNotMatch(text, /[&*]a[0-9]/);
      assert.deepEqual(
        parseAllDocuments(text).map((d) => d.toJS()),
        objects.map((o) => structuredClone(o)),
      );
    }
  });

  test('file names: <kind>-<name>.yaml', () => {
    assert.deepEqual(manifests('two-services').map(manifestFileName), [
      'configmap-search-bentofile.yaml',
      'deployment-search-embedder.yaml',
      'service-search-embedder.yaml',
      'deployment-search-reranker.yaml',
      'service-search-reranker.yaml',
    ]);
  });
});

describe('Kubernetes name rules', () => {
  test('DNS-1123 labels, DNS-1035 labels, label keys and values', () => {
    assert.equal(dns1123LabelProblem('search-embedder'), null);
    assert.equal(dns1123LabelProblem('1st'), null);
    assert.match(dns1123LabelProblem('a_b') ?? '', /lowercase letters, digits and '-'/);
    assert.match(dns1123LabelProblem('-a') ?? '', /start and end/);
    assert.match(dns1123LabelProblem('a'.repeat(64)) ?? '', /64 characters/);
    assert.match(dns1035LabelProblem('1st') ?? '', /start with a letter/);
    assert.equal(labelKeyProblem('nvidia.com/gpu.product'), null);
    assert.equal(labelKeyProblem('pool'), null);
    assert.match(labelKeyProblem('Nvidia.com/x') ?? '', /prefix `Nvidia\.com`/);
    assert.match(labelKeyProblem('a/') ?? '', /name part is empty/);
    assert.equal(labelValueProblem(''), null);
    assert.equal(labelValueProblem('NVIDIA-H100-80GB-HBM3'), null);
    assert.match(labelValueProblem('a b') ?? '', /letters, digits/);
  });
});

// ---------------------------------------------------------------------------------------------
// Against the Kubernetes API (test/helpers/k8s-api.ts): every object of every example, in each
// variant of the options, validates against the API's schemas, and the references hold.

const VARIANTS: Record<string, ManifestOptions> = {
  defaults: {},
  'pvc, namespace, replicas': {
    namespace: 'ml',
    replicas: 2,
    models: { kind: 'pvc', claim: 'bento-models', subPath: 'search/v1' },
  },
  'models image, node selectors': {
    image: 'registry.example/ml/bento:1.0',
    models: { kind: 'models-image', image: 'registry.example/ml/models:1.0' },
    nodeSelector: { 'cloud.google.com/gke-accelerator': 'nvidia-l4' },
  },
};

describe('every generated object is valid for the Kubernetes API', () => {
  test('our types use only fields the API has', () => {
    assert.ok(CORE_FIELDS_EXIST);
  });

  for (const name of EXAMPLES) {
    for (const [variant, options] of Object.entries(VARIANTS)) {
      test(`${name} (${variant})`, () => checkAgainstApis(manifests(name, options)));
    }
  }

  test('the validator does reject what the API server would', () => {
    const d = deployments(manifests('quickstart'))[0]!;
    const broken = structuredClone(d) as unknown as { spec: Record<string, unknown> };
    broken.spec.replicas = 'two';
    assert.throws(() => new DeploymentModel(broken as unknown as IDeployment).validate());
    const noSelector = structuredClone(d) as unknown as { spec: Record<string, unknown> };
    delete noSelector.spec.selector;
    assert.throws(() => new DeploymentModel(noSelector as unknown as IDeployment).validate());
  });
});
