/**
 * A validated spec -> the Kubernetes objects that run it, as plain data: one ConfigMap holding
 * the spec, then per bento-run service one Deployment (each pod runs `bento-run serve --service
 * NAME` on the GPUs Kubernetes gives it) and one ClusterIP Service. No YAML and no files here.
 *
 * Inside a pod the GPUs Kubernetes assigned are the only visible ones, numbered from 0, which is
 * what a service's local GPU indices already mean: the spec needs no change to scale out.
 */
import { K8sError, type K8sProblem } from '../errors.js';
import { findGpuType } from '../plan/gpu-types.js';
import type { ServiceSpec, Spec } from '../spec/types.js';
import { BUNDLE_ROOT, type Bundle, SPEC_DIR, SPEC_FILE, SPEC_PATH } from './bundle.js';
import {
  dns1035LabelProblem,
  dns1123LabelProblem,
  dns1123SubdomainProblem,
  dnsNameOf,
  labelKeyProblem,
  labelValueProblem,
} from './names.js';
import type {
  ConfigMap,
  Container,
  Deployment,
  K8sObject,
  PodSpec,
  Probe,
  Quantity,
  Service,
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
  /** The image with bento-run in it (and the models, by default). @default `<spec name>:latest` */
  readonly image?: string;
  /** Set on every object. @default none: kubectl's current namespace */
  readonly namespace?: string;
  /** Replicas of every Deployment. @default 1 */
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
  /** @default { kind: 'image' } */
  readonly models?: ModelsSource;
  /** Only these services, by name. @default every service */
  readonly services?: readonly string[];
}

