/**
 * What the pods of both targets share: names and labels, the container's probes, resources and
 * security, node selection for GPUs, the grace period after SIGTERM, and the wiring of the spec's
 * ConfigMap, the model claims and the auth Secret into a pod.
 */
import { findGpuType } from '../plan/gpu-types.js';
import type { ServiceSpec, Spec } from '../spec/types.js';
import {
  AUTH_DIR,
  AUTH_SECRET_KEY,
  type Bundle,
  type ClaimRef,
  type K8sTarget,
  SPEC_DIR,
  SPEC_FILE,
} from './bundle.js';
import type {
  ConfigMap,
  ContainerSecurityContext,
  EnvVar,
  K8sObject,
  Probe,
  Quantity,
  Resources,
  Toleration,
  Volume,
  VolumeMount,
} from './types.js';

/** Where the pods find the models; in every case the container sees them under BUNDLE_ROOT. */
export type ModelsSource =
  /** In the serving image itself, as `bento-run dockerfile` builds it: no volume. */
  | { readonly kind: 'image' }
  /** A PersistentVolumeClaim (optionally a folder in it) holding the spec's folder, read-only. */
  | { readonly kind: 'pvc'; readonly claim: string; readonly subPath?: string }
  /** Another image whose BUNDLE_ROOT holds the models; an init container copies them out. */
  | { readonly kind: 'models-image'; readonly image: string };

/** What `bento-run k8s` lets the user choose; every field optional. */
export interface ManifestOptions {
  /** @default 'kubernetes' */
  readonly target?: K8sTarget;
  /** The image with bento-run in it (and the models, by default). @default `<spec name>:latest` */
  readonly image?: string;
  /** Set on every object. @default none: kubectl's current namespace */
  readonly namespace?: string;
  /** Replicas of every Deployment without `scaling`. @default 1 */
  readonly replicas?: number;
  /** Replicas by service name, over `replicas`. */
  readonly serviceReplicas?: Readonly<Record<string, number>>;
  /**
   * Node selector of every GPU service, replacing the one derived from `gpu_type` (for clusters
   * without GPU feature discovery, e.g. `cloud.google.com/gke-accelerator`). CPU services get none.
   */
  readonly nodeSelector?: Readonly<Record<string, string>>;
  /** Node selector by service name (CPU services too), over `nodeSelector` and `gpu_type`. */
  readonly serviceNodeSelectors?: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** Kubernetes: where the spec's folder is. @default { kind: 'image' } */
  readonly models?: ModelsSource;
  /** Kubernetes: the claim holding the folder of the models outside the spec's folder. */
  readonly modelsVolume?: ClaimRef;
  /** KServe: the storage URI of the models that have none of their own. */
  readonly storageUri?: string;
  /** The Secret holding `server.auth`'s tokens under the key `tokens`. @default `<spec name>-auth` */
  readonly authSecret?: string;
  /** Only these services, by name. @default every service */
  readonly services?: readonly string[];
}

/** `ManifestOptions` checked against the spec, every default filled. */
export interface ResolvedManifestOptions {
  readonly target: K8sTarget;
  readonly image: string;
  readonly namespace: string | null;
  readonly services: readonly ServiceSpec[];
  readonly replicas: (service: string) => number;
  /** The user's node selector for a service, or null to derive one from `gpu_type`. */
  readonly nodeSelector: (service: ServiceSpec) => Readonly<Record<string, string>> | null;
  readonly models: ModelsSource;
  /** The auth Secret's name; null when the spec has no `server.auth`. */
  readonly authSecret: string | null;
}

/** The object names one spec produces. */
export interface ObjectNames {
  readonly configMap: string;
  /** KServe's ServingRuntime. */
  readonly runtime: string;
  /** Service name -> the name of its Deployment and Service, or InferenceService. */
  readonly services: ReadonlyMap<string, string>;
}

