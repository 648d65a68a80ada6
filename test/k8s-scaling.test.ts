// `bento-run k8s --target kubernetes` as platform teams run it: the autoscaler and disruption
// budget of `scaling`, models from PersistentVolumeClaims, and server.auth's tokens from a Secret.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { createMetrics } from '../src/core/metrics.js';
import { K8sError, type K8sErrorCode } from '../src/errors.js';
import { type BundleOptions, bundleSpec } from '../src/k8s/bundle.js';
import { buildDockerfile } from '../src/k8s/dockerfile.js';
import { CPU_TARGET_UTILIZATION, IN_FLIGHT_METRIC } from '../src/k8s/kubernetes.js';
import { buildManifests, type ManifestOptions } from '../src/k8s/manifests.js';
import type { ConfigMap, Container, Deployment, K8sObject } from '../src/k8s/types.js';
import type { Runtime } from '../src/runtime/types.js';
import type { AuthSpec, ModelSpec, ScalingSpec, Spec } from '../src/spec/types.js';
import { loadSpec } from '../src/spec/validate.js';
import { checkAgainstApis, ofKind } from './helpers/k8s-api.js';
import { ROOT } from './helpers/server.js';
import { makeSpec, type SpecInput } from './helpers/spec-factory.js';

const PLATFORM = 'test/fixtures/k8s-specs/platform/bentofile.yaml';
const SECURED = 'test/fixtures/k8s-specs/secured.yaml';

function fromFile(file: string, options: ManifestOptions = {}): K8sObject[] {
  const path = join(ROOT, file);
  const { spec } = loadSpec(path, { checkFiles: false });
  return buildManifests(spec, bundleSpec(spec, readFileSync(path, 'utf8'), options), options);
}

/** The YAML a factory-made spec could have been loaded from: models, services, server.auth. */
function textOf(spec: Spec): string {
  const auth = spec.server.auth;
  return JSON.stringify({
    version: 1,
    name: spec.name,
    models: Object.fromEntries(
      Object.values(spec.models).map((m) => [m.name, { path: m.declaredPath }]),
    ),
    services: Object.fromEntries(spec.services.map((s) => [s.name, { models: s.models }])),
    ...(auth === null
      ? {}
      : {
          server: {
            auth: 'tokensEnv' in auth ? { tokens_env: auth.tokensEnv } : { tokens_file: 't' },
          },
        }),
  });
}

function build(spec: Spec, options: ManifestOptions = {}): K8sObject[] {
  return buildManifests(spec, bundleSpec(spec, textOf(spec), options as BundleOptions), options);
}

/** A factory spec with `scaling` (and resources.cpu) on some services. */
function scaled(
  input: SpecInput,
  scaling: Record<string, ScalingSpec>,
  cpu: Record<string, string> = {},
): Spec {
  const spec = makeSpec(input);
  return {
    ...spec,
    services: spec.services.map((s) => ({
      ...s,
      scaling: scaling[s.name] ?? null,
      resources: { ...s.resources, cpu: cpu[s.name] ?? null },
    })),
  };
}

const withAuth = (spec: Spec, auth: AuthSpec): Spec => ({
  ...spec,
  server: { ...spec.server, auth },
});

const withModels = (spec: Spec, models: Record<string, Partial<ModelSpec>>): Spec => ({
  ...spec,
  models: Object.fromEntries(
    Object.values(spec.models).map((m) => [m.name, { ...m, ...(models[m.name] ?? {}) }]),
  ),
});

const deployment = (objects: K8sObject[], name: string): Deployment => {
  const d = ofKind(objects, 'Deployment').find((o) => o.metadata.name === name);
  assert.ok(d, `no Deployment ${name}`);
  return d;
};
const container = (d: Deployment): Container => d.spec.template.spec.containers[0]!;
const specText = (objects: K8sObject[]) =>
  (objects[0] as ConfigMap).data['bentofile.yaml'] ?? assert.fail('no spec in the ConfigMap');
const pathsIn = (objects: K8sObject[]) =>
  Object.fromEntries(
    Object.entries(
      (parse(specText(objects)) as { models: Record<string, { path: string }> }).models,
    ).map(([k, v]) => [k, v.path]),
  );

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

const TWO: SpecInput = {
  name: 'x',
  services: { api: { models: ['m'] }, batch: { models: ['n'] } },
};

