/**
 * Placement: which device every session (a model in a worker of a service) runs on. Pure: the
 * GPUs come in as `DeviceInfo[]` (see discover.ts), the result is plain data the runtime follows.
 *
 * Services get disjoint blocks of the visible GPUs in declaration order; a service's GPU indices
 * are local to its block (local i -> visible `gpus[i]`), and the CUDA deviceId is the visible
 * index. Every problem is collected before one PlanError is thrown.
 */
import { PlanError, type PlanErrorCode } from '../errors.js';
import { compareDiagnostics, type Diagnostic } from '../spec/diagnostics.js';
import type { ServiceSpec, Spec } from '../spec/types.js';
import { plural } from '../util/text.js';
import { describeDevice } from './discover.js';
import { gpuTypeMatches } from './gpu-types.js';
import { planPipelines } from './pipelines.js';
import type {
  DeviceInfo,
  DeviceName,
  GpuMemoryEstimate,
  Placement,
  Plan,
  PlannedService,
  PlannedSession,
  PlannedWorker,
} from './types.js';

/**
 * GPU memory is estimated, not measured: per GPU, one CUDA context (`CUDA_CONTEXT_MIB`; worker
 * threads are one process, so they share it) plus, for every session placed on the GPU, its
 * model file's size times `MEMORY_FACTOR` (the weights, and about as much again for
 * onnxruntime's arena of activations). Real use depends on the model, batch size and
 * onnxruntime's allocator; the estimate only catches plans that cannot fit.
 */
export const CUDA_CONTEXT_MIB = 500;
/** See `CUDA_CONTEXT_MIB`. */
export const MEMORY_FACTOR = 2;

const MIB = 1024 * 1024;

export interface PlanOptions {
  /** `--cpu`: every worker on the CPU, whatever the spec asks; no GPU checks. */
  cpu?: boolean;
  /** `--service NAME` (repeatable): plan these services only; empty or absent: all. */
  services?: readonly string[];
  /** An estimate over a GPU's memory is an error (BENTO_ERR_PLAN_GPU_MEMORY), not a warning. */
  strictMemory?: boolean;
  /** CUDA_VISIBLE_DEVICES as found, for the plan and for messages; null or absent when unset. */
  cudaVisibleDevices?: string | null;
}

/** A diagnostic placed at `path` in the spec, or at the nearest ancestor that has a position. */
function diagnosticAt(
  spec: Spec,
  path: string,
  fields: Pick<Diagnostic, 'code' | 'severity' | 'message'> & { suggestion?: string },
): Diagnostic {
  let pos = spec.positions.get(path);
  for (let p = path; pos === undefined && p.includes('.'); ) {
    p = p.slice(0, p.lastIndexOf('.'));
    pos = spec.positions.get(p);
  }
  return {
    ...fields,
    path,
    file: spec.file,
    line: pos?.line ?? 0,
    column: pos?.column ?? 0,
  };
}

function selectServices(spec: Spec, names: readonly string[] | undefined): ServiceSpec[] {
  if (names === undefined || names.length === 0) return [...spec.services];
  const valid = spec.services.map((s) => s.name);
  const unknown = [...new Set(names)].filter((n) => !valid.includes(n));
  if (unknown.length > 0) {
    throw new PlanError(
      'BENTO_ERR_PLAN_UNKNOWN_SERVICE',
      unknown.map((n) => ({
        code: 'unknown-service',
        severity: 'error',
        message: `--service ${n}: no service \`${n}\` in the spec (valid: ${valid.join(', ')})`,
        path: 'services',
        file: spec.file,
        line: 0,
        column: 0,
      })),
    );
  }
  return spec.services.filter((s) => names.includes(s.name));
}

/**
 * An order of the visible GPUs (as CUDA_VISIBLE_DEVICES, physical indices) that gives every
 * service GPUs of the type it wants, found greedily; null when there is none.
 */
