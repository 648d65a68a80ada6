/**
 * Everything that crosses between the main thread and a worker thread, typed in one place.
 * Tensors travel as typed arrays whose buffers are transferred, never as JSON.
 *
 * Piscina carries one task per thread's life: `init`, which hands the thread a MessagePort of
 * its own and resolves once its sessions are loaded. Requests then go over that port, several
 * at a time, so a worker never waits for the main thread between two of them.
 */
import type { MessagePort } from 'node:worker_threads';
import type { PlannedSession, PlannedWorker } from '../plan/types.js';
import type { TensorSignature, WireTensor } from '../tensor/types.js';

export interface WorkerData {
  readonly worker: PlannedWorker;
  /** Anything a custom worker file (RuntimeOptions.workerFile) needs; the shipped one reads none. */
  readonly extra: Readonly<Record<string, unknown>>;
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

/** Piscina's one task: take this port for requests, answer when the sessions are loaded. */
export interface InitTask {
  readonly kind: 'init';
  readonly port: MessagePort;
  /**
   * One flag per request slot (request id modulo its length), shared with the main thread: 1
   * when the request was withdrawn (its deadline passed, its client went) after it was posted.
   * The thread answers such a request with `withdrawn` instead of running it.
   */
  readonly withdrawn: Int32Array;
  /**
   * How long an answer may wait for the ones after it, to go back in one message (ms); 0 sends
   * each at once.
   */
  readonly holdMs: number;
}

/** A load failure, as data: errors lose their class when they cross threads. */
export interface LoadFailure {
  readonly failed: true;
  readonly model: string;
  readonly device: string;
  readonly message: string;
  readonly cudaProviderMissing: boolean;
}

/** Posted by a thread on Piscina's parent port while it loads. */
export type ProgressMessage =
  | { readonly kind: 'session-loading'; readonly session: PlannedSession }
  | { readonly kind: 'session-loaded'; readonly report: SessionReport };

/** main -> worker, over the worker's port, as a list: every request waiting at the time. */
export interface InferRequestMessage {
  readonly id: number;
  readonly model: string;
  readonly inputs: Readonly<Record<string, WireTensor>>;
  /** Output names wanted; empty means all. */
  readonly outputs: readonly string[];
}

export interface InferResult {
  readonly outputs: Readonly<Record<string, WireTensor>>;
  /** Time inside session.run, in milliseconds. */
  readonly inferMs: number;
}

/**
 * worker -> main, over the worker's port, as a list (the answers of a run of short requests):
 * the result, onnxruntime's error message, or word that the request was withdrawn before it
 * started (and so never ran).
 */
export type InferReplyMessage =
  | ({
      readonly id: number;
      readonly error?: undefined;
      readonly withdrawn?: undefined;
    } & InferResult)
  | { readonly id: number; readonly error: string; readonly withdrawn?: undefined }
  | { readonly id: number; readonly withdrawn: true; readonly error?: undefined };
