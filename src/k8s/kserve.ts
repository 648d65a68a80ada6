/**
 * `--target kserve`: one ServingRuntime that runs bento-run on the spec's ConfigMap, and one
 * InferenceService per service that picks it, downloads the service's models from its storage
 * URI to /mnt/models (KServe's storage initializer), and adds `--service NAME` to the runtime's
 * arguments (KServe appends a predictor's `args` to the runtime container's).
 *
 * The container serves REST on 8080 and gRPC on 8081, the ports KServe's own runtimes use. It
 * declares 8080 only: Knative (KServe's Serverless mode) takes one port per container. Knative
 * also refuses `terminationGracePeriodSeconds` (it derives the grace period from the revision's
 * timeout, 300 s by default, longer than the drain), so the InferenceService does not set it.
 */
import type { K8sProblem } from '../errors.js';
import type { ServiceSpec, Spec } from '../spec/types.js';
import { type Bundle, SPEC_PATH } from './bundle.js';
import {
  appLabels,
  at,
  CONTAINER_SECURITY,
  gpuTolerations,
  metadata,
  nodeSelectorOf,
  type ObjectNames,
  PROBES,
  probe,
  type ResolvedManifestOptions,
  RUN_AS,
  resources,
  SPEC_DIGEST_ANNOTATION,
  serviceLabels,
  specAndAuth,
} from './pod.js';
import type { Container, InferenceService, K8sObject, Predictor, ServingRuntime } from './types.js';

/** KServe's ports: REST, and gRPC for the `grpc-v2` protocol. */
export const KSERVE_HTTP_PORT = 8080;
export const KSERVE_GRPC_PORT = 8081;
/** KServe merges an InferenceService's model spec into the runtime container of this name. */
export const KSERVE_CONTAINER = 'kserve-container';
export const MODEL_FORMAT = 'onnx';
/**
 * KServe's probes are the Open Inference Protocol's health routes; the startup probe waits as
 * long as the Kubernetes target's for the models to load.
 */
export const KSERVE_PROBES = {
  startup: { ...PROBES.startup, path: '/v2/health/live' },
  liveness: { ...PROBES.liveness, path: '/v2/health/live' },
  readiness: { ...PROBES.readiness, path: '/v2/health/ready' },
} as const;
/** Knative names a revision `<name>-predictor-00001`, a label value: at most 63 characters. */
export const KSERVE_NAME_MAX = 63 - '-predictor-00001'.length;
/** Knative's per-pod concurrency target, which `target_in_flight` becomes in Serverless mode. */
export const KNATIVE_TARGET_ANNOTATION = 'autoscaling.knative.dev/target';

export function kserveProblems(
  spec: Spec,
  names: ObjectNames,
  opts: ResolvedManifestOptions,
): K8sProblem[] {
  return opts.services.flatMap((service) => {
    const name = names.services.get(service.name);
    if (name === undefined || name.length <= KSERVE_NAME_MAX) return [];
    return [
      {
        code: 'BENTO_ERR_K8S_NAME' as const,
        message:
          `${at(spec, `services.${service.name}`)}service \`${service.name}\`: its InferenceService ` +
          `name \`${name}\` is ${name.length} characters long; KServe's revision names add ` +
          `'-predictor-00001', which leaves at most ${KSERVE_NAME_MAX}; shorten the spec's \`name\` ` +
          'or the service',
      },
    ];
  });
}

export function kserveObjects(
  spec: Spec,
  bundle: Bundle,
  names: ObjectNames,
  opts: ResolvedManifestOptions,
): K8sObject[] {
  const objects: K8sObject[] = [servingRuntime(spec, names, opts)];
  for (const service of opts.services) {
    objects.push(inferenceService(spec, service, bundle, names, opts));
  }
  return objects;
}