function suggestVisibleOrder(
  services: readonly ServiceSpec[],
  devices: readonly DeviceInfo[],
): number[] | null {
  const used = new Set<DeviceInfo>();
  const order: DeviceInfo[] = [];
  for (const [i, s] of services.entries()) {
    if (s.resources.gpu === 0) continue;
    const wantedLater = services
      .slice(i + 1)
      .map((t) => t.resources.gpuType)
      .filter((t): t is string => t !== null);
    const gpuType = s.resources.gpuType;
    const free = devices.filter(
      (d) => !used.has(d) && (gpuType === null || gpuTypeMatches(gpuType, d)),
    );
    // A service that takes any GPU leaves the kinds later services ask for to them.
    const wantedByLater = (d: DeviceInfo) => wantedLater.some((t) => gpuTypeMatches(t, d));
    const pool =
      gpuType === null ? [...free].sort((a, b) => +wantedByLater(a) - +wantedByLater(b)) : free;
    if (pool.length < s.resources.gpu) return null;
    for (const d of pool.slice(0, s.resources.gpu)) {
      used.add(d);
      order.push(d);
    }
  }
  return order.map((d) => d.physicalIndex);
}

/** Gives each GPU service its block of visible GPUs; reports services that cannot get one. */
function allocateBlocks(
  spec: Spec,
  services: readonly ServiceSpec[],
  devices: readonly DeviceInfo[],
  cudaVisibleDevices: string | null,
): { blocks: Map<string, DeviceInfo[]>; errors: Diagnostic[] } {
  const blocks = new Map<string, DeviceInfo[]>();
  const errors: Diagnostic[] = [];
  const totalNeeded = services.reduce((n, s) => n + s.resources.gpu, 0);
  const cvd =
    cudaVisibleDevices === null ? '' : ` with CUDA_VISIBLE_DEVICES="${cudaVisibleDevices}"`;
  const visible =
    devices.length === 0
      ? `no GPU is visible${cvd}`
      : `${plural(devices.length, 'GPU')} ${devices.length === 1 ? 'is' : 'are'} visible${cvd}: ${devices.map(describeDevice).join(', ')}`;
  let next = 0;
  const before: string[] = [];
  for (const s of services) {
    const n = s.resources.gpu;
    if (n === 0) {
      blocks.set(s.name, []);
      continue;
    }
    if (next + n <= devices.length) {
      blocks.set(s.name, devices.slice(next, next + n));
    } else {
      const taken =
        before.length === 0
          ? ''
          : `; services declared before it take ${next} (${before.join(', ')})`;
      errors.push(
        diagnosticAt(spec, `services.${s.name}.resources.gpu`, {
          code: 'too-few-gpus',
          severity: 'error',
          message:
            `service \`${s.name}\` needs ${plural(n, 'GPU')} but ${visible}${taken}; ` +
            `the services need ${totalNeeded} in all. Run with --cpu to put every worker on the CPU, ` +
            'or lower resources.gpu, or make more GPUs visible',
          suggestion: '--cpu',
        }),
      );
    }
    before.push(`\`${s.name}\`: ${n}`);
    next += n;
  }
  return { blocks, errors };
}

function checkGpuTypes(
  spec: Spec,
  services: readonly ServiceSpec[],
  devices: readonly DeviceInfo[],
  blocks: ReadonlyMap<string, readonly DeviceInfo[]>,
): Diagnostic[] {
  const errors: Diagnostic[] = [];
  const byType = new Map<string, string[]>();
  for (const d of devices) byType.set(d.type, [...(byType.get(d.type) ?? []), `cuda:${d.index}`]);
  const available =
    devices.length === 0
      ? 'none'
      : [...byType].map(([type, where]) => `${type} (${where.join(', ')})`).join(', ');
  let reorder: number[] | null | undefined;
  for (const s of services) {
    const wanted = s.resources.gpuType;
    const block = blocks.get(s.name);
    if (wanted === null || block === undefined) continue;
    const wrong = block
      .map((d, local) => ({ d, local }))
      .filter(({ d }) => !gpuTypeMatches(wanted, d))
      .map(({ d, local }) => `its GPU ${local} is ${describeDevice(d)}, of type ${d.type}`);
    if (wrong.length === 0) continue;
    reorder ??= suggestVisibleOrder(services, devices);
    const fix =
      reorder === null
        ? `Change gpu_type, or run with --cpu`
        : `Set CUDA_VISIBLE_DEVICES=${reorder.join(',')} to give every service GPUs of its type, change gpu_type, or run with --cpu`;
    errors.push(
      diagnosticAt(spec, `services.${s.name}.resources.gpu_type`, {
        code: 'gpu-type-mismatch',
        severity: 'error',
        message: `service \`${s.name}\` wants gpu_type ${wanted}, but ${wrong.join('; ')}. Visible GPU types: ${available}. ${fix}`,
        suggestion:
          reorder === null ? 'change gpu_type' : `CUDA_VISIBLE_DEVICES=${reorder.join(',')}`,
      }),
    );
  }
  return errors;
}

