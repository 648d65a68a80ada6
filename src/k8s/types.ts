/**
 * The part of the Kubernetes API that `bento-run k8s` writes: field names and shapes exactly as
 * the API spells them (a test checks every field against the API's own types), nothing more.
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
    replicas: number;
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
  ports?: { name: string; containerPort: number; protocol: 'TCP' }[];
  resources?: {
    requests?: Record<string, Quantity>;
    limits?: Record<string, Quantity>;
  };
  volumeMounts: VolumeMount[];
  startupProbe?: Probe;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  securityContext: {
    allowPrivilegeEscalation: boolean;
    capabilities: { drop: string[] };
  };
}

export interface Probe {
  httpGet: { path: string; port: string };
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
  | { name: string; emptyDir: { sizeLimit?: Quantity } };

export type K8sObject = ConfigMap | Deployment | Service;
