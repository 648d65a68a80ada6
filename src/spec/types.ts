/**
 * Two shapes of a spec: `BentoFile` mirrors the YAML as the user writes it (everything optional
 * that the schema allows to be omitted); `Spec` is what `validateSpec` returns: readonly,
 * complete, defaults filled, paths absolute. Nothing after validation sees a `BentoFile`.
 */

import type { ProtocolDatatype } from '../tensor/datatypes.js';

export type GraphOptimization = 'disabled' | 'basic' | 'extended' | 'all';
export type ExecutionMode = 'sequential' | 'parallel';
export type BatchPolicy = 'adaptive' | 'fixed';

export interface BentoFileBatching {
  max_batch_size?: number;
  max_latency_ms?: number;
  policy?: BatchPolicy;
}

export interface BentoFileSessionOptions {
  intra_op_threads?: number;
  inter_op_threads?: number;
  graph_optimization?: GraphOptimization;
  execution_mode?: ExecutionMode;
  memory_arena?: boolean;
  memory_pattern?: boolean;
  arena_extend_strategy?: ArenaExtendStrategy;
}

export interface BentoFileModel {
  path: string;
  batching?: BentoFileBatching;
  session?: BentoFileSessionOptions;
  /** `bento-run k8s --target kserve`: a folder URI holding this model's file under its name. */
  storage_uri?: string;
  /** `bento-run k8s`: `CLAIM` or `CLAIM/FOLDER`, a PersistentVolumeClaim holding the file. */
  volume?: string;
}

export interface BentoFileWorker {
  gpus?: number[];
  placement?: Record<string, number>;
}

export interface BentoFileService {
  models: string[];
  resources?: {
    gpu?: number;
    gpu_type?: string;
    cpu?: number | string;
    memory?: string;
  };
  workers?: number | BentoFileWorker[];
  traffic?: {
    timeout_s?: number;
    max_concurrency?: number;
  };
  scaling?: {
    min_replicas?: number;
    max_replicas: number;
    target_in_flight?: number;
  };
}

export interface BentoFile {
  version: 1;
  name?: string;
  models: Record<string, BentoFileModel>;
  services: Record<string, BentoFileService>;
  pipelines?: Record<string, BentoFilePipeline>;
  server?: {
    host?: string;
    port?: number;
    max_body_mb?: number;
    grpc_port?: number | false;
    drain_timeout_s?: number;
    tls?: { cert: string; key: string };
    auth?: { tokens_env: string } | { tokens_file: string };
    ui?: boolean;
  };
}

export interface ServerSpec {
  readonly host: string;
  readonly port: number;
  readonly maxBodyMb: number;
  /** null: gRPC off. */
  readonly grpcPort: number | null;
  readonly drainTimeoutS: number;
  /** Absolute paths of the PEM files; null: plain HTTP and gRPC. */
  readonly tls: { readonly cert: string; readonly key: string } | null;
  /** Where the bearer tokens are; null: no authentication. */
  readonly auth: AuthSpec | null;
  readonly ui: boolean;
}

/** `server.auth`: the tokens in an environment variable, or in a file (absolute path). */
export type AuthSpec = { readonly tokensEnv: string } | { readonly tokensFile: string };

/** Defaults, in one place; the schema's `default`s say the same and a test keeps them equal. */
export const DEFAULTS = {
  name: 'bento',
  host: '127.0.0.1',
  port: 3000,
  maxBodyMb: 64,
  grpcPort: 8001,
  drainTimeoutS: 30,
  ui: true,
  maxBatchSize: 32,
  maxLatencyMs: 5,
  batchPolicy: 'adaptive' as BatchPolicy,
  timeoutS: 60,
  maxConcurrency: 128,
  graphOptimization: 'all' as GraphOptimization,
  executionMode: 'sequential' as ExecutionMode,
  minReplicas: 1,
} as const;

export interface SourcePosition {
  readonly line: number;
  readonly column: number;
}

export interface BatchingSpec {
  readonly maxBatchSize: number;
  readonly maxLatencyMs: number;
  readonly policy: BatchPolicy;
}

export interface SessionSpec {
  /** undefined: onnxruntime's own default. */
  readonly intraOpThreads?: number;
  readonly interOpThreads?: number;
  readonly graphOptimization: GraphOptimization;
  readonly executionMode: ExecutionMode;
  /** onnxruntime's CPU memory arena (enable_cpu_mem_arena); undefined: its default (on). */
  readonly memoryArena?: boolean;
  /** onnxruntime's memory pattern planning (enable_mem_pattern); undefined: its default (on). */
  readonly memoryPattern?: boolean;
  /** How the arena grows; undefined: onnxruntime's default (next_power_of_two). */
  readonly arenaExtendStrategy?: ArenaExtendStrategy;
}

export type ArenaExtendStrategy = 'next_power_of_two' | 'same_as_requested';