function plannedService(
  spec: Spec,
  s: ServiceSpec,
  block: readonly DeviceInfo[] | null,
): { service: PlannedService; placements: Placement[] } {
  const placements: Placement[] = [];
  const workers: PlannedWorker[] = s.workers.map((w) => {
    const sessions = s.models.map((model): PlannedSession => {
      const m = spec.models[model];
      if (m === undefined) {
        throw new Error(`internal: service \`${s.name}\` loads undeclared model \`${model}\``);
      }
      let device: DeviceName = 'cpu';
      let gpu: DeviceInfo | null = null;
      let localGpu: number | null = null;
      if (block !== null && block.length > 0) {
        // The validator fills placement; the fallbacks mirror its defaults.
        localGpu = w.placement[model] ?? w.gpus[0] ?? w.index % block.length;
        gpu = block[localGpu] ?? null;
        if (gpu === null) {
          throw new Error(
            `internal: service \`${s.name}\` worker ${w.index} places \`${model}\` on GPU ${localGpu} of ${block.length}`,
          );
        }
        device = `cuda:${gpu.index}`;
      }
      placements.push({
        service: s.name,
        worker: w.index,
        model,
        device,
        localGpu,
        deviceId: gpu?.index ?? null,
        physicalGpu: gpu?.physicalIndex ?? null,
        gpuName: gpu?.name ?? null,
      });
      return {
        model,
        path: m.path,
        device,
        deviceId: gpu?.index ?? null,
        session: m.session,
        batching: m.batching,
      };
    });
    return { service: s.name, worker: w.index, sessions };
  });
  return {
    service: {
      name: s.name,
      gpus: block?.map((d) => d.index) ?? [],
      workers,
      timeoutS: s.traffic.timeoutS,
      maxConcurrency: s.traffic.maxConcurrency,
    },
    placements,
  };
}

function estimateMemory(
  spec: Spec,
  devices: readonly DeviceInfo[],
  placements: readonly Placement[],
): { memory: GpuMemoryEstimate[]; owners: Map<number, string> } {
  const bytes = new Map<number, number>();
  const sessions = new Map<number, number>();
  const owners = new Map<number, string>();
  for (const p of placements) {
    if (p.deviceId === null) continue;
    const size = spec.models[p.model]?.sizeBytes ?? 0;
    bytes.set(p.deviceId, (bytes.get(p.deviceId) ?? 0) + size * MEMORY_FACTOR);
    sessions.set(p.deviceId, (sessions.get(p.deviceId) ?? 0) + 1);
    owners.set(p.deviceId, p.service);
  }
  const memory: GpuMemoryEstimate[] = [];
  for (const d of devices) {
    const n = sessions.get(d.index);
    if (n === undefined) continue;
    const estimatedMiB = CUDA_CONTEXT_MIB + Math.ceil((bytes.get(d.index) ?? 0) / MIB);
    memory.push({
      device: `cuda:${d.index}`,
      deviceId: d.index,
      physicalGpu: d.physicalIndex,
      gpuName: d.name,
      totalMiB: d.memoryTotalMiB,
      estimatedMiB,
      sessions: n,
      // 0 means nvidia-smi did not say; nothing to compare with.
      fits: d.memoryTotalMiB === 0 || estimatedMiB <= d.memoryTotalMiB,
    });
  }
  return { memory, owners };
}

