/**
 * `--target kubernetes`: per service a Deployment, a ClusterIP Service and, when the service has
 * `scaling`, a HorizontalPodAutoscaler and a PodDisruptionBudget.
 *
 * The autoscaler follows bento-run's `bento_requests_in_flight` gauge (requests being served, per
 * pod) through the custom metrics API, which the Prometheus adapter serves from Prometheus'
 * scrapes (README: "Scaling out"); without `target_in_flight`, CPU utilisation.
 * The disruption budget lets a drain or an upgrade take one pod at a time (maxUnavailable 1):
 * unlike minAvailable 1 it never blocks a node drain when a single pod runs, and with more pods
 * the others keep serving while one moves, as the GPU rollout (maxSurge 0) does too.
 */
import type { K8sProblem } from '../errors.js';
import type { ServiceSpec, Spec } from '../spec/types.js';
import { BUNDLE_ROOT, type Bundle, SPEC_PATH } from './bundle.js';
import {
  at,
  CONTAINER_NAME,
  CONTAINER_SECURITY,
  containerPort,
  GRPC_PORT_NAME,
  gpuTolerations,
  gracePeriodSeconds,
  grpcContainerPort,
  metadata,
  modelClaims,
  nodeSelectorOf,
  type ObjectNames,
  PORT_NAME,
  type PodWiring,
  PROBES,
  probe,
  type ResolvedManifestOptions,
  RUN_AS,
  resources,
  SPEC_DIGEST_ANNOTATION,
  selectorLabels,
  serviceLabels,
  specAndAuth,
} from './pod.js';
import type {
  Container,
  ContainerPort,
  Deployment,
  HorizontalPodAutoscaler,
  K8sObject,
  MetricSpec,
  PodDisruptionBudget,
  PodSpec,
  Service,
  ServicePort,
  VolumeMount,
} from './types.js';

/** bento-run's gauge of requests being served (src/core/metrics.ts), one series per pod. */
export const IN_FLIGHT_METRIC = 'bento_requests_in_flight';
/** The CPU utilisation (of the request) the autoscaler aims for without `target_in_flight`. */
export const CPU_TARGET_UTILIZATION = 70;

export function kubernetesObjects(
  spec: Spec,
  bundle: Bundle,
  names: ObjectNames,
  opts: ResolvedManifestOptions,
): K8sObject[] {
  const objects: K8sObject[] = [];
  for (const service of opts.services) {
    const name = names.services.get(service.name)!;
    objects.push(deployment(spec, service, name, bundle, names, opts));
    objects.push(kubeService(spec, service, name, opts));
    if (service.scaling !== null) {
      objects.push(autoscaler(spec, service, name, opts));
      objects.push(disruptionBudget(spec, service, name, opts));
    }
  }
  return objects;
}

/** Scaling on CPU utilisation needs a CPU request to measure it against. */
export function kubernetesProblems(spec: Spec, opts: ResolvedManifestOptions): K8sProblem[] {
  return opts.services
    .filter(
      (s) => s.scaling !== null && s.scaling.targetInFlight === null && s.resources.cpu === null,
    )
    .map((s) => ({
      code: 'BENTO_ERR_K8S_SCALING',
      message:
        `${at(spec, `services.${s.name}.scaling`)}service \`${s.name}\`: scaling without ` +
        'target_in_flight scales on CPU utilisation, which Kubernetes measures against the CPU ' +
        'request; set resources.cpu, or scaling.target_in_flight to scale on requests in flight',
    }));
}

