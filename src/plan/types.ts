/**
 * The placement plan: plain, printable data that the runtime follows without re-deciding.
 */
import type { Diagnostic } from '../spec/diagnostics.js';
import type { BatchingSpec, PipelineSpec, SessionSpec } from '../spec/types.js';

/** One GPU as this process sees it (after CUDA_VISIBLE_DEVICES). */
export interface DeviceInfo {
  /** Visible index: the CUDA deviceId given to onnxruntime. */
  readonly index: number;
  /** nvidia-smi's index (the physical GPU). */
  readonly physicalIndex: number;
  /** As nvidia-smi prints it, e.g. "NVIDIA L4". */
  readonly name: string;
  /** Normalised type as specs write it, e.g. "nvidia-l4". */
  readonly type: string;
  readonly memoryTotalMiB: number;
  readonly uuid: string;
}

/** `cuda:N` with N the visible index, or `cpu`. */
export type DeviceName = `cuda:${number}` | 'cpu';

/** One session: a model in a worker on a device. */
export interface Placement {
  readonly service: string;
  /** 0-based worker index within the service. */
  readonly worker: number;
  readonly model: string;
  readonly device: DeviceName;
  /** Service-local GPU index (null on the CPU). */
  readonly localGpu: number | null;
  /** CUDA deviceId: the visible index (null on the CPU). */
  readonly deviceId: number | null;
  readonly physicalGpu: number | null;
  readonly gpuName: string | null;
}

/** What one worker thread needs to open its sessions: sent to it as workerData. */
export interface PlannedSession {
  readonly model: string;
  readonly path: string;
  readonly device: DeviceName;
  readonly deviceId: number | null;
  readonly session: SessionSpec;
  readonly batching: BatchingSpec | null;
}

export interface PlannedWorker {
  readonly service: string;
  readonly worker: number;
  readonly sessions: readonly PlannedSession[];
}

export interface PlannedService {
  readonly name: string;
  /** Visible GPU indices given to this service, in local order (local i -> gpus[i]). */
  readonly gpus: readonly number[];
  readonly workers: readonly PlannedWorker[];
  readonly timeoutS: number;
  readonly maxConcurrency: number;
}

/** Estimated GPU memory for one visible GPU. */
export interface GpuMemoryEstimate {
  readonly device: DeviceName;
  readonly deviceId: number;
  readonly physicalGpu: number;
  readonly gpuName: string;
  readonly totalMiB: number;
  readonly estimatedMiB: number;
  readonly sessions: number;
  readonly fits: boolean;
}

/** One step of a pipeline and the devices its model's sessions are on. */
export interface PlannedPipelineStep {
  readonly step: string;
  readonly model: string;
  readonly service: string;
  /** Distinct, in placement order; empty when the service is not planned (`--service`). */
  readonly devices: readonly DeviceName[];
}

export interface PlannedPipeline {
  readonly name: string;
  /** In the order they run: level by level (see `pipelineOrder`). */
  readonly steps: readonly PlannedPipelineStep[];
}

export interface Plan {
  readonly name: string;
  /** True when `--cpu` put every worker on the CPU. */
  readonly cpuOnly: boolean;
  /** Detected GPUs, visible ones only, in visible order. */
  readonly devices: readonly DeviceInfo[];
  /** CUDA_VISIBLE_DEVICES as found (null when unset). */
  readonly cudaVisibleDevices: string | null;
  readonly services: readonly PlannedService[];
  /** One entry per session, in service, worker, model order. */
  readonly placements: readonly Placement[];
  readonly memory: readonly GpuMemoryEstimate[];
  readonly warnings: readonly Diagnostic[];
  /** Each pipeline's steps and their devices; empty when the spec has none. */
  readonly pipelines: readonly PlannedPipeline[];
  /**
   * Each pipeline as the spec declares it (inputs, step sources, outputs): what the inference
   * core runs, without the spec. Absent in plans made by hand (tests) or before pipelines ran.
   */
  readonly pipelineSpecs?: readonly PipelineSpec[];
}