describe('scaling: a HorizontalPodAutoscaler and a PodDisruptionBudget per scaled service', () => {
  const spec = scaled(TWO, { api: { minReplicas: 2, maxReplicas: 10, targetInFlight: 8 } });

  test('after the Deployment and Service of that service only', () => {
    assert.deepEqual(
      build(spec).map((o) => `${o.kind}/${o.metadata.name}`),
      [
        'ConfigMap/x-bentofile',
        'Deployment/x-api',
        'Service/x-api',
        'HorizontalPodAutoscaler/x-api',
        'PodDisruptionBudget/x-api',
        'Deployment/x-batch',
        'Service/x-batch',
      ],
    );
  });

  test("the autoscaler: the Deployment, min..max, the pods' average of requests in flight", () => {
    const hpa = ofKind(build(spec), 'HorizontalPodAutoscaler')[0]!;
    assert.equal(hpa.apiVersion, 'autoscaling/v2');
    assert.deepEqual(hpa.spec, {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'x-api' },
      minReplicas: 2,
      maxReplicas: 10,
      metrics: [
        {
          type: 'Pods',
          pods: {
            metric: { name: 'bento_requests_in_flight' },
            target: { type: 'AverageValue', averageValue: 8 },
          },
        },
      ],
    });
  });

  test('the metric is the gauge bento-run exports, one series per service of the pod', async () => {
    const runtime = {
      plan: { services: [{ name: 'api' }], placements: [] },
      workers: () => [],
      events: new EventEmitter(),
    } as unknown as Runtime;
    const metrics = await createMetrics(runtime).registry.getMetricsAsJSON();
    const gauge = metrics.find((m) => m.name === IN_FLIGHT_METRIC);
    assert.ok(gauge, `${IN_FLIGHT_METRIC} is among bento-run's metrics`);
    assert.equal(gauge.type, 'gauge');
    assert.deepEqual(
      gauge.values.map((v) => v.labels),
      [{ service: 'api' }],
    );
  });

  test('without target_in_flight: CPU utilisation of the CPU request', () => {
    const cpu = scaled(
      TWO,
      { api: { minReplicas: 1, maxReplicas: 3, targetInFlight: null } },
      { api: '2' },
    );
    assert.deepEqual(ofKind(build(cpu), 'HorizontalPodAutoscaler')[0]!.spec.metrics, [
      {
        type: 'Resource',
        resource: {
          name: 'cpu',
          target: { type: 'Utilization', averageUtilization: CPU_TARGET_UTILIZATION },
        },
      },
    ]);
  });

  test('CPU utilisation without a CPU request cannot be measured: an error with both fixes', () => {
    const noCpu = scaled(TWO, { api: { minReplicas: 1, maxReplicas: 3, targetInFlight: null } });
    const e = k8sError(() => build(noCpu));
    assert.deepEqual(codes(e), ['BENTO_ERR_K8S_SCALING']);
    assert.match(e.message, /service `api`: scaling without target_in_flight scales on CPU/);
    assert.match(e.message, /set resources\.cpu, or scaling\.target_in_flight/);
  });

  test('the budget: one pod at a time, never blocking a drain; unready pods may always go', () => {
    const objects = build(spec);
    const pdb = ofKind(objects, 'PodDisruptionBudget')[0]!;
    assert.equal(pdb.apiVersion, 'policy/v1');
    assert.deepEqual(pdb.spec, {
      maxUnavailable: 1,
      selector: { matchLabels: deployment(objects, 'x-api').spec.selector.matchLabels },
      unhealthyPodEvictionPolicy: 'AlwaysAllow',
    });
  });

  test('a scaled Deployment leaves the replica count to the autoscaler; --replicas the others', () => {
    const objects = build(spec, { replicas: 3 });
    assert.equal(deployment(objects, 'x-api').spec.replicas, undefined);
    assert.equal(deployment(objects, 'x-batch').spec.replicas, 3);
    const e = k8sError(() => build(spec, { serviceReplicas: { api: 4 } }));
    assert.deepEqual(codes(e), ['BENTO_ERR_K8S_OPTION']);
    assert.match(e.message, /--replicas api=4: service `api` has scaling \(2 to 10 pods\)/);
  });

  test('the platform fixture: in-flight for the GPU service, CPU for the other, none for the third', () => {
    const objects = fromFile(PLATFORM, { modelsVolume: { claim: 'ml-models' } });
    const hpas = ofKind(objects, 'HorizontalPodAutoscaler');
    assert.deepEqual(
      hpas.map((h) => [
        h.metadata.name,
        h.spec.minReplicas,
        h.spec.maxReplicas,
        h.spec.metrics[0]!.type,
      ]),
      [
        ['platform-embedder', 2, 8, 'Pods'],
        ['platform-reranker', 1, 4, 'Resource'],
      ],
    );
    assert.equal(ofKind(objects, 'PodDisruptionBudget').length, 2);
    assert.equal(deployment(objects, 'platform-tagger').spec.replicas, 1);
  });
});