/** The models' volume, for `--models-pvc` and `--models-image`: the spec's folder at BUNDLE_ROOT. */
function bundleVolume(opts: ResolvedManifestOptions): PodWiring & { initContainers: Container[] } {
  const m = opts.models;
  if (m.kind === 'image') return { volumes: [], mounts: [], env: [], initContainers: [] };
  const mount: VolumeMount = { name: 'models', mountPath: BUNDLE_ROOT, readOnly: true };
  if (m.kind === 'pvc') {
    return {
      volumes: [{ name: 'models', persistentVolumeClaim: { claimName: m.claim, readOnly: true } }],
      mounts: [m.subPath === undefined ? mount : { ...mount, subPath: m.subPath }],
      env: [],
      initContainers: [],
    };
  }
  // Copying into an emptyDir works on every cluster; image volumes need Kubernetes 1.33+ and a gate.
  const staging = '/mnt/bento';
  return {
    volumes: [{ name: 'models', emptyDir: {} }],
    mounts: [mount],
    env: [],
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

function containerPorts(spec: Spec): ContainerPort[] {
  const grpc = grpcContainerPort(spec);
  return [
    { name: PORT_NAME, containerPort: containerPort(spec), protocol: 'TCP' },
    ...(grpc === null
      ? []
      : [{ name: GRPC_PORT_NAME, containerPort: grpc, protocol: 'TCP' as const }]),
  ];
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
  const models = bundleVolume(opts);
  const claims = modelClaims(bundle);
  const base = specAndAuth(spec, names, opts);
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
    ports: containerPorts(spec),
    ...(base.env.length === 0 ? {} : { env: base.env }),
    ...(res === undefined ? {} : { resources: res }),
    volumeMounts: [...base.mounts, ...models.mounts, ...claims.mounts],
    startupProbe: probe(PROBES.startup),
    livenessProbe: probe(PROBES.liveness),
    readinessProbe: probe(PROBES.readiness),
    securityContext: CONTAINER_SECURITY,
  };
  const selector = nodeSelectorOf(service, opts);
  const tolerations = gpuTolerations(service);
  const pod: PodSpec = {
    automountServiceAccountToken: false,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: RUN_AS,
      runAsGroup: RUN_AS,
      seccompProfile: { type: 'RuntimeDefault' },
    },
    terminationGracePeriodSeconds: gracePeriodSeconds(spec),
    ...(selector === undefined ? {} : { nodeSelector: selector }),
    ...(tolerations === undefined ? {} : { tolerations }),
    ...(models.initContainers.length === 0 ? {} : { initContainers: models.initContainers }),
    containers: [container],
    volumes: [...base.volumes, ...models.volumes, ...claims.volumes],
  };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: metadata(name, serviceLabels(spec, service, name), opts),
    spec: {
      // With an autoscaler, a replica count here would reset its choice at every apply.
      ...(service.scaling === null ? { replicas: opts.replicas(service.name) } : {}),
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
  const ports: ServicePort[] = containerPorts(spec).map((p) => ({
    name: p.name,
    port: p.containerPort,
    targetPort: p.name,
    protocol: 'TCP',
  }));
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: metadata(name, serviceLabels(spec, service, name), opts),
    spec: { type: 'ClusterIP', selector: selectorLabels(spec, service), ports },
  };
}

function autoscaler(
  spec: Spec,
  service: ServiceSpec,
  name: string,
  opts: ResolvedManifestOptions,
): HorizontalPodAutoscaler {
  const scaling = service.scaling!;
  const metric: MetricSpec =
    scaling.targetInFlight === null
      ? {
          type: 'Resource',
          resource: {
            name: 'cpu',
            target: { type: 'Utilization', averageUtilization: CPU_TARGET_UTILIZATION },
          },
        }
      : {
          type: 'Pods',
          pods: {
            metric: { name: IN_FLIGHT_METRIC },
            target: { type: 'AverageValue', averageValue: scaling.targetInFlight },
          },
        };
  return {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: metadata(name, serviceLabels(spec, service, name), opts),
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name },
      minReplicas: scaling.minReplicas,
      maxReplicas: scaling.maxReplicas,
      metrics: [metric],
    },
  };
}

function disruptionBudget(
  spec: Spec,
  service: ServiceSpec,
  name: string,
  opts: ResolvedManifestOptions,
): PodDisruptionBudget {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: metadata(name, serviceLabels(spec, service, name), opts),
    spec: {
      maxUnavailable: 1,
      selector: { matchLabels: selectorLabels(spec, service) },
      // A pod that is not ready (still loading, crash-looping) serves nothing: let it go.
      unhealthyPodEvictionPolicy: 'AlwaysAllow',
    },
  };
}
