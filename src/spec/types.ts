/**
 * Two shapes of a spec: `BentoFile` mirrors the YAML as the user writes it (everything optional
 * that the schema allows to be omitted); `Spec` is what `validateSpec` returns: readonly,
 * complete, defaults filled, paths absolute. Nothing after validation sees a `BentoFile`.
 */

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
}

export interface BentoFileModel {
  path: string;
  batching?: BentoFileBatching;
  session?: BentoFileSessionOptions;
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
}

export interface BentoFile {
  version: 1;
  name?: string;
  models: Record<string, BentoFileModel>;
  services: Record<string, BentoFileService>;
  server?: {
    host?: string;
    port?: number;
    max_body_mb?: number;
  };
}

/** Defaults, in one place; the schema's `default`s say the same and a test keeps them equal. */
export const DEFAULTS = {
  name: 'bento',
  host: '127.0.0.1',
  port: 3000,
  maxBodyMb: 64,
  maxBatchSize: 32,
  maxLatencyMs: 5,
  batchPolicy: 'adaptive' as BatchPolicy,
  timeoutS: 60,
  maxConcurrency: 128,
  graphOptimization: 'all' as GraphOptimization,
  executionMode: 'sequential' as ExecutionMode,
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
}

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
  readonly server: { readonly host: string; readonly port: number; readonly maxBodyMb: number };
  /** Dotted path -> position of that node in the file, for errors raised after validation. */
  readonly positions: ReadonlyMap<string, SourcePosition>;
}
