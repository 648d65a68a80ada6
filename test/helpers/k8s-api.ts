/**
 * `bento-run k8s`'s objects against the APIs that will receive them. Core kinds: at compile time
 * every field our types can produce exists, under the same name and nesting, in the API's types
 * (kubernetes-models, generated from the OpenAPI schema); at run time every object validates
 * against the API's JSON schemas (types, formats, required fields). KServe's kinds: against the
 * openAPIV3Schema of KServe's CRDs (test/fixtures/k8s/crds, copied from KServe's release), made
 * strict about unknown fields as `kubectl apply --validate=strict` is. Then the references
 * between the objects, which no schema checks.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import { Deployment as DeploymentModel } from 'kubernetes-models/apps/v1/Deployment';
import type { IHorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { HorizontalPodAutoscaler as HpaModel } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { PodDisruptionBudget as PdbModel } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { ConfigMap as ConfigMapModel } from 'kubernetes-models/v1/ConfigMap';
import type { IService } from 'kubernetes-models/v1/Service';
import { Service as ServiceModel } from 'kubernetes-models/v1/Service';
import { parseAllDocuments } from 'yaml';
import {
  dns1035LabelProblem,
  dns1123LabelProblem,
  labelKeyProblem,
  labelValueProblem,
} from '../../src/k8s/names.js';
import type {
  ConfigMap,
  Container,
  Deployment,
  HorizontalPodAutoscaler,
  InferenceService,
  K8sObject,
  PodDisruptionBudget,
  Service,
  ServingRuntime,
  Volume,
} from '../../src/k8s/types.js';
import { ROOT } from './server.js';

/** Dotted paths of the fields of `M` that `T` lacks (never when there are none). */
type ExtraFields<M, T, P extends string = ''> = M extends readonly (infer ME)[]
  ? T extends readonly (infer TE)[]
    ? ExtraFields<ME, TE, `${P}[]`>
    : P
  : M extends object
    ? T extends object
      ? {
          [K in keyof M & string]-?: K extends keyof T
            ? ExtraFields<NonNullable<M[K]>, NonNullable<T[K]>, `${P}.${K}`>
            : `${P}.${K}`;
        }[keyof M & string]
      : P
    : never;
type NoExtraFields<M, T> = [ExtraFields<M, T>] extends [never] ? true : ExtraFields<M, T>;
const deploymentFieldsExist: NoExtraFields<Deployment, IDeployment> = true;
const serviceFieldsExist: NoExtraFields<Service, IService> = true;
const configMapFieldsExist: NoExtraFields<ConfigMap, IConfigMap> = true;
const hpaFieldsExist: NoExtraFields<HorizontalPodAutoscaler, IHorizontalPodAutoscaler> = true;
const pdbFieldsExist: NoExtraFields<PodDisruptionBudget, IPodDisruptionBudget> = true;
export const CORE_FIELDS_EXIST =
  deploymentFieldsExist &&
  serviceFieldsExist &&
  configMapFieldsExist &&
  hpaFieldsExist &&
  pdbFieldsExist;

type CoreObject = Exclude<K8sObject, ServingRuntime | InferenceService>;
// And the values have the API's types.
const asApi = (
  o: CoreObject,
): IDeployment | IService | IConfigMap | IHorizontalPodAutoscaler | IPodDisruptionBudget => o;

const CRDS = join(ROOT, 'test/fixtures/k8s/crds');
const CRD_FILES = {
  ServingRuntime: 'serving.kserve.io_servingruntimes.yaml',
  InferenceService: 'serving.kserve.io_inferenceservices.yaml',
} as const;
const compiled = new Map<string, ValidateFunction>();

/**
 * A CRD schema is structural: the API server prunes unknown fields rather than refuse them. To
 * catch a misspelt field as strict field validation does, every object schema with properties,
 * and no say of its own about other fields, refuses them.
 */