function servingRuntime(
  spec: Spec,
  names: ObjectNames,
  opts: ResolvedManifestOptions,
): ServingRuntime {
  const grpc = spec.server.grpcPort !== null;
  const wiring = specAndAuth(spec, names, opts);
  const port = KSERVE_HTTP_PORT;
  const container: Container = {
    name: KSERVE_CONTAINER,
    image: opts.image,
    command: ['bento-run'],
    args: [
      'serve',
      SPEC_PATH,
      '--host',
      '0.0.0.0',
      '--port',
      String(port),
      ...(grpc ? ['--grpc-port', String(KSERVE_GRPC_PORT)] : []),
    ],
    // Knative's name for an HTTP/1 port; one port only (see above).
    ports: [{ name: 'http1', containerPort: port, protocol: 'TCP' }],
    ...(wiring.env.length === 0 ? {} : { env: wiring.env }),
    volumeMounts: wiring.mounts,
    // Knative takes the probes' port as a number (the container's port) or not at all.
    startupProbe: probe(KSERVE_PROBES.startup, port),
    livenessProbe: probe(KSERVE_PROBES.liveness, port),
    readinessProbe: probe(KSERVE_PROBES.readiness, port),
    // On the container: the pod also runs KServe's storage initializer and Knative's proxy.
    securityContext: {
      ...CONTAINER_SECURITY,
      runAsNonRoot: true,
      runAsUser: RUN_AS,
      runAsGroup: RUN_AS,
      seccompProfile: { type: 'RuntimeDefault' },
    },
  };
  return {
    apiVersion: 'serving.kserve.io/v1alpha1',
    kind: 'ServingRuntime',
    metadata: {
      ...metadata(names.runtime, appLabels(spec), opts),
      annotations: {
        'prometheus.kserve.io/port': String(port),
        'prometheus.kserve.io/path': '/metrics',
      },
    },
    spec: {
      supportedModelFormats: [{ name: MODEL_FORMAT, version: '1', autoSelect: true }],
      protocolVersions: grpc ? ['v2', 'grpc-v2'] : ['v2'],
      containers: [container],
      volumes: wiring.volumes,
    },
  };
}

/** The storage URI of a service's models; the bundle checked that they share one. */
function storageUriOf(service: ServiceSpec, bundle: Bundle): string {
  for (const file of bundle.files) {
    if (file.origin.kind === 'storage' && file.models.some((m) => service.models.includes(m))) {
      return file.origin.uri;
    }
  }
  throw new Error(`kserve: service ${service.name} has no storage URI in the bundle`);
}

function inferenceService(
  spec: Spec,
  service: ServiceSpec,
  bundle: Bundle,
  names: ObjectNames,
  opts: ResolvedManifestOptions,
): InferenceService {
  const name = names.services.get(service.name)!;
  const scaling = service.scaling;
  const selector = nodeSelectorOf(service, opts);
  const tolerations = gpuTolerations(service);
  const res = resources(service);
  const predictor: Predictor = {
    ...(scaling === null
      ? {}
      : { minReplicas: scaling.minReplicas, maxReplicas: scaling.maxReplicas }),
    annotations: {
      // A changed spec is a changed predictor: KServe rolls out new pods.
      [SPEC_DIGEST_ANNOTATION]: bundle.digest,
      ...(scaling?.targetInFlight == null
        ? {}
        : { [KNATIVE_TARGET_ANNOTATION]: String(scaling.targetInFlight) }),
    },
    ...(selector === undefined ? {} : { nodeSelector: selector }),
    ...(tolerations === undefined ? {} : { tolerations }),
    model: {
      modelFormat: { name: MODEL_FORMAT },
      runtime: names.runtime,
      protocolVersion: 'v2',
      storageUri: storageUriOf(service, bundle),
      args: ['--service', service.name],
      ...(res === undefined ? {} : { resources: res }),
    },
  };
  return {
    apiVersion: 'serving.kserve.io/v1beta1',
    kind: 'InferenceService',
    metadata: metadata(name, serviceLabels(spec, service, name), opts),
    spec: { predictor },
  };
}
