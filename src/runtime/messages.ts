/**
 * Everything that crosses between the main thread and a worker thread, typed in one place.
 * Tensors travel as typed arrays whose buffers are transferred, never as JSON.
 */
import type { PlannedWorker } from '../plan/types.js';

/** ONNX Runtime's tensor element types, as `Tensor.type` names them. */
export type OrtType =
  | 'float32'
  | 'float64'
  | 'float16'
  | 'int8'
  | 'int16'
  | 'int32'
  | 'int64'
  | 'uint8'
  | 'uint16'
  | 'uint32'
  | 'uint64'
  | 'bool'
  | 'string';

export type TensorData =
  | Float32Array
  | Float64Array
  | Uint16Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Uint32Array
  | BigUint64Array
  | string[];

export interface WireTensor {
  readonly type: OrtType;
  readonly dims: readonly number[];
  readonly data: TensorData;
}

export interface WorkerData {
  readonly worker: PlannedWorker;
  /**
   * Test switch: open every session on the CPU while keeping (and reporting) the planned
   * device, so that placement can be tested on machines without GPUs. Never set by users.
   */
  readonly forceCpuSessions: boolean;
  /** Test switch: wait this long before loading, so a test can kill a thread mid-load. */
  readonly loadDelayMs: number;
  /** Test switch: a shared counter of threads that must exit before they are ready. */
  readonly bootstrapCrashes: SharedArrayBuffer;
  /** Test switch: BroadcastChannel on which the main thread asks this thread to exit. */
  readonly crashChannel: string;
}

export interface TensorSignature {
  readonly name: string;
  readonly type: OrtType | 'unknown';
  /** Numbers for fixed dimensions, -1 for dynamic ones. */
  readonly shape: readonly number[];
}

export interface SessionReport {
  readonly model: string;
  readonly device: string;
  readonly deviceId: number | null;
  /** The executionProviders actually passed to InferenceSession.create. */
  readonly providers: readonly ProviderOption[];
  readonly loadMs: number;
  readonly inputs: readonly TensorSignature[];
  readonly outputs: readonly TensorSignature[];
}

export type ProviderOption =
  | { readonly name: 'cpu' }
  | { readonly name: 'cuda'; readonly deviceId: number };

export interface WorkerReport {
  readonly service: string;
  readonly worker: number;
  readonly threadId: number;
  readonly sessions: readonly SessionReport[];
}

export interface InitTask {
  readonly kind: 'init';
}

export interface InferTask {
  readonly kind: 'infer';
  readonly model: string;
  readonly inputs: Readonly<Record<string, WireTensor>>;
  /** Output names wanted; empty means all. */
  readonly outputs: readonly string[];
}

/** Test switch only: ends the thread as a crash would. */
export interface CrashTask {
  readonly kind: 'crash';
  /** The thread to end; its replacement, which may receive the task, ignores it. */
  readonly threadId: number;
}

export type Task = InitTask | InferTask | CrashTask;

export interface InferResult {
  readonly outputs: Readonly<Record<string, WireTensor>>;
  /** Time inside session.run, in milliseconds. */
  readonly inferMs: number;
}

/** A load failure, as data: errors lose their class when they cross threads. */
export interface LoadFailure {
  readonly failed: true;
  readonly model: string;
  readonly device: string;
  readonly message: string;
  readonly cudaProviderMissing: boolean;
}