function strict(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(strict);
  if (schema === null || typeof schema !== 'object') return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema)) {
    out[k] =
      k === 'properties'
        ? Object.fromEntries(Object.entries(v).map(([p, s]) => [p, strict(s)]))
        : strict(v);
  }
  if (
    'properties' in out &&
    !('additionalProperties' in out) &&
    out['x-kubernetes-preserve-unknown-fields'] !== true
  ) {
    out.additionalProperties = false;
  }
  return out;
}

/** The validator of a KServe kind at the CRD's served version, compiled once. */
export function crdValidator(kind: keyof typeof CRD_FILES, version: string): ValidateFunction {
  const key = `${kind}/${version}`;
  const known = compiled.get(key);
  if (known) return known;
  const crd = parseAllDocuments(readFileSync(join(CRDS, CRD_FILES[kind]), 'utf8'))
    .map(
      (d) =>
        d.toJS() as {
          kind?: string;
          spec?: {
            names: { kind: string };
            versions: { name: string; schema: { openAPIV3Schema: object } }[];
          };
        },
    )
    .find((d) => d?.kind === 'CustomResourceDefinition' && d.spec?.names.kind === kind);
  const served = crd?.spec?.versions.find((v) => v.name === version);
  assert.ok(served, `no ${kind} ${version} in ${CRD_FILES[kind]}`);
  // strict off: the x-kubernetes-* extensions are no JSON Schema keywords; formats such as
  // int32 and int64 are OpenAPI's, so they are not checked here (their types still are).
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  const validate = ajv.compile(strict(served.schema.openAPIV3Schema) as object);
  compiled.set(key, validate);
  return validate;
}

function validateCrd(o: ServingRuntime | InferenceService): void {
  const version = o.apiVersion.split('/')[1]!;
  const validate = crdValidator(o.kind, version);
  if (!validate(structuredClone(o))) {
    const errors = (validate.errors ?? []).map(
      (e) => `${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`,
    );
    assert.fail(`${o.kind}/${o.metadata.name} does not fit KServe's CRD:\n${errors.join('\n')}`);
  }
}

/** Validates one object against its API's schema; throws with the API's complaint. */
export function validateObject(o: K8sObject): void {
  switch (o.kind) {
    case 'ServingRuntime':
    case 'InferenceService':
      validateCrd(o);
      break;
    case 'Deployment':
      new DeploymentModel(asApi(o) as IDeployment).validate();
      break;
    case 'Service':
      new ServiceModel(asApi(o) as IService).validate();
      break;
    case 'ConfigMap':
      new ConfigMapModel(asApi(o) as IConfigMap).validate();
      break;
    case 'HorizontalPodAutoscaler':
      new HpaModel(asApi(o) as IHorizontalPodAutoscaler).validate();
      break;
    case 'PodDisruptionBudget':
      new PdbModel(asApi(o) as IPodDisruptionBudget).validate();
      break;
  }
}

export const ofKind = <K extends K8sObject['kind']>(objects: readonly K8sObject[], kind: K) =>
  objects.filter((o): o is Extract<K8sObject, { kind: K }> => o.kind === kind);

function checkLabels(labels: Record<string, string>): void {
  for (const [k, v] of Object.entries(labels)) {
    assert.equal(labelKeyProblem(k), null, k);
    assert.equal(labelValueProblem(v), null, v);
  }
}

/** Containers: names, mounts of declared volumes, probes on declared ports. */
function checkContainers(containers: readonly Container[], volumes: readonly Volume[]): void {
  const names = new Set(volumes.map((v) => v.name));
  assert.equal(names.size, volumes.length, 'volume names are unique');
  for (const c of containers) {
    assert.equal(dns1123LabelProblem(c.name), null);
    const mounts = c.volumeMounts.map((m) => m.mountPath);
    assert.equal(new Set(mounts).size, mounts.length, `${c.name}: mount paths are unique`);
    for (const m of c.volumeMounts) assert.ok(names.has(m.name), `mount ${m.name}`);
    const ports = new Set((c.ports ?? []).flatMap((p) => [p.name, String(p.containerPort)]));
    for (const p of c.ports ?? []) assert.ok(p.name.length <= 15, `port name ${p.name}`);
    for (const probe of [c.startupProbe, c.livenessProbe, c.readinessProbe]) {
      if (probe)
        assert.ok(ports.has(String(probe.httpGet.port)), `probe port ${probe.httpGet.port}`);
    }
    for (const e of c.env ?? []) assert.match(e.name, /^[A-Za-z_][A-Za-z0-9_]*$/);
  }
}

