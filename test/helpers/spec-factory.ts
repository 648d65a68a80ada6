/**
 * Builds resolved `Spec`s for tests without YAML or a validator, filling defaults the way the
 * validator does: `workers: N` gives worker i the service GPU (i mod gpu) and places every model
 * there; a worker given as `{ gpus }` places unplaced models on its first GPU.
 * Positions are made up but stable: service k (0-based) starts on line 10 + 10k, its
 * `resources.gpu` is on the line after `resources`, so tests can assert where a diagnostic points.
 */
import {
  type BatchingSpec,
  DEFAULTS,
  type ModelSpec,
  type ServiceSpec,
  type SourcePosition,
  type Spec,
  type WorkerSpec,
} from '../../src/spec/types.js';

export interface ModelInput {
  sizeBytes?: number;
  batching?: BatchingSpec | null;
}

export interface WorkerInput {
  gpus: number[];
  placement?: Record<string, number>;
}

export interface ServiceInput {
  models: string[];
  gpu?: number;
  gpuType?: string;
  workers?: number | WorkerInput[];
}

export interface SpecInput {
  name?: string;
  file?: string;
  /** Models not listed here but used by a service are declared with size 0. */
  models?: Record<string, ModelInput>;
  /** In declaration order. */
  services: Record<string, ServiceInput>;
}

export const SPEC_DIR = '/srv/specs';
export const MIB = 1024 * 1024;

function model(name: string, input: ModelInput = {}): ModelSpec {
  return {
    name,
    path: `${SPEC_DIR}/models/${name}.onnx`,
    declaredPath: `models/${name}.onnx`,
    sizeBytes: input.sizeBytes ?? 0,
    batching: input.batching ?? null,
    session: {
      graphOptimization: DEFAULTS.graphOptimization,
      executionMode: DEFAULTS.executionMode,
    },
    storageUri: null,
    volume: null,
  };
}

function workers(name: string, input: ServiceInput, gpu: number): WorkerSpec[] {
  const given = input.workers ?? 1;
  if (typeof given === 'number') {
    return Array.from({ length: given }, (_, index) => {
      if (gpu === 0) return { index, gpus: [], placement: {} };
      const local = index % gpu;
      return {
        index,
        gpus: [local],
        placement: Object.fromEntries(input.models.map((m) => [m, local])),
      };
    });
  }
  return given.map((w, index) => {
    const first = w.gpus[0];
    if (first === undefined) throw new Error(`spec factory: ${name} worker ${index} has no GPU`);
    const placement = Object.fromEntries(input.models.map((m) => [m, w.placement?.[m] ?? first]));
    return { index, gpus: [...w.gpus], placement };
  });
}

/** A complete, readonly-shaped `Spec` from a few lines of input. */
export function makeSpec(input: SpecInput): Spec {
  const models: Record<string, ModelSpec> = {};
  for (const [name, m] of Object.entries(input.models ?? {})) models[name] = model(name, m);
  const positions = new Map<string, SourcePosition>();
  const services: ServiceSpec[] = Object.entries(input.services).map(([name, s], k) => {
    for (const m of s.models) models[m] ??= model(m);
    const line = 10 + 10 * k;
    positions.set(`services.${name}`, { line, column: 3 });
    positions.set(`services.${name}.resources`, { line: line + 2, column: 5 });
    positions.set(`services.${name}.resources.gpu`, { line: line + 3, column: 12 });
    if (s.gpuType !== undefined) {
      positions.set(`services.${name}.resources.gpu_type`, { line: line + 4, column: 17 });
    }
    const gpu = s.gpu ?? 0;
    return {
      name,
      models: [...s.models],
      resources: { gpu, gpuType: s.gpuType ?? null, cpu: null, memory: null },
      workers: workers(name, s, gpu),
      traffic: { timeoutS: DEFAULTS.timeoutS, maxConcurrency: DEFAULTS.maxConcurrency },
      scaling: null,
    };
  });
  return {
    file: input.file ?? 'specs/test.yaml',
    dir: SPEC_DIR,
    version: 1,
    name: input.name ?? 'test',
    models,
    services,
    pipelines: {},
    server: {
      host: DEFAULTS.host,
      port: DEFAULTS.port,
      maxBodyMb: DEFAULTS.maxBodyMb,
      grpcPort: DEFAULTS.grpcPort,
      drainTimeoutS: DEFAULTS.drainTimeoutS,
      tls: null,
      auth: null,
      ui: true,
    },
    positions,
  };
}

/** The design guide's MultiGPUService: one worker on GPUs [0, 1], model1 on 0 and model2 on 1. */
export function multiGpuSpec(): Spec {
  return makeSpec({
    name: 'multi',
    services: {
      multi_gpu: {
        models: ['model1', 'model2'],
        gpu: 2,
        workers: [{ gpus: [0, 1], placement: { model1: 0, model2: 1 } }],
      },
    },
  });
}
