/**
 * A validated spec -> the objects that run it, as plain data: one ConfigMap holding the spec,
 * then per bento-run service, for `--target kubernetes`, a Deployment (each pod runs `bento-run
 * serve --service NAME` on the GPUs Kubernetes gives it), a ClusterIP Service and, with
 * `scaling`, a HorizontalPodAutoscaler and a PodDisruptionBudget; for `--target kserve`, one
 * ServingRuntime and an InferenceService per service. No YAML and no files here.
 *
 * Inside a pod the GPUs Kubernetes assigned are the only visible ones, numbered from 0, which is
 * what a service's local GPU indices already mean: the spec needs no change to scale out.
 */
import { K8sError, type K8sProblem } from '../errors.js';
import { findGpuType } from '../plan/gpu-types.js';
import type { ServiceSpec, Spec } from '../spec/types.js';
import type { Bundle } from './bundle.js';
import { kserveObjects, kserveProblems } from './kserve.js';
import { kubernetesObjects, kubernetesProblems } from './kubernetes.js';
import {
  dns1035LabelProblem,
  dns1123LabelProblem,
  dns1123SubdomainProblem,
  dnsNameOf,
  labelKeyProblem,
  labelValueProblem,
} from './names.js';
import {
  at,
  configMap,
  GPU_PRODUCT_LABEL,
  type ManifestOptions,
  type ObjectNames,
  type ResolvedManifestOptions,
} from './pod.js';
import type { K8sObject } from './types.js';

export {
  CONTAINER_NAME,
  containerPort,
  DEFAULT_PORT,
  DRAIN_MARGIN_S,
  GPU_PRODUCT_LABEL,
  GPU_RESOURCE,
  GRPC_PORT_NAME,
  gracePeriodSeconds,
  LABELS,
  type ManifestOptions,
  type ModelsSource,
  nodeSelectorOf,
  type ObjectNames,
  PORT_NAME,
  PROBES,
  type ResolvedManifestOptions,
  RUN_AS,
  SPEC_DIGEST_ANNOTATION,
  selectorLabels,
} from './pod.js';

/** A storage URI as KServe's storage initializer takes it: `scheme://...`. */
const STORAGE_URI = /^[a-z][a-z0-9+.-]*:\/\/\S+$/;

/** `bento-run k8s`'s objects for `spec`, whose container copy is `bundle`. Throws K8sError. */
export function buildManifests(
  spec: Spec,
  bundle: Bundle,
  options: ManifestOptions = {},
): K8sObject[] {
  const opts = resolveManifestOptions(spec, options);
  if (bundle.target !== opts.target) {
    throw new Error(`buildManifests: the bundle is for ${bundle.target}, not ${opts.target}`);
  }
  const { names, problems } = deriveNames(spec, opts.services);
  problems.push(...opts.services.flatMap((s) => gpuSelectorProblems(spec, s, opts)));
  problems.push(
    ...(opts.target === 'kserve'
      ? kserveProblems(spec, names, opts)
      : kubernetesProblems(spec, opts)),
  );
  if (problems.length > 0) throw manifestError(spec, problems);
  const objects: K8sObject[] = [configMap(spec, bundle, names, opts)];
  if (opts.target === 'kserve') objects.push(...kserveObjects(spec, bundle, names, opts));
  else objects.push(...kubernetesObjects(spec, bundle, names, opts));
  return objects;
}