/** What the API servers check beyond the schemas, for the fields we write. */
export function checkReferences(objects: readonly K8sObject[]): void {
  const cm = ofKind(objects, 'ConfigMap');
  assert.equal(cm.length, 1);
  for (const o of objects) {
    assert.equal(dns1123LabelProblem(o.metadata.name), null, o.metadata.name);
    checkLabels(o.metadata.labels ?? {});
  }
  const configMapNamed = (v: Volume) =>
    !('configMap' in v) || v.configMap.name === cm[0]!.metadata.name;
  for (const s of ofKind(objects, 'Service'))
    assert.equal(dns1035LabelProblem(s.metadata.name), null);
  const deploymentsByName = new Map(ofKind(objects, 'Deployment').map((d) => [d.metadata.name, d]));
  for (const d of deploymentsByName.values()) {
    const pod = d.spec.template.spec;
    for (const [k, v] of Object.entries(d.spec.selector.matchLabels)) {
      assert.equal(d.spec.template.metadata.labels[k], v, 'the selector must match the template');
    }
    checkLabels(d.spec.template.metadata.labels);
    checkContainers([...(pod.initContainers ?? []), ...pod.containers], pod.volumes);
    assert.ok(pod.volumes.every(configMapNamed));
    const svc = ofKind(objects, 'Service').find((s) => s.metadata.name === d.metadata.name);
    assert.ok(svc, `a Service for ${d.metadata.name}`);
    assert.deepEqual(svc.spec.selector, d.spec.selector.matchLabels);
    const containerPorts = pod.containers[0]!.ports!.map((p) => p.name);
    for (const p of svc.spec.ports) assert.ok(containerPorts.includes(p.targetPort));
  }
  for (const h of ofKind(objects, 'HorizontalPodAutoscaler')) {
    const d = deploymentsByName.get(h.spec.scaleTargetRef.name);
    assert.ok(d, `the HPA ${h.metadata.name} scales a Deployment of ours`);
    assert.equal(d.spec.replicas, undefined, 'an autoscaled Deployment leaves replicas to the HPA');
    assert.ok(h.spec.minReplicas >= 1 && h.spec.minReplicas <= h.spec.maxReplicas);
  }
  for (const p of ofKind(objects, 'PodDisruptionBudget')) {
    const d = deploymentsByName.get(p.metadata.name);
    assert.ok(d, `the PDB ${p.metadata.name} covers a Deployment of ours`);
    assert.deepEqual(p.spec.selector.matchLabels, d.spec.selector.matchLabels);
  }
  const runtimes = ofKind(objects, 'ServingRuntime');
  for (const r of runtimes) {
    checkContainers(r.spec.containers, r.spec.volumes);
    assert.ok(r.spec.volumes.every(configMapNamed));
  }
  for (const i of ofKind(objects, 'InferenceService')) {
    assert.equal(
      dns1035LabelProblem(i.metadata.name),
      null,
      'an InferenceService name is a DNS-1035 label',
    );
    const runtime = runtimes.find((r) => r.metadata.name === i.spec.predictor.model.runtime);
    assert.ok(runtime, `the runtime of ${i.metadata.name} is among the objects`);
    const format = i.spec.predictor.model.modelFormat.name;
    assert.ok(runtime.spec.supportedModelFormats.some((f) => f.name === format));
    for (const k of Object.keys(i.spec.predictor.annotations))
      assert.equal(labelKeyProblem(k), null, k);
  }
}

/** Every object valid for its API, and the references between them. */
export function checkAgainstApis(objects: readonly K8sObject[]): void {
  for (const o of objects) {
    assert.doesNotThrow(() => validateObject(o), `${o.kind}/${o.metadata.name}`);
  }
  checkReferences(objects);
}
