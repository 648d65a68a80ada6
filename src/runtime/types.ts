/** The runtime's public vocabulary: what the inference core and the CLI see of it. */
import type { EventEmitter } from 'node:events';
import type { RuntimeError } from '../errors.js';
import type { DeviceName, Plan, PlannedSession, PlannedWorker } from '../plan/types.js';
import type { BatchingSpec } from '../spec/types.js';
import type { TensorSignature, WireTensor } from '../tensor/types.js';
import type { Cancellation } from './cancellation.js';
import type { InferResult, SessionReport, WorkerReport } from './messages.js';

export type WorkerState = 'loading' | 'ready' | 'failed' | 'closed';

export interface RuntimeOptions {
  /**
   * The worker thread file (default: the shipped worker.js). Tests pass a fixture worker that
   * wraps the shipped one, as piscina's own tests do.
   */
  readonly workerFile?: string;
  /** Handed to every thread as workerData.extra, for a custom workerFile. */
  readonly workerData?: Readonly<Record<string, unknown>>;
  /**
   * The most requests posted to a worker thread at once (default 16, in one message whenever
   * the thread holds at most one); 1 makes the thread wait for the main thread between two
   * requests. Batched models keep at most 2 batches per thread.
   */
  readonly depth?: number;
  /**
   * How long a thread may hold a short request's answer to send it with the next ones, in one
   * message (default 0.2 ms); 0 sends each answer in a message of its own.
   */
  readonly holdAnswersMs?: number;
}

export interface ModelInfo {
  readonly name: string;
  readonly service: string;
  /** "1", and one more with every reload that changed the model. */
  readonly version: string;
  readonly inputs: readonly TensorSignature[];
  readonly outputs: readonly TensorSignature[];
  /** batching.max_batch_size; 0 when the model is not batched. */
  readonly maxBatchSize: number;
  readonly batching: BatchingSpec | null;
  /** 'ensemble' for a pipeline served as a model (its `service` is then ''); absent: ONNX. */
  readonly platform?: 'ensemble';
}

export interface WorkerStatus {
  readonly service: string;
  readonly worker: number;
  readonly state: WorkerState;
  readonly threadId: number | null;
  readonly restarts: number;
  /** Requests this worker holds (running, posted to its thread, or waiting for it). */
  readonly inFlight: number;
  /** Requests its thread ran (withdrawn ones not counted). */
  readonly completed: number;
  /**
   * Requests its thread answered without running them: their deadline passed, or their client
   * went, after they were posted to it.
   */
  readonly withdrawn: number;
  /** The slot and thread id as the thread itself reported them when it loaded (null until then). */
  readonly thread: {
    readonly service: string;
    readonly worker: number;
    readonly threadId: number;
  } | null;
  readonly sessions: readonly SessionReport[];
}

/** Runtime events, for logs and metrics. */
export interface RuntimeEvents {
  'session-loading': [worker: PlannedWorker, session: PlannedSession];
  'session-loaded': [worker: PlannedWorker, report: SessionReport];
  'worker-exit': [worker: PlannedWorker];
  'worker-ready': [worker: PlannedWorker, report: WorkerReport, restart: boolean];
  'worker-failed': [worker: PlannedWorker, error: RuntimeError];
  /** A worker finished a request: batchers may dispatch what waits. */
  'worker-free': [worker: PlannedWorker];
  /**
   * A request left before it ran: from the worker's queue (`queue`) or, posted already, skipped
   * by its thread (`thread`).
   */
  withdrawn: [worker: PlannedWorker, stage: 'queue' | 'thread'];
  /** A batch of `rows` rows from `requests` requests went to a worker. */
  batch: [model: string, rows: number, requests: number];
}

/** A result, with the worker that ran it and the device its session was planned on. */
export interface RuntimeInferResult extends InferResult {
  readonly service: string;
  readonly worker: number;
  readonly device: DeviceName;
  /** Time from submission until a worker thread took it (batcher and queue), ms. */
  readonly queueMs?: number;
  /** Rows of the batch it ran in (1 request = its own rows without batching). */
  readonly batchRows?: number;
}

export interface Runtime {
  readonly plan: Plan;
  readonly events: EventEmitter<RuntimeEvents>;
  /** Every model served, with its signature read from the loaded sessions. */
  readonly models: ReadonlyMap<string, ModelInfo>;
  /**
   * Runs one request on the least busy ready worker holding the model. When `signal` aborts
   * before a worker takes the request, the request leaves every queue and the promise rejects
   * with the signal's reason; once running, it runs to its end.
   */
  infer(
    model: string,
    inputs: Readonly<Record<string, WireTensor>>,
    outputs: readonly string[],
    signal?: Cancellation,
  ): Promise<RuntimeInferResult>;
  /** True when every worker has its sessions loaded. */
  ready(): boolean;
  /** True when at least one worker holding `model` is ready. */
  modelReady(model: string): boolean;
  workers(): WorkerStatus[];
  close(): Promise<void>;
}