export const LABELS = {
  name: 'app.kubernetes.io/name',
  instance: 'app.kubernetes.io/instance',
  component: 'app.kubernetes.io/component',
  managedBy: 'app.kubernetes.io/managed-by',
} as const;
export const GPU_RESOURCE = 'nvidia.com/gpu';
/** The node label NVIDIA GPU feature discovery sets to the GPU's product name. */
export const GPU_PRODUCT_LABEL = 'nvidia.com/gpu.product';
export const SPEC_DIGEST_ANNOTATION = 'bento-run/spec-sha256';
export const CONTAINER_NAME = 'bento-run';
export const PORT_NAME = 'http';
export const GRPC_PORT_NAME = 'grpc';
/** The container port when the spec's `server.port` is 0 (a free port makes no sense in a pod). */
export const DEFAULT_PORT = 3000;
/** The uid and gid of `node` in the official Node images; the Dockerfile runs as them too. */
export const RUN_AS = 1000;

/**
 * The server listens only once every model is loaded, so the startup probe waits up to
 * period x threshold = 10 minutes (large models on a cold node) before liveness takes over.
 */
export const PROBES = {
  startup: { path: '/livez', periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 60 },
  liveness: { path: '/livez', periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 },
  readiness: { path: '/readyz', periodSeconds: 5, timeoutSeconds: 5, failureThreshold: 3 },
} as const;
/**
 * Seconds a pod gets after SIGTERM beyond `server.drain_timeout_s`: for the endpoints to drop the
 * pod while it drains, and for the process to end once the drain is over.
 */
export const DRAIN_MARGIN_S = 15;

/** `file:line:col: ` of a spec path, or nothing when the spec does not say. */
export function at(spec: Spec, path: string): string {
  const pos = spec.positions.get(path);
  return pos === undefined ? '' : `${spec.file}:${pos.line}:${pos.column}: `;
}

/** The container port of a spec's pods. */
export function containerPort(spec: Spec): number {
  return spec.server.port === 0 ? DEFAULT_PORT : spec.server.port;
}

/** The gRPC port the pods serve, as the spec sets it; null when off or a free port (0). */
export function grpcContainerPort(spec: Spec): number | null {
  const port = spec.server.grpcPort;
  return port === null || port === 0 ? null : port;
}

/** `terminationGracePeriodSeconds`: longer than the drain that SIGTERM starts. */
export function gracePeriodSeconds(spec: Spec): number {
  return Math.ceil(spec.server.drainTimeoutS) + DRAIN_MARGIN_S;
}

export function metadata(
  name: string,
  labels: Record<string, string>,
  opts: ResolvedManifestOptions,
): K8sObject['metadata'] {
  return opts.namespace === null ? { name, labels } : { name, namespace: opts.namespace, labels };
}

export function appLabels(spec: Spec): Record<string, string> {
  return { [LABELS.name]: spec.name, [LABELS.managedBy]: 'bento-run' };
}

/** What selects a service's pods; never changes for a service (selectors are immutable). */
export function selectorLabels(spec: Spec, service: ServiceSpec): Record<string, string> {
  return { [LABELS.name]: spec.name, [LABELS.component]: service.name };
}

export function serviceLabels(
  spec: Spec,
  service: ServiceSpec,
  name: string,
): Record<string, string> {
  return {
    [LABELS.name]: spec.name,
    [LABELS.instance]: name,
    [LABELS.component]: service.name,
    [LABELS.managedBy]: 'bento-run',
  };
}

export function configMap(
  spec: Spec,
  bundle: Bundle,
  names: ObjectNames,
  opts: ResolvedManifestOptions,
): ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: metadata(names.configMap, appLabels(spec), opts),
    data: { [SPEC_FILE]: bundle.specText },
  };
}

export interface ProbeSettings {
  readonly path: string;
  readonly periodSeconds: number;
  readonly timeoutSeconds: number;
  readonly failureThreshold: number;
}

export function probe(p: ProbeSettings, port: string | number = PORT_NAME): Probe {
  return {
    httpGet: { path: p.path, port },
    periodSeconds: p.periodSeconds,
    timeoutSeconds: p.timeoutSeconds,
    failureThreshold: p.failureThreshold,
  };
}

