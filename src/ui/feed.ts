/**
 * `GET /ui/status.json`: what the page draws, in one object. The plan (services, workers, each
 * worker's sessions on their devices, pipelines as their steps, the GPU memory estimate), each
 * worker's and model's state now, and each model's chart points. It shows what /debug/workers
 * and the model routes already show, placed: no model file paths, session options, spec
 * warnings or environment.
 */
import type { InferenceCore } from '../core/inference.js';
import type { Placement, Plan } from '../plan/types.js';
import type { ModelInfo, WorkerStatus } from '../runtime/types.js';
import { modelMetadata } from '../server/rest-codec.js';
import { type Point, readCounters, type Series } from './series.js';

/** A worker's state as the page names it: a reloading worker that has died before restarts. */
export type WorkerView = 'loading' | 'ready' | 'restarting' | 'failed' | 'closed';

export interface SessionView {
  readonly model: string;
  readonly device: string;
  readonly physicalGpu: number | null;
  readonly gpuName: string | null;
  /** The worker's current thread has this session open. */
  readonly loaded: boolean;
  readonly loadMs: number | null;
}

export interface WorkerViewData {
  readonly service: string;
  readonly worker: number;
  readonly state: WorkerView;
  readonly restarts: number;
  readonly inFlight: number;
  readonly completed: number;
  readonly sessions: readonly SessionView[];
}

export interface ServiceView {
  readonly name: string;
  /** Visible GPU indices, local order. */
  readonly gpus: readonly number[];
  readonly timeoutS: number;
  readonly maxConcurrency: number;
  readonly workers: readonly WorkerViewData[];
}

export interface ModelView {
  readonly name: string;
  /** `ensemble` for a pipeline, served as one more model. */
  readonly platform: string;
  /** Empty for a pipeline: its steps' models have services. */
  readonly service: string;
  readonly version: string;
  readonly ready: boolean;
  readonly maxBatchSize: number;
  readonly maxLatencyMs: number | null;
  readonly inputs: ReturnType<typeof modelMetadata>['inputs'];
  readonly outputs: ReturnType<typeof modelMetadata>['outputs'];
  /** `service/worker` of every worker holding it. */
  readonly workers: readonly string[];
}

export interface PipelineView {
  readonly name: string;
  /** Every step's model has a ready worker. */
  readonly ready: boolean;
  readonly steps: readonly {
    readonly step: string;
    readonly model: string;
    readonly service: string;
    readonly devices: readonly string[];
    readonly ready: boolean;
  }[];
}

export interface PlanView {
  readonly name: string;
  readonly cpuOnly: boolean;
  readonly ready: boolean;
  readonly memory: Plan['memory'];
  readonly services: readonly ServiceView[];
  readonly models: readonly ModelView[];
  readonly pipelines: readonly PipelineView[];
}

export interface StatusFeed extends PlanView {
  readonly version: string;
  /** When this answer was made, ms since the epoch: pass it back as `since`. */
  readonly time: number;
  readonly intervalMs: number;
  readonly windowMs: number;
  /** Per model, the chart points after `since`. */
  readonly series: Record<string, Point[]>;
}

export function workerView(w: Pick<WorkerStatus, 'state' | 'restarts'>): WorkerView {
  return w.state === 'loading' && w.restarts > 0 ? 'restarting' : w.state;
}

function sessionsOf(plan: Plan, w: WorkerStatus): SessionView[] {
  const planned =
    plan.services.find((s) => s.name === w.service)?.workers[w.worker]?.sessions ?? [];
  const placed = (model: string): Placement | undefined =>
    plan.placements.find(
      (p) => p.service === w.service && p.worker === w.worker && p.model === model,
    );
  return planned.map((s) => {
    const report = w.sessions.find((r) => r.model === s.model);
    const p = placed(s.model);
    return {
      model: s.model,
      device: s.device,
      physicalGpu: p?.physicalGpu ?? null,
      gpuName: p?.gpuName ?? null,
      loaded: report !== undefined,
      loadMs: report ? Math.round(report.loadMs) : null,
    };
  });
}

function modelView(plan: Plan, m: ModelInfo, ready: boolean): ModelView {
  const meta = modelMetadata(m);
  return {
    name: m.name,
    platform: meta.platform,
    service: m.service,
    version: m.version,
    ready,
    maxBatchSize: m.maxBatchSize,
    maxLatencyMs: m.batching?.maxLatencyMs ?? null,
    inputs: meta.inputs,
    outputs: meta.outputs,
    workers: plan.placements
      .filter((p) => p.model === m.name)
      .map((p) => `${p.service}/${p.worker}`),
  };
}

/** The plan with each worker's and model's state: pure, from what the runtime reports. */
export function planView(
  plan: Plan,
  workers: readonly WorkerStatus[],
  models: readonly ModelInfo[],
  modelReady: (model: string) => boolean,
): PlanView {
  const services = plan.services.map((s) => ({
    name: s.name,
    gpus: s.gpus,
    timeoutS: s.timeoutS,
    maxConcurrency: s.maxConcurrency,
    workers: workers
      .filter((w) => w.service === s.name)
      .map((w) => ({
        service: w.service,
        worker: w.worker,
        state: workerView(w),
        restarts: w.restarts,
        inFlight: w.inFlight,
        completed: w.completed,
        sessions: sessionsOf(plan, w),
      })),
  }));
  // A plan made before pipelines existed has none; an older one may lack the key.
  const pipelines = (plan.pipelines ?? []).map((p) => {
    const steps = p.steps.map((s) => ({
      step: s.step,
      model: s.model,
      service: s.service,
      devices: s.devices,
      ready: modelReady(s.model),
    }));
    return { name: p.name, ready: steps.every((s) => s.ready), steps };
  });
  return {
    name: plan.name,
    cpuOnly: plan.cpuOnly,
    ready: workers.every((w) => w.state === 'ready'),
    memory: plan.memory,
    services,
    models: models.map((m) => modelView(plan, m, modelReady(m.name))),
    pipelines,
  };
}

/** Every model clients can call: the runtime's, then the pipelines the core serves as models. */
export function servedModels(core: InferenceCore): ModelInfo[] {
  return [...core.runtime.models.values(), ...[...core.pipelines.values()].map((p) => p.info)];
}

/** The feed: samples the metrics (at most once per interval), then answers. */
export async function statusFeed(
  core: InferenceCore,
  series: Series,
  opts: { readonly version: string; readonly since: number; readonly now?: number },
): Promise<StatusFeed> {
  const now = opts.now ?? Date.now();
  const models = servedModels(core);
  await series.sample(now, () =>
    readCounters(
      core.metrics,
      models.map((m) => m.name),
    ),
  );
  return {
    ...planView(core.runtime.plan, core.runtime.workers(), models, (m) => core.modelReady(m)),
    version: opts.version,
    time: now,
    intervalMs: series.intervalMs,
    windowMs: series.windowMs,
    series: series.points(opts.since),
  };
}