/** `ManifestOptions` checked against the spec, every default filled. */
export interface ResolvedManifestOptions {
  readonly image: string;
  readonly namespace: string | null;
  readonly services: readonly ServiceSpec[];
  readonly replicas: (service: string) => number;
  /** The user's node selector for a service, or null to derive one from `gpu_type`. */
  readonly nodeSelector: (service: ServiceSpec) => Readonly<Record<string, string>> | null;
  readonly models: ModelsSource;
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
/** Seconds a pod gets after SIGTERM beyond the longest request (`traffic.timeout_s`) to drain. */
export const DRAIN_MARGIN_S = 10;

/** The object names one spec produces. */
export interface ObjectNames {
  readonly configMap: string;
  /** Service name -> the name of its Deployment and Service. */
  readonly services: ReadonlyMap<string, string>;
}

/** The container port of a spec's pods. */
export function containerPort(spec: Spec): number {
  return spec.server.port === 0 ? DEFAULT_PORT : spec.server.port;
}

/** `bento-run k8s`'s objects for `spec`, whose container copy is `bundle`. Throws K8sError. */
export function buildManifests(
  spec: Spec,
  bundle: Bundle,
  options: ManifestOptions = {},
): K8sObject[] {
  const opts = resolveManifestOptions(spec, options);
  const { names, problems } = deriveNames(spec, opts.services);
  problems.push(...opts.services.flatMap((s) => gpuSelectorProblems(spec, s, opts)));
  if (problems.length > 0) throw manifestError(spec, problems);
  const objects: K8sObject[] = [configMap(spec, bundle, names, opts)];
  for (const service of opts.services) {
    const name = names.services.get(service.name)!;
    objects.push(deployment(spec, service, name, bundle, names, opts));
    objects.push(kubeService(spec, service, name, opts));
  }
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

  const image = options.image ?? `${spec.name}:latest`;
  if (image === '' || /\s/.test(image)) option(`--image: \`${image}\` is not an image reference`);
  const namespace = options.namespace ?? null;
  if (namespace !== null) {
    const why = dns1123LabelProblem(namespace);
    if (why !== null) option(`--namespace: \`${namespace}\` is not a namespace name: ${why}`);
  }
  const checkReplicas = (n: number, flag: string) => {
    if (!Number.isInteger(n) || n < 0) option(`${flag}: must be a whole number >= 0 (got ${n})`);
  };
  checkReplicas(options.replicas ?? 1, '--replicas');
  for (const [name, n] of Object.entries(options.serviceReplicas ?? {})) {
    if (checkService(name, `--replicas ${name}=${n}`)) checkReplicas(n, `--replicas ${name}=${n}`);
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
  if (models.kind === 'pvc') {
    const why = dns1123SubdomainProblem(models.claim);
    if (why !== null) option(`--models-pvc: \`${models.claim}\` is not a claim name: ${why}`);
    const sub = models.subPath;
    if (sub !== undefined && (sub.startsWith('/') || sub.split('/').includes('..'))) {
      option(`--models-pvc: the folder \`${sub}\` must be relative, without '..'`);
    }
  }
  if (models.kind === 'models-image' && (models.image === '' || /\s/.test(models.image))) {
    option(`--models-image: \`${models.image}\` is not an image reference`);
  }
  const wanted = options.services ?? [];
  for (const name of wanted) checkService(name, `--service ${name}`);
  if (problems.length > 0) throw manifestError(spec, problems);

  const services =
    wanted.length === 0 ? spec.services : spec.services.filter((s) => wanted.includes(s.name));
  return {
    image,
    namespace,
    services,
    replicas: (name) => options.serviceReplicas?.[name] ?? options.replicas ?? 1,
    nodeSelector: (service) =>
      options.serviceNodeSelectors?.[service.name] ??
      (service.resources.gpu > 0 ? (options.nodeSelector ?? null) : null),
    models,
  };
}

/**
 * The Deployment and Service name of each service: `<spec name>-<service name>`, '_' -> '-'.
 * A Service name is a DNS-1035 label: at most 63 characters, starting with a letter.
 */
export function objectNames(spec: Spec, services: readonly ServiceSpec[]): ObjectNames {
  const { names, problems } = deriveNames(spec, services);
  if (problems.length > 0) throw manifestError(spec, problems);
  return names;
}

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
  return { names: { configMap: `${spec.name}-bentofile`, services: names }, problems };
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

function at(spec: Spec, path: string): string {
  const pos = spec.positions.get(path);
  return pos === undefined ? '' : `${spec.file}:${pos.line}:${pos.column}: `;
}

function manifestError(spec: Spec, problems: readonly K8sProblem[]): K8sError {
  return new K8sError(problems, {
    heading: `cannot write Kubernetes objects for ${spec.file}:`,
  });
}

function metadata(
  name: string,
  labels: Record<string, string>,
  opts: ResolvedManifestOptions,
): K8sObject['metadata'] {
  return opts.namespace === null ? { name, labels } : { name, namespace: opts.namespace, labels };
}

function appLabels(spec: Spec): Record<string, string> {
  return { [LABELS.name]: spec.name, [LABELS.managedBy]: 'bento-run' };
}

/** What selects a service's pods; never changes for a service (selectors are immutable). */
export function selectorLabels(spec: Spec, service: ServiceSpec): Record<string, string> {
  return { [LABELS.name]: spec.name, [LABELS.component]: service.name };
}

function serviceLabels(spec: Spec, service: ServiceSpec, name: string): Record<string, string> {
  return {
    [LABELS.name]: spec.name,
    [LABELS.instance]: name,
    [LABELS.component]: service.name,
    [LABELS.managedBy]: 'bento-run',
  };
}

function configMap(
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

function probe(p: (typeof PROBES)[keyof typeof PROBES]): Probe {
  return {
    httpGet: { path: p.path, port: PORT_NAME },
    periodSeconds: p.periodSeconds,
    timeoutSeconds: p.timeoutSeconds,
    failureThreshold: p.failureThreshold,
  };
}

/** A CPU count as YAML shows it best: `8` for whole cores, `"500m"` or `"0.5"` as written. */
function cpuQuantity(cpu: string): Quantity {
  return /^[0-9]+$/.test(cpu) ? Number(cpu) : cpu;
}

function resources(service: ServiceSpec): Container['resources'] {
  const requests: Record<string, Quantity> = {};
  if (service.resources.cpu !== null) requests.cpu = cpuQuantity(service.resources.cpu);
  if (service.resources.memory !== null) requests.memory = service.resources.memory;
  const out: NonNullable<Container['resources']> = {};
  if (Object.keys(requests).length > 0) out.requests = requests;
  // Extended resources are requested through limits; the request defaults to the limit.
  if (service.resources.gpu > 0) out.limits = { [GPU_RESOURCE]: service.resources.gpu };
  return Object.keys(out).length > 0 ? out : undefined;
}

const CONTAINER_SECURITY: Container['securityContext'] = {
  allowPrivilegeEscalation: false,
  capabilities: { drop: ['ALL'] },
};

function modelsVolume(opts: ResolvedManifestOptions): {
  volumes: Volume[];
  mounts: VolumeMount[];
  initContainers: Container[];
} {
  const m = opts.models;
  if (m.kind === 'image') return { volumes: [], mounts: [], initContainers: [] };
  const mount: VolumeMount = { name: 'models', mountPath: BUNDLE_ROOT, readOnly: true };
  if (m.kind === 'pvc') {
    return {
      volumes: [{ name: 'models', persistentVolumeClaim: { claimName: m.claim, readOnly: true } }],
      mounts: [m.subPath === undefined ? mount : { ...mount, subPath: m.subPath }],
      initContainers: [],
    };
  }
  // Copying into an emptyDir works on every cluster; image volumes need Kubernetes 1.33+ and a gate.
  const staging = '/mnt/bento';
  return {
    volumes: [{ name: 'models', emptyDir: {} }],
    mounts: [mount],
    initContainers: [
      {
        name: 'models',
        image: m.image,
        command: ['cp', '-R', `${BUNDLE_ROOT}/.`, `${staging}/`],
        volumeMounts: [{ name: 'models', mountPath: staging }],
        securityContext: CONTAINER_SECURITY,
      },
    ],
  };
}

function deployment(
  spec: Spec,
  service: ServiceSpec,
  name: string,
  bundle: Bundle,
  names: ObjectNames,
  opts: ResolvedManifestOptions,
): Deployment {
  const port = containerPort(spec);
  const gpu = service.resources.gpu > 0;
  const models = modelsVolume(opts);
  const res = resources(service);
  const container: Container = {
    name: CONTAINER_NAME,
    image: opts.image,
    command: ['bento-run'],
    args: [
      'serve',
      SPEC_PATH,
      '--service',
      service.name,
      '--host',
      '0.0.0.0',
      '--port',
      String(port),
    ],
    ports: [{ name: PORT_NAME, containerPort: port, protocol: 'TCP' }],
    ...(res === undefined ? {} : { resources: res }),
    volumeMounts: [{ name: 'bentofile', mountPath: SPEC_DIR, readOnly: true }, ...models.mounts],
    startupProbe: probe(PROBES.startup),
    livenessProbe: probe(PROBES.liveness),
    readinessProbe: probe(PROBES.readiness),
    securityContext: CONTAINER_SECURITY,
  };
  const selector = nodeSelectorOf(service, opts);
  const pod: PodSpec = {
    automountServiceAccountToken: false,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: RUN_AS,
      runAsGroup: RUN_AS,
      seccompProfile: { type: 'RuntimeDefault' },
    },
    terminationGracePeriodSeconds: service.traffic.timeoutS + DRAIN_MARGIN_S,
    ...(selector === undefined ? {} : { nodeSelector: selector }),
    ...(gpu
      ? { tolerations: [{ key: GPU_RESOURCE, operator: 'Exists', effect: 'NoSchedule' }] }
      : {}),
    ...(models.initContainers.length === 0 ? {} : { initContainers: models.initContainers }),
    containers: [container],
    volumes: [{ name: 'bentofile', configMap: { name: names.configMap } }, ...models.volumes],
  };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: metadata(name, serviceLabels(spec, service, name), opts),
    spec: {
      replicas: opts.replicas(service.name),
      selector: { matchLabels: selectorLabels(spec, service) },
      // GPUs are scarce: replace pods one at a time rather than wait for a surge GPU.
      ...(gpu
        ? { strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 0, maxUnavailable: 1 } } }
        : {}),
      template: {
        metadata: {
          labels: serviceLabels(spec, service, name),
          annotations: {
            'prometheus.io/scrape': 'true',
            'prometheus.io/port': String(port),
            'prometheus.io/path': '/metrics',
            [SPEC_DIGEST_ANNOTATION]: bundle.digest,
          },
        },
        spec: pod,
      },
    },
  };
}

function kubeService(
  spec: Spec,
  service: ServiceSpec,
  name: string,
  opts: ResolvedManifestOptions,
): Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: metadata(name, serviceLabels(spec, service, name), opts),
    spec: {
      type: 'ClusterIP',
      selector: selectorLabels(spec, service),
      ports: [
        { name: PORT_NAME, port: containerPort(spec), targetPort: PORT_NAME, protocol: 'TCP' },
      ],
    },
  };
}