/** A CPU count as YAML shows it best: `8` for whole cores, `"500m"` or `"0.5"` as written. */
function cpuQuantity(cpu: string): Quantity {
  return /^[0-9]+$/.test(cpu) ? Number(cpu) : cpu;
}

export function resources(service: ServiceSpec): Resources | undefined {
  const requests: Record<string, Quantity> = {};
  if (service.resources.cpu !== null) requests.cpu = cpuQuantity(service.resources.cpu);
  if (service.resources.memory !== null) requests.memory = service.resources.memory;
  const out: Resources = {};
  if (Object.keys(requests).length > 0) out.requests = requests;
  // Extended resources are requested through limits; the request defaults to the limit.
  if (service.resources.gpu > 0) out.limits = { [GPU_RESOURCE]: service.resources.gpu };
  return Object.keys(out).length > 0 ? out : undefined;
}

export const CONTAINER_SECURITY: ContainerSecurityContext = {
  allowPrivilegeEscalation: false,
  capabilities: { drop: ['ALL'] },
};

/** GPU nodes are usually tainted so that only pods asking for GPUs land there. */
export function gpuTolerations(service: ServiceSpec): Toleration[] | undefined {
  return service.resources.gpu > 0
    ? [{ key: GPU_RESOURCE, operator: 'Exists', effect: 'NoSchedule' }]
    : undefined;
}

/** The node selector of a service's pods, or undefined for none. */
export function nodeSelectorOf(
  service: ServiceSpec,
  opts: Pick<ResolvedManifestOptions, 'nodeSelector'>,
): Record<string, string> | undefined {
  const given = opts.nodeSelector(service);
  if (given !== null) return Object.keys(given).length === 0 ? undefined : { ...given };
  const type = service.resources.gpuType;
  if (service.resources.gpu === 0 || type === null) return undefined;
  const known = findGpuType(type);
  return known === undefined ? undefined : { [GPU_PRODUCT_LABEL]: known.product };
}

/** What a container needs of the pod: volumes, its mounts of them, environment variables. */
export interface PodWiring {
  readonly volumes: Volume[];
  readonly mounts: VolumeMount[];
  readonly env: EnvVar[];
}

/** The spec's ConfigMap at SPEC_DIR, and the auth Secret as the spec's `server.auth` reads it. */
export function specAndAuth(
  spec: Spec,
  names: ObjectNames,
  opts: ResolvedManifestOptions,
): PodWiring {
  const wiring: PodWiring = {
    volumes: [{ name: 'bentofile', configMap: { name: names.configMap } }],
    mounts: [{ name: 'bentofile', mountPath: SPEC_DIR, readOnly: true }],
    env: [],
  };
  const auth = spec.server.auth;
  const secret = opts.authSecret;
  if (auth === null || secret === null) return wiring;
  if ('tokensEnv' in auth) {
    const secretKeyRef = { name: secret, key: AUTH_SECRET_KEY };
    wiring.env.push({ name: auth.tokensEnv, valueFrom: { secretKeyRef } });
  } else {
    // The bundle points `tokens_file` at AUTH_DIR/tokens; the key must exist, or the pod waits.
    const items = [{ key: AUTH_SECRET_KEY, path: AUTH_SECRET_KEY }];
    wiring.volumes.push({ name: 'auth', secret: { secretName: secret, items } });
    wiring.mounts.push({ name: 'auth', mountPath: AUTH_DIR, readOnly: true });
  }
  return wiring;
}

/** The claims that hold models outside the spec's folder, mounted read-only. */
export function modelClaims(bundle: Bundle): PodWiring {
  return {
    volumes: bundle.claims.map((c) => ({
      name: c.name,
      persistentVolumeClaim: { claimName: c.claim, readOnly: true },
    })),
    mounts: bundle.claims.map((c) => ({
      name: c.name,
      mountPath: c.mountPath,
      readOnly: true,
      ...(c.subPath === null ? {} : { subPath: c.subPath }),
    })),
    env: [],
  };
}
