/**
 * How `bento-run plan` shows a plan: a text table for people, and JSON (snake_case) for scripts.
 * DESIGN.md fixes the `placements` entries' `service, worker, model, device, physical_gpu,
 * gpu_name`; the rest is ours to extend.
 */
import { diagnosticToJson, formatDiagnostic } from '../spec/diagnostics.js';
import type { ExecutionMode, GraphOptimization } from '../spec/types.js';
import { plural, renderTable } from '../util/text.js';
import { CUDA_CONTEXT_MIB, MEMORY_FACTOR } from './plan.js';
import type { DeviceName, Plan } from './types.js';

const dash = (v: number | string | null): string => (v === null ? '-' : String(v));

/**
 * The placement table (one row per session), then estimated memory per GPU used, then warnings:
 *
 * ```
 * SERVICE    WORKER  MODEL   LOCAL GPU  DEVICE  PHYSICAL GPU  GPU NAME
 * multi_gpu  0       model1  0          cuda:0  1             NVIDIA L4
 * ```
 */
export function formatPlanTable(plan: Plan): string {
  const lines: string[] = [];
  const sessions = plan.placements.length;
  const gpus = new Set(plan.placements.flatMap((p) => (p.deviceId === null ? [] : [p.deviceId])));
  const cvd =
    plan.cudaVisibleDevices === null ? '' : ` (CUDA_VISIBLE_DEVICES="${plan.cudaVisibleDevices}")`;
  const where = plan.cpuOnly
    ? 'every worker on the CPU (--cpu)'
    : `${gpus.size} of ${plural(plan.devices.length, 'visible GPU')}${cvd}`;
  lines.push(
    `plan for ${plan.name}: ${plural(sessions, 'session')} in ${plural(plan.services.length, 'service')}, ${where}`,
    '',
  );
  lines.push(
    ...renderTable([
      ['SERVICE', 'WORKER', 'MODEL', 'LOCAL GPU', 'DEVICE', 'PHYSICAL GPU', 'GPU NAME'],
      ...plan.placements.map((p) => [
        p.service,
        String(p.worker),
        p.model,
        dash(p.localGpu),
        p.device,
        dash(p.physicalGpu),
        dash(p.gpuName),
      ]),
    ]),
  );
  if (plan.memory.length > 0) {
    lines.push(
      '',
      `GPU memory, estimated (${CUDA_CONTEXT_MIB} MiB CUDA context + ${MEMORY_FACTOR} x model size per session):`,
    );
    lines.push(
      ...renderTable([
        ['DEVICE', 'PHYSICAL GPU', 'GPU NAME', 'SESSIONS', 'ESTIMATED / TOTAL MiB', 'FITS'],
        ...plan.memory.map((m) => [
          m.device,
          String(m.physicalGpu),
          m.gpuName,
          String(m.sessions),
          `${m.estimatedMiB} / ${m.totalMiB === 0 ? '?' : m.totalMiB}`,
          m.fits ? 'ok' : 'OVER',
        ]),
      ]),
    );
  }
  if (plan.pipelines.length > 0) {
    lines.push('', 'pipeline steps, in the order they run:');
    lines.push(
      ...renderTable([
        ['PIPELINE', 'STEP', 'MODEL', 'SERVICE', 'DEVICES'],
        ...plan.pipelines.flatMap((p) =>
          p.steps.map((s) => [p.name, s.step, s.model, s.service, s.devices.join(', ') || '-']),
        ),
      ]),
    );
  }
  if (plan.warnings.length > 0) {
    lines.push('', 'warnings:', ...plan.warnings.map(formatDiagnostic));
  }
  return `${lines.join('\n')}\n`;
}

export interface PlanJsonDevice {
  index: number;
  physical_index: number;
  name: string;
  type: string;
  memory_total_mib: number;
  uuid: string;
}

export interface PlanJsonSession {
  model: string;
  path: string;
  device: DeviceName;
  device_id: number | null;
  batching: { max_batch_size: number; max_latency_ms: number } | null;
  session: {
    intra_op_threads: number | null;
    inter_op_threads: number | null;
    graph_optimization: GraphOptimization;
    execution_mode: ExecutionMode;
  };
}

export interface PlanJsonService {
  name: string;
  gpus: number[];
  workers: { worker: number; sessions: PlanJsonSession[] }[];
  timeout_s: number;
  max_concurrency: number;
}

export interface PlanJsonPlacement {
  service: string;
  worker: number;
  model: string;
  device: DeviceName;
  physical_gpu: number | null;
  gpu_name: string | null;
  local_gpu: number | null;
  device_id: number | null;
}

export interface PlanJsonMemory {
  device: DeviceName;
  device_id: number;
  physical_gpu: number;
  gpu_name: string;
  total_mib: number;
  estimated_mib: number;
  sessions: number;
  fits: boolean;
}

export interface PlanJsonPipeline {
  name: string;
  steps: { step: string; model: string; service: string; devices: DeviceName[] }[];
}

export interface PlanJson {
  name: string;
  cpu_only: boolean;
  cuda_visible_devices: string | null;
  devices: PlanJsonDevice[];
  services: PlanJsonService[];
  placements: PlanJsonPlacement[];
  memory: PlanJsonMemory[];
  warnings: Record<string, string | number>[];
  pipelines: PlanJsonPipeline[];
}

/** `plan --format json`: the plan with snake_case keys, nulls rather than missing fields. */
export function planToJson(plan: Plan): PlanJson {
  return {
    name: plan.name,
    cpu_only: plan.cpuOnly,
    cuda_visible_devices: plan.cudaVisibleDevices,
    devices: plan.devices.map((d) => ({
      index: d.index,
      physical_index: d.physicalIndex,
      name: d.name,
      type: d.type,
      memory_total_mib: d.memoryTotalMiB,
      uuid: d.uuid,
    })),
    services: plan.services.map((s) => ({
      name: s.name,
      gpus: [...s.gpus],
      workers: s.workers.map((w) => ({
        worker: w.worker,
        sessions: w.sessions.map((x) => ({
          model: x.model,
          path: x.path,
          device: x.device,
          device_id: x.deviceId,
          batching:
            x.batching === null
              ? null
              : {
                  max_batch_size: x.batching.maxBatchSize,
                  max_latency_ms: x.batching.maxLatencyMs,
                },
          session: {
            intra_op_threads: x.session.intraOpThreads ?? null,
            inter_op_threads: x.session.interOpThreads ?? null,
            graph_optimization: x.session.graphOptimization,
            execution_mode: x.session.executionMode,
          },
        })),
      })),
      timeout_s: s.timeoutS,
      max_concurrency: s.maxConcurrency,
    })),
    placements: plan.placements.map((p) => ({
      service: p.service,
      worker: p.worker,
      model: p.model,
      device: p.device,
      physical_gpu: p.physicalGpu,
      gpu_name: p.gpuName,
      local_gpu: p.localGpu,
      device_id: p.deviceId,
    })),
    memory: plan.memory.map((m) => ({
      device: m.device,
      device_id: m.deviceId,
      physical_gpu: m.physicalGpu,
      gpu_name: m.gpuName,
      total_mib: m.totalMiB,
      estimated_mib: m.estimatedMiB,
      sessions: m.sessions,
      fits: m.fits,
    })),
    warnings: plan.warnings.map(diagnosticToJson),
    pipelines: plan.pipelines.map((p) => ({
      name: p.name,
      steps: p.steps.map((s) => ({
        step: s.step,
        model: s.model,
        service: s.service,
        devices: [...s.devices],
      })),
    })),
  };
}