function memoryDiagnostics(
  spec: Spec,
  memory: readonly GpuMemoryEstimate[],
  owners: ReadonlyMap<number, string>,
  strict: boolean,
): Diagnostic[] {
  return memory
    .filter((m) => !m.fits)
    .map((m) => {
      const service = owners.get(m.deviceId) ?? '';
      const models = m.estimatedMiB - CUDA_CONTEXT_MIB;
      return diagnosticAt(spec, `services.${service}.resources.gpu`, {
        code: 'gpu-memory',
        severity: strict ? 'error' : 'warning',
        message:
          `service \`${service}\`: GPU ${m.device} (physical ${m.physicalGpu}, ${m.gpuName}) may not have ` +
          `enough memory: estimated ${m.estimatedMiB} MiB of ${m.totalMiB} MiB ` +
          `(${CUDA_CONTEXT_MIB} MiB CUDA context + ${MEMORY_FACTOR} x model size, ${models} MiB, ` +
          `for ${plural(m.sessions, 'session')}). Fewer workers or models per GPU, or more GPUs, would fit`,
      });
    });
}

/**
 * Plans where every session runs. `devices` are the visible GPUs in visible order (from
 * `discoverDevices`). Throws PlanError: BENTO_ERR_PLAN_UNKNOWN_SERVICE (a `--service` name not
 * in the spec), BENTO_ERR_PLAN_TOO_FEW_GPUS, BENTO_ERR_PLAN_GPU_TYPE, or, with `strictMemory`,
 * BENTO_ERR_PLAN_GPU_MEMORY; the error carries every problem found, its code is the first kind
 * in that order.
 */
export function planPlacement(
  spec: Spec,
  devices: readonly DeviceInfo[],
  opts: PlanOptions = {},
): Plan {
  const services = selectServices(spec, opts.services);
  const cudaVisibleDevices = opts.cudaVisibleDevices ?? null;
  const cpuOnly = opts.cpu === true;

  let blocks = new Map<string, DeviceInfo[]>();
  const errors: Diagnostic[] = [];
  if (!cpuOnly) {
    const allocated = allocateBlocks(spec, services, devices, cudaVisibleDevices);
    blocks = allocated.blocks;
    errors.push(...allocated.errors);
    errors.push(...checkGpuTypes(spec, services, devices, blocks));
  }
  if (errors.length > 0) throwPlanError(errors);

  const planned = services.map((s) =>
    plannedService(spec, s, cpuOnly ? null : (blocks.get(s.name) ?? null)),
  );
  const placements = planned.flatMap((p) => p.placements);
  const { memory, owners } = estimateMemory(spec, devices, placements);
  const memoryProblems = memoryDiagnostics(spec, memory, owners, opts.strictMemory === true);
  if (opts.strictMemory === true && memoryProblems.length > 0) throwPlanError(memoryProblems);

  return {
    name: spec.name,
    cpuOnly,
    devices: [...devices],
    cudaVisibleDevices,
    services: planned.map((p) => p.service),
    placements,
    memory,
    warnings: memoryProblems.sort(compareDiagnostics),
    pipelines: planPipelines(spec, placements),
    pipelineSpecs: Object.values(spec.pipelines),
  };
}

const CODE_BY_DIAGNOSTIC: ReadonlyArray<readonly [string, PlanErrorCode]> = [
  ['too-few-gpus', 'BENTO_ERR_PLAN_TOO_FEW_GPUS'],
  ['gpu-type-mismatch', 'BENTO_ERR_PLAN_GPU_TYPE'],
  ['gpu-memory', 'BENTO_ERR_PLAN_GPU_MEMORY'],
];

function throwPlanError(errors: Diagnostic[]): never {
  const code = CODE_BY_DIAGNOSTIC.find(([c]) => errors.some((e) => e.code === c))?.[1];
  throw new PlanError(code ?? 'BENTO_ERR_PLAN_TOO_FEW_GPUS', errors.sort(compareDiagnostics));
}