/** Checks the options against the spec and fills the defaults; every problem at once. */
export function resolveManifestOptions(
  spec: Spec,
  options: ManifestOptions,
): ResolvedManifestOptions {
  const problems: K8sProblem[] = [];
  const option = (message: string) => problems.push({ code: 'BENTO_ERR_K8S_OPTION', message });
  const known = new Set(spec.services.map((s) => s.name));
  const checkService = (name: string, flag: string) => {
    if (known.has(name)) return true;
    problems.push({
      code: 'BENTO_ERR_K8S_UNKNOWN_SERVICE',
      message: `${flag}: the spec has no service \`${name}\` (services: ${[...known].join(', ')})`,
    });
    return false;
  };

  const target = options.target ?? 'kubernetes';
  if (target !== 'kubernetes' && target !== 'kserve') {
    option(`--target: \`${String(target)}\` is not a target (valid: kubernetes, kserve)`);
  }
  const image = options.image ?? `${spec.name}:latest`;
  if (image === '' || /\s/.test(image)) option(`--image: \`${image}\` is not an image reference`);
  const namespace = options.namespace ?? null;
  if (namespace !== null) {
    const why = dns1123LabelProblem(namespace);
    if (why !== null) option(`--namespace: \`${namespace}\` is not a namespace name: ${why}`);
  }
  const scaled = (name: string) => spec.services.find((s) => s.name === name)?.scaling ?? null;
  const checkReplicas = (n: number, flag: string) => {
    if (!Number.isInteger(n) || n < 0) option(`${flag}: must be a whole number >= 0 (got ${n})`);
  };
  checkReplicas(options.replicas ?? 1, '--replicas');
  for (const [name, n] of Object.entries(options.serviceReplicas ?? {})) {
    const flag = `--replicas ${name}=${n}`;
    if (!checkService(name, flag)) continue;
    checkReplicas(n, flag);
    const s = scaled(name);
    if (s !== null && target === 'kubernetes') {
      option(
        `${flag}: service \`${name}\` has scaling (${s.minReplicas} to ${s.maxReplicas} pods), ` +
          'so its HorizontalPodAutoscaler sets the replicas; drop the flag or the scaling',
      );
    }
  }
  const checkSelector = (selector: Readonly<Record<string, string>>, flag: string) => {
    for (const [key, value] of Object.entries(selector)) {
      const keyWhy = labelKeyProblem(key);
      if (keyWhy !== null) option(`${flag}: \`${key}\` is not a label key: ${keyWhy}`);
      const valueWhy = labelValueProblem(value);
      if (valueWhy !== null) option(`${flag}: \`${value}\` is not a label value: ${valueWhy}`);
    }
  };
  checkSelector(options.nodeSelector ?? {}, '--node-selector');
  for (const [name, selector] of Object.entries(options.serviceNodeSelectors ?? {})) {
    if (checkService(name, `--node-selector ${name}:...`)) {
      checkSelector(selector, `--node-selector ${name}:...`);
    }
  }
  const models = options.models ?? { kind: 'image' };
  if (models.kind === 'pvc') checkClaim(models, '--models-pvc', option);
  if (models.kind === 'models-image' && (models.image === '' || /\s/.test(models.image))) {
    option(`--models-image: \`${models.image}\` is not an image reference`);
  }
  if (options.modelsVolume !== undefined)
    checkClaim(options.modelsVolume, '--models-volume', option);
  const uri = options.storageUri;
  if (uri !== undefined && !STORAGE_URI.test(uri)) {
    option(
      `--storage-uri: \`${uri}\` is not a storage URI (s3://BUCKET/FOLDER, gs://..., pvc://CLAIM/FOLDER)`,
    );
  }
  for (const message of targetMismatches(target, options)) option(message);
  const authSecret = resolveAuthSecret(spec, options, option);
  const wanted = options.services ?? [];
  for (const name of wanted) checkService(name, `--service ${name}`);
  if (problems.length > 0) throw manifestError(spec, problems);

  const services =
    wanted.length === 0 ? spec.services : spec.services.filter((s) => wanted.includes(s.name));
  return {
    target,
    image,
    namespace,
    services,
    replicas: (name) => options.serviceReplicas?.[name] ?? options.replicas ?? 1,
    nodeSelector: (service) =>
      options.serviceNodeSelectors?.[service.name] ??
      (service.resources.gpu > 0 ? (options.nodeSelector ?? null) : null),
    models,
    authSecret,
  };
}

function checkClaim(
  ref: { readonly claim: string; readonly subPath?: string },
  flag: string,
  option: (message: string) => void,
): void {
  const why = dns1123SubdomainProblem(ref.claim);
  if (why !== null) option(`${flag}: \`${ref.claim}\` is not a claim name: ${why}`);
  const sub = ref.subPath;
  if (sub !== undefined && (sub.startsWith('/') || sub.split('/').includes('..'))) {
    option(`${flag}: the folder \`${sub}\` must be relative, without '..'`);
  }
}

