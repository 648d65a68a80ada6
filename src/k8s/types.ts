/**
 * The part of the Kubernetes API that `bento-run k8s` writes: field names and shapes exactly as
 * the API spells them (a test checks every field against the API's own types), nothing more.
 * KServe's two kinds at the end are checked against KServe's CRD schemas instead.
 */

/** A resource quantity: `2`, `"500m"`, `"8Gi"`. */
export type Quantity = string | number;

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface ConfigMap {
  apiVersion: 'v1';
  kind: 'ConfigMap';
  metadata: ObjectMeta;
  data: Record<string, string>;
}

export interface Service {
  apiVersion: 'v1';
  kind: 'Service';
  metadata: ObjectMeta;
  spec: {
    type: 'ClusterIP';
    selector: Record<string, string>;
    ports: ServicePort[];
  };
}

export interface ServicePort {
  name: string;
  port: number;
  targetPort: string;
  protocol: 'TCP';
}

export interface Deployment {
  apiVersion: 'apps/v1';
  kind: 'Deployment';
  metadata: ObjectMeta;
  spec: {
    /** Absent when a HorizontalPodAutoscaler owns the count (each apply would reset it). */
    replicas?: number;
    selector: { matchLabels: Record<string, string> };
    strategy?: {
      type: 'RollingUpdate';
      rollingUpdate: { maxSurge: number; maxUnavailable: number };
    };
    template: {
      metadata: { labels: Record<string, string>; annotations: Record<string, string> };
      spec: PodSpec;
    };
  };
}

export interface PodSpec {
  automountServiceAccountToken: boolean;
  securityContext: {
    runAsNonRoot: boolean;
    runAsUser: number;
    runAsGroup: number;
    seccompProfile: { type: 'RuntimeDefault' };
  };
  terminationGracePeriodSeconds: number;
  nodeSelector?: Record<string, string>;
  tolerations?: Toleration[];
  initContainers?: Container[];
  containers: Container[];
  volumes: Volume[];
}

export interface Toleration {
  key: string;
  operator: 'Exists';
  effect: 'NoSchedule';
}

export interface Container {
  name: string;
  image: string;
  command: string[];
  args?: string[];
  ports?: ContainerPort[];
  env?: EnvVar[];
  resources?: Resources;
  volumeMounts: VolumeMount[];
  startupProbe?: Probe;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  securityContext: ContainerSecurityContext;
}

export interface ContainerPort {
  name: string;
  containerPort: number;
  protocol: 'TCP';
}

export interface Resources {
  requests?: Record<string, Quantity>;
  limits?: Record<string, Quantity>;
}

export interface ContainerSecurityContext {
  allowPrivilegeEscalation: boolean;
  capabilities: { drop: string[] };
  /** Set on the container where the pod's own security context is not ours (KServe's pods). */
  runAsNonRoot?: boolean;
  runAsUser?: number;
  runAsGroup?: number;
  seccompProfile?: { type: 'RuntimeDefault' };
}

/** An environment variable from a key of a Secret. */
export interface EnvVar {
  name: string;
  valueFrom: { secretKeyRef: { name: string; key: string } };
}

export interface Probe {
  /** A port name, or the number where the name cannot be used (Knative's containers). */
  httpGet: { path: string; port: string | number };
  periodSeconds: number;
  timeoutSeconds: number;
  failureThreshold: number;
}

export interface VolumeMount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
  subPath?: string;
}

export type Volume =
  | { name: string; configMap: { name: string } }
  | { name: string; persistentVolumeClaim: { claimName: string; readOnly: boolean } }
  | { name: string; emptyDir: { sizeLimit?: Quantity } }
  | { name: string; secret: { secretName: string; items: { key: string; path: string }[] } };

export interface HorizontalPodAutoscaler {
  apiVersion: 'autoscaling/v2';
  kind: 'HorizontalPodAutoscaler';
  metadata: ObjectMeta;
  spec: {
    scaleTargetRef: { apiVersion: 'apps/v1'; kind: 'Deployment'; name: string };
    minReplicas: number;
    maxReplicas: number;
    metrics: MetricSpec[];
  };
}

export type MetricSpec =
  | {
      type: 'Pods';
      pods: {
        metric: { name: string };
        target: { type: 'AverageValue'; averageValue: Quantity };
      };
    }
  | {
      type: 'Resource';
      resource: { name: 'cpu'; target: { type: 'Utilization'; averageUtilization: number } };
    };

export interface PodDisruptionBudget {
  apiVersion: 'policy/v1';
  kind: 'PodDisruptionBudget';
  metadata: ObjectMeta;
  spec: {
    maxUnavailable: number;
    selector: { matchLabels: Record<string, string> };
    unhealthyPodEvictionPolicy: 'AlwaysAllow';
  };
}

// ---- KServe (serving.kserve.io), as its CRDs spell it -----------------------------------------

export interface ServingRuntime {
  apiVersion: 'serving.kserve.io/v1alpha1';
  kind: 'ServingRuntime';
  metadata: ObjectMeta;
  spec: {
    supportedModelFormats: { name: string; version: string; autoSelect: boolean }[];
    protocolVersions: string[];
    containers: Container[];
    volumes: Volume[];
  };
}

export interface InferenceService {
  apiVersion: 'serving.kserve.io/v1beta1';
  kind: 'InferenceService';
  metadata: ObjectMeta;
  spec: { predictor: Predictor };
}

export interface Predictor {
  minReplicas?: number;
  maxReplicas?: number;
  /** Pod annotations: the spec digest, Knative's autoscaling target. */
  annotations: Record<string, string>;
  nodeSelector?: Record<string, string>;
  tolerations?: Toleration[];
  model: {
    modelFormat: { name: string };
    runtime: string;
    protocolVersion: 'v2';
    storageUri: string;
    /** Appended to the runtime container's arguments. */
    args: string[];
    resources?: Resources;
  };
}

export type K8sObject =
  | ConfigMap
  | Deployment
  | Service
  | HorizontalPodAutoscaler
  | PodDisruptionBudget
  | ServingRuntime
  | InferenceService;