describe('models outside the spec folder, from PersistentVolumeClaims', () => {
  const outside = (spec: Spec) =>
    withModels(spec, {
      m: { path: '/srv/models/m.onnx', declaredPath: '../models/m.onnx' },
      n: { path: '/srv/models/sub/n.onnx', declaredPath: '../models/sub/n.onnx' },
    });

  test('--models-volume: the claim holds their folder, mounted read-only at /mnt/models', () => {
    const objects = build(outside(makeSpec(TWO)), {
      modelsVolume: { claim: 'ml-models', subPath: 'v1' },
    });
    assert.deepEqual(pathsIn(objects), { m: '/mnt/models/m.onnx', n: '/mnt/models/sub/n.onnx' });
    for (const d of ofKind(objects, 'Deployment')) {
      const pod = d.spec.template.spec;
      assert.deepEqual(pod.volumes[1], {
        name: 'models-volume',
        persistentVolumeClaim: { claimName: 'ml-models', readOnly: true },
      });
      assert.deepEqual(container(d).volumeMounts[1], {
        name: 'models-volume',
        mountPath: '/mnt/models',
        readOnly: true,
        subPath: 'v1',
      });
    }
  });

  test('beside models in the image or in --models-pvc, which stay at /bento', () => {
    const spec = withModels(makeSpec(TWO), {
      n: { path: '/srv/models/n.onnx', declaredPath: '../models/n.onnx' },
    });
    const objects = build(spec, {
      modelsVolume: { claim: 'ml-models' },
      models: { kind: 'pvc', claim: 'bento' },
    });
    assert.deepEqual(pathsIn(objects), { m: '/bento/models/m.onnx', n: '/mnt/models/n.onnx' });
    assert.deepEqual(
      container(deployment(objects, 'x-api')).volumeMounts.map((m) => `${m.name}:${m.mountPath}`),
      ['bentofile:/etc/bento', 'models:/bento', 'models-volume:/mnt/models'],
    );
  });

  test('models.X.volume: each claim mounted once at /mnt/volumes/<claim>, every pod', () => {
    const spec = withModels(makeSpec(TWO), {
      m: {
        path: '/elsewhere/m.onnx',
        declaredPath: '/elsewhere/m.onnx',
        volume: { claim: 'c', subPath: 'a/b' },
      },
      n: { volume: { claim: 'c', subPath: null } },
    });
    const objects = build(spec);
    assert.deepEqual(pathsIn(objects), {
      m: '/mnt/volumes/c/a/b/m.onnx',
      n: '/mnt/volumes/c/n.onnx',
    });
    for (const d of ofKind(objects, 'Deployment')) {
      assert.deepEqual(d.spec.template.spec.volumes.slice(1), [
        { name: 'model-claim-0', persistentVolumeClaim: { claimName: 'c', readOnly: true } },
      ]);
      assert.deepEqual(container(d).volumeMounts.slice(1), [
        { name: 'model-claim-0', mountPath: '/mnt/volumes/c', readOnly: true },
      ]);
    }
  });

  test('--models-volume when every model has its place already: an error', () => {
    const e = k8sError(() => build(makeSpec(TWO), { modelsVolume: { claim: 'ml-models' } }));
    assert.deepEqual(codes(e), ['BENTO_ERR_K8S_OPTION']);
    assert.match(e.message, /--models-volume: no model lies outside the spec's folder/);
  });

  test('a bad claim name or folder: named, like --models-pvc', () => {
    const e = k8sError(() =>
      build(outside(makeSpec(TWO)), { modelsVolume: { claim: 'ML', subPath: '../x' } }),
    );
    assert.match(e.message, /--models-volume: `ML` is not a claim name/);
    assert.match(e.message, /--models-volume: the folder `\.\.\/x` must be relative/);
  });

  test('two different files at one path in the pods: an error naming both', () => {
    const spec = withModels(makeSpec(TWO), {
      m: {
        path: '/a/model.onnx',
        declaredPath: '/a/model.onnx',
        volume: { claim: 'c', subPath: null },
      },
      n: {
        path: '/b/model.onnx',
        declaredPath: '/b/model.onnx',
        volume: { claim: 'c', subPath: null },
      },
    });
    const e = k8sError(() => build(spec));
    assert.deepEqual(codes(e), ['BENTO_ERR_K8S_MODEL_PATH']);
    assert.match(e.message, /`m` \(\/a\/model\.onnx\) and `n` \(\/b\/model\.onnx\)/);
  });

  test('the Dockerfile copies only the models of the spec folder', () => {
    const spec = withModels(makeSpec(TWO), { n: { volume: { claim: 'c', subPath: null } } });
    const text = buildDockerfile(spec, bundleSpec(spec, textOf(spec)), {
      bentoRunVersion: '0.1.0',
    });
    assert.match(text, /^COPY \["models\/m\.onnx", "\/bento\/models\/m\.onnx"\]$/m);
    assert.doesNotMatch(text, /COPY \["models\/n\.onnx"/);
    assert.match(text, /# Not in the image: \/mnt\/volumes\/c\/n\.onnx \(n\)/);
  });
});

describe('server.auth: the tokens from a Secret', () => {
  test('tokens_env: the variable from the Secret <name>-auth, key tokens', () => {
    const objects = build(withAuth(makeSpec(TWO), { tokensEnv: 'BENTO_TOKENS' }));
    for (const d of ofKind(objects, 'Deployment')) {
      assert.deepEqual(container(d).env, [
        { name: 'BENTO_TOKENS', valueFrom: { secretKeyRef: { name: 'x-auth', key: 'tokens' } } },
      ]);
    }
  });

  test('tokens_file: the Secret mounted at /etc/bento-auth, the spec pointing at its file', () => {
    const objects = build(withAuth(makeSpec(TWO), { tokensFile: '/srv/specs/t' }), {
      authSecret: 'tokens',
    });
    const d = deployment(objects, 'x-api');
    assert.deepEqual(d.spec.template.spec.volumes.at(-1), {
      name: 'auth',
      secret: { secretName: 'tokens', items: [{ key: 'tokens', path: 'tokens' }] },
    });
    assert.deepEqual(container(d).volumeMounts.at(-1), {
      name: 'auth',
      mountPath: '/etc/bento-auth',
      readOnly: true,
    });
    assert.equal(container(d).env, undefined);
    const doc = parse(specText(objects)) as { server: { auth: { tokens_file: string } } };
    assert.equal(doc.server.auth.tokens_file, '/etc/bento-auth/tokens');
  });

  test('no auth: no Secret anywhere; --auth-secret then is an error', () => {
    assert.doesNotMatch(JSON.stringify(build(makeSpec(TWO))), /secret/i);
    const e = k8sError(() => build(makeSpec(TWO), { authSecret: 'tokens' }));
    assert.match(e.message, /--auth-secret: the spec has no server\.auth/);
    const bad = k8sError(() =>
      build(withAuth(makeSpec(TWO), { tokensEnv: 'T' }), { authSecret: 'Bad_Name' }),
    );
    assert.match(bad.message, /--auth-secret: `Bad_Name` is not a Secret name/);
  });
});

describe('every object is valid for the Kubernetes API', () => {
  test('platform: HPAs, PDBs, claims, tokens from the environment', () =>
    checkAgainstApis(
      fromFile(PLATFORM, { namespace: 'ml', modelsVolume: { claim: 'ml-models', subPath: 'p' } }),
    ));
  test('secured: tokens from a file, CPU autoscaling', () => checkAgainstApis(fromFile(SECURED)));
  test('a factory spec with everything at once', () => {
    const spec = withAuth(
      withModels(scaled(TWO, { api: { minReplicas: 1, maxReplicas: 2, targetInFlight: 4 } }), {
        n: { path: '/srv/models/n.onnx', declaredPath: '../models/n.onnx' },
      }),
      { tokensFile: '/srv/specs/t' },
    );
    checkAgainstApis(
      build(spec, { modelsVolume: { claim: 'c' }, models: { kind: 'models-image', image: 'm:1' } }),
    );
  });
});