/** Options of the other target: each one's message says what this target uses instead. */
function targetMismatches(target: string, options: ManifestOptions): string[] {
  const out: string[] = [];
  if (target === 'kserve') {
    if (options.replicas !== undefined || options.serviceReplicas !== undefined) {
      out.push(
        '--replicas is for --target kubernetes: KServe keeps each InferenceService between ' +
          'minReplicas and maxReplicas; set services.NAME.scaling (default: KServe keeps 1)',
      );
    }
    const m = options.models;
    if (m !== undefined && m.kind !== 'image') {
      const flag = m.kind === 'pvc' ? '--models-pvc' : '--models-image';
      out.push(
        `${flag} is for --target kubernetes: KServe downloads the models itself; give ` +
          '--storage-uri (pvc://CLAIM/FOLDER for a claim) or models.NAME.storage_uri',
      );
    }
    if (options.modelsVolume !== undefined) {
      out.push(
        '--models-volume is for --target kubernetes: with KServe, give the claim as ' +
          '--storage-uri pvc://CLAIM/FOLDER',
      );
    }
  } else if (options.storageUri !== undefined) {
    out.push(
      '--storage-uri is for --target kserve: plain Kubernetes pods read the models from the ' +
        'image, --models-pvc, --models-image or --models-volume',
    );
  }
  return out;
}

function resolveAuthSecret(
  spec: Spec,
  options: ManifestOptions,
  option: (message: string) => void,
): string | null {
  if (spec.server.auth === null) {
    if (options.authSecret !== undefined) {
      option('--auth-secret: the spec has no server.auth, so the pods need no tokens');
    }
    return null;
  }
  const secret = options.authSecret ?? `${spec.name}-auth`;
  const why = dns1123SubdomainProblem(secret);
  if (why !== null) option(`--auth-secret: \`${secret}\` is not a Secret name: ${why}`);
  return secret;
}

/**
 * The Deployment and Service name of each service: `<spec name>-<service name>`, '_' -> '-'.
 * A Service name is a DNS-1035 label: at most 63 characters, starting with a letter.
 */
function deriveNames(
  spec: Spec,
  services: readonly ServiceSpec[],
): { names: ObjectNames; problems: K8sProblem[] } {
  const problems: K8sProblem[] = [];
  const byName = new Map<string, string>();
  const names = new Map<string, string>();
  for (const service of services) {
    const name = `${spec.name}-${dnsNameOf(service.name)}`;
    const why = dns1035LabelProblem(name);
    if (why !== null) {
      problems.push({
        code: 'BENTO_ERR_K8S_NAME',
        message:
          `${at(spec, `services.${service.name}`)}service \`${service.name}\`: its Kubernetes name ` +
          `\`${name}\` (the spec's name, '-', the service's name) is not valid: ${why}; ` +
          "shorten or rename the spec's `name` or the service",
      });
      continue;
    }
    const other = byName.get(name);
    if (other !== undefined) {
      problems.push({
        code: 'BENTO_ERR_K8S_NAME',
        message:
          `${at(spec, `services.${service.name}`)}services \`${other}\` and \`${service.name}\` ` +
          `both become the Kubernetes name \`${name}\` ('_' turns into '-'); rename one of them`,
      });
      continue;
    }
    byName.set(name, service.name);
    names.set(service.name, name);
  }
  return {
    names: {
      configMap: `${spec.name}-bentofile`,
      runtime: `${spec.name}-runtime`,
      services: names,
    },
    problems,
  };
}

function gpuSelectorProblems(
  spec: Spec,
  service: ServiceSpec,
  opts: ResolvedManifestOptions,
): K8sProblem[] {
  const type = service.resources.gpuType;
  if (service.resources.gpu === 0 || type === null || opts.nodeSelector(service) !== null)
    return [];
  if (findGpuType(type) !== undefined) return [];
  return [
    {
      code: 'BENTO_ERR_K8S_GPU_TYPE',
      message:
        `${at(spec, `services.${service.name}.resources.gpu_type`)}service \`${service.name}\`: ` +
        `gpu_type \`${type}\` has no known ${GPU_PRODUCT_LABEL} node label; choose the nodes ` +
        `with --node-selector ${service.name}:${GPU_PRODUCT_LABEL}=<product> (the label GPU ` +
        'feature discovery put on them: kubectl get nodes -L nvidia.com/gpu.product) or another label',
    },
  ];
}

function manifestError(spec: Spec, problems: readonly K8sProblem[]): K8sError {
  return new K8sError(problems, {
    heading: `cannot write Kubernetes objects for ${spec.file}:`,
  });
}
