/** What `bento-run doctor` finds: plain data, printed as text or JSON by report.ts. */
import type { Diagnostic } from '../spec/diagnostics.js';
import type { CudaSessionProbe } from './probe.js';

/** One line of the report. */
export interface Check {
  /** Stable: `node`, `cuda-provider`, `cuda-session[cuda:0]`, `placement[svc/0/model]`, … */
  readonly name: string;
  readonly ok: boolean;
  readonly message: string;
  readonly fix?: string;
  /** Whether the spec given needs this check to pass: a failed one makes the exit code 1. */
  readonly required: boolean;
}

/** A GPU as nvidia-smi lists it, with what this process calls it and what the probe found. */
export interface DoctorGpu {
  readonly physicalIndex: number;
  /** The CUDA deviceId under CUDA_VISIBLE_DEVICES; null when hidden. */
  readonly visibleIndex: number | null;
  readonly name: string;
  readonly memoryTotalMiB: number;
  readonly uuid: string;
  readonly driverVersion: string | null;
  /** The CUDA session probe on this GPU; null when hidden. */
  readonly cudaSession: CudaSessionProbe | null;
}

export interface OnnxruntimeReport {
  readonly version: string;
  /** Where the native binding and its libraries load from. */
  readonly path: string;
  readonly cudaProvider: {
    readonly installed: boolean;
    /**
     * Libraries the CUDA path needs and cannot find: provider files missing beside the
     * runtime, then what `ldd` reports the provider files need and cannot find.
     */
    readonly missingLibraries: readonly string[];
    /** The provider's own error from the first failed probe, or why it is not usable. */
    readonly error: string | null;
  };
}

export interface DoctorReport {
  /** The spec file checked; null without one. */
  readonly spec: string | null;
  readonly checks: readonly Check[];
  readonly gpus: readonly DoctorGpu[];
  readonly onnxruntime: OnnxruntimeReport;
  readonly cudaVisibleDevices: string | null;
  readonly cudaDeviceOrder: string;
  /** The spec's problems (and warnings), printed as `file:line:col: …`. */
  readonly diagnostics: readonly Diagnostic[];
  /** 0 what the spec needs is here (or no spec), 1 something it needs is missing, 2 invalid. */
  readonly exitCode: 0 | 1 | 2;
}