export interface ModelSpec {
  readonly name: string;
  /** Absolute path of the .onnx file. */
  readonly path: string;
  /** The path as written in the spec, for messages. */
  readonly declaredPath: string;
  /** Size of the model file in bytes (0 when it was not checked). */
  readonly sizeBytes: number;
  readonly batching: BatchingSpec | null;
  readonly session: SessionSpec;
  /** `storage_uri`: where KServe downloads this model's folder from; null: not given. */
  readonly storageUri: string | null;
  /** `volume`: the PersistentVolumeClaim holding this model's file; null: not given. */
  readonly volume: VolumeSpec | null;
}

/** A folder of a PersistentVolumeClaim: `claim`, or `claim/subPath`. */
export interface VolumeSpec {
  readonly claim: string;
  /** Relative, no trailing '/'; null: the claim's root. */
  readonly subPath: string | null;
}

export interface WorkerSpec {
  /** 0-based, in declaration order. */
  readonly index: number;
  /** Service-local GPU indices this worker may use; empty for a CPU worker. */
  readonly gpus: readonly number[];
  /** Model name -> service-local GPU index; empty for a CPU worker. */
  readonly placement: Readonly<Record<string, number>>;
}

export interface ServiceSpec {
  readonly name: string;
  readonly models: readonly string[];
  readonly resources: {
    readonly gpu: number;
    readonly gpuType: string | null;
    readonly cpu: string | null;
    readonly memory: string | null;
  };
  readonly workers: readonly WorkerSpec[];
  readonly traffic: {
    readonly timeoutS: number;
    readonly maxConcurrency: number;
  };
  /** Autoscaling in Kubernetes; null: a fixed number of replicas. */
  readonly scaling: ScalingSpec | null;
}

export interface ScalingSpec {
  readonly minReplicas: number;
  readonly maxReplicas: number;
  /** Requests in flight per pod to aim for; null: scale on CPU utilisation. */
  readonly targetInFlight: number | null;
}

export interface Spec {
  /** The spec file as given on the command line (used in messages). */
  readonly file: string;
  /** Absolute folder of the spec file; model paths are relative to it. */
  readonly dir: string;
  readonly version: 1;
  readonly name: string;
  readonly models: Readonly<Record<string, ModelSpec>>;
  /** In declaration order: GPU blocks are allocated in this order. */
  readonly services: readonly ServiceSpec[];
  readonly server: ServerSpec;
  /** Pipeline name -> pipeline (none: an empty record). */
  readonly pipelines: Readonly<Record<string, PipelineSpec>>;
  /** Dotted path -> position of that node in the file, for errors raised after validation. */
  readonly positions: ReadonlyMap<string, SourcePosition>;
}

// ---- pipelines: models chained in the spec (DESIGN.md "Pipelines") -------------------------

/** A dimension as a pipeline declares it: a size, -1 (any size), or a name (any size, shared). */
export type PipelineDim = number | string;

export interface BentoFilePipelineTensor {
  datatype: ProtocolDatatype;
  shape: PipelineDim[];
}

/** Where a step input comes from: a pipeline input, or an output of another step. */
export interface BentoFileStepSource {
  input?: string;
  step?: string;
  output?: string;
}

export interface BentoFileStep {
  model: string;
  /** Every input of the model: model input name -> source. */
  inputs: Record<string, BentoFileStepSource>;
}

export interface BentoFilePipeline {
  inputs: Record<string, BentoFilePipelineTensor>;
  steps: Record<string, BentoFileStep>;
  outputs: Record<string, { step: string; output: string }>;
}

export interface PipelineInputSpec {
  readonly name: string;
  readonly datatype: ProtocolDatatype;
  /** As declared: sizes, -1 for any size, names for dynamic dimensions that must agree. */
  readonly shape: readonly PipelineDim[];
}

export type StepSource =
  | { readonly kind: 'input'; readonly input: string }
  | { readonly kind: 'step'; readonly step: string; readonly output: string };

export interface PipelineStepSpec {
  readonly name: string;
  readonly model: string;
  /** The service that serves `model`: the step runs as a request of that model there. */
  readonly service: string;
  /** Model input name -> where it comes from; every input of the model is here. */
  readonly inputs: Readonly<Record<string, StepSource>>;
}

export interface PipelineOutputSpec {
  readonly name: string;
  readonly step: string;
  /** The output of the step's model that this pipeline output is. */
  readonly output: string;
  /** From the model file; null when model files were not read (`checkFiles: false`). */
  readonly datatype: ProtocolDatatype | null;
  /**
   * The model's output dims with what the pipeline fixes filled in: sizes, -1 for unknown, names
   * for dynamic ones (a pipeline input's name where it is the same dimension). Null as datatype.
   */
  readonly shape: readonly PipelineDim[] | null;
}

export interface PipelineSpec {
  readonly name: string;
  readonly inputs: readonly PipelineInputSpec[];
  /** In declaration order; `pipelineOrder` gives the order they run in. No cycles. */
  readonly steps: readonly PipelineStepSpec[];
  readonly outputs: readonly PipelineOutputSpec[];
}
