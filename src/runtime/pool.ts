/**
 * The runtime: one single-thread Piscina pool per planned worker (worker-handle.ts), grouped by
 * service, behind a least-busy balancer, with a batcher per batched model.
 */
import { EventEmitter } from 'node:events';
import { fileURLToPath } from 'node:url';
import { RuntimeError } from '../errors.js';
import type { Plan, PlannedWorker } from '../plan/types.js';
import type { WireTensor } from '../tensor/types.js';
import { type Batcher, createBatcher } from './batcher.js';
import { cudaProviderFix, cudaProviderStatus } from './cuda.js';
import type {
  ModelInfo,
  Runtime,
  RuntimeEvents,
  RuntimeInferResult,
  RuntimeOptions,
} from './types.js';
import type { Job } from './worker-handle.js';
import { WITHDRAWN_SLOTS, WorkerHandle } from './worker-handle.js';

export type {
  ModelInfo,
  Runtime,
  RuntimeEvents,
  RuntimeInferResult,
  RuntimeOptions,
  WorkerState,
  WorkerStatus,
} from './types.js';

const WORKER_FILE = fileURLToPath(new URL('./worker.js', import.meta.url));

/**
 * The most requests posted to a thread at once: the next one is there when the current one
 * ends, and under load one message carries many.
 */
export const DEFAULT_DEPTH = 16;

/**
 * How long a thread may hold a short request's answer to send it with the next ones: one
 * message (and one wake-up of the HTTP thread) for a run of short requests, at most this late.
 */
export const DEFAULT_HOLD_MS = 0.2;

/**
 * Batches a worker holds at once: a full batch may wait behind the running one, so the device
 * never waits for the round trip between two batches; more would only add latency.
 */
const BATCH_DEPTH = 2;

/** A plan with CUDA sessions needs the CUDA provider installed; say how to get it. */
function checkCudaProvider(plan: Plan, opts: RuntimeOptions): void {
  const gpu = plan.placements.find((p) => p.deviceId !== null);
  // A custom worker file decides its own providers (a test's fixture opens them on the CPU).
  if (!gpu || opts.workerFile !== undefined) return;
  const cuda = cudaProviderStatus();
  if (cuda.installed) return;
  throw new RuntimeError(
    'BENTO_ERR_RUNTIME_CUDA_PROVIDER',
    `the plan puts model \`${gpu.model}\` (service \`${gpu.service}\`) on ${gpu.device}, but the installed onnxruntime-node has no CUDA provider (missing in ${cuda.runtimeDir}: ${cuda.missingFiles.join(', ')}). To fix: ${cudaProviderFix()}`,
  );
}

/** Every model, with its signature from the first session that loaded it, and its holders. */
function modelsOf(handles: readonly WorkerHandle[]) {
  const models = new Map<string, ModelInfo>();
  const holders = new Map<string, WorkerHandle[]>();
  for (const h of handles) {
    for (const s of h.report!.sessions) {
      if (!models.has(s.model)) {
        const { inputs, outputs } = s;
        const batching = h.planned.sessions.find((p) => p.model === s.model)?.batching ?? null;
        models.set(s.model, {
          name: s.model,
          service: h.planned.service,
          version: '1',
          inputs,
          outputs,
          maxBatchSize: batching?.maxBatchSize ?? 0,
          batching,
        });
      }
      holders.set(s.model, [...(holders.get(s.model) ?? []), h]);
    }
  }
  return { models, holders };
}

/** Least busy ready worker holding the model; ties rotate so idle workers share the load. */
function createBalancer(holders: ReadonlyMap<string, readonly WorkerHandle[]>) {
  let turn = 0;
  return (model: string): WorkerHandle | undefined => {
    const candidates = holders.get(model) ?? [];
    let best: WorkerHandle | undefined;
    const n = candidates.length;
    turn = (turn + 1) % Math.max(1, n);
    for (let i = 0; i < n; i++) {
      const h = candidates[(turn + i) % n]!;
      if (h.state === 'ready' && (!best || h.load < best.load)) best = h;
    }
    return best;
  };
}

function unavailable(model: string): RuntimeError {
  return new RuntimeError(
    'BENTO_ERR_RUNTIME_WORKER_DIED',
    `no worker holding model \`${model}\` is ready (reloading after a crash)`,
    { kind: 'UNAVAILABLE' },
  );
}

async function startHandles(
  plan: Plan,
  opts: RuntimeOptions,
  depth: number,
  events: EventEmitter<RuntimeEvents>,
): Promise<WorkerHandle[]> {
  const handleOpts = {
    workerFile: opts.workerFile ?? WORKER_FILE,
    extra: opts.workerData ?? {},
    depth: Math.min(WITHDRAWN_SLOTS, depth),
    holdMs: opts.holdAnswersMs ?? DEFAULT_HOLD_MS,
  };
  const handles = plan.services.flatMap((s) =>
    s.workers.map((w) => new WorkerHandle(w, handleOpts, events)),
  );
  const results = await Promise.allSettled(handles.map((h) => h.init()));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await Promise.allSettled(handles.map((h) => h.close()));
    throw failed.reason;
  }
  for (const h of handles) events.emit('worker-ready', h.planned, h.report!, false);
  return handles;
}

/**
 * Starts a thread per planned worker and waits until every session is loaded. A model that
 * fails to load fails the start with its cause (the threads are closed again).
 */
export async function startRuntime(
  plan: Plan,
  opts: RuntimeOptions = {},
  events = new EventEmitter<RuntimeEvents>(),
): Promise<Runtime> {
  checkCudaProvider(plan, opts);
  const depth = Math.max(1, opts.depth ?? DEFAULT_DEPTH);
  const handles = await startHandles(plan, opts, depth, events);
  const { models, holders } = modelsOf(handles);
  const pick = createBalancer(holders);

  // The device of each model on each worker, looked up once.
  const devices = new Map(
    handles.map((h) => [h, new Map(h.planned.sessions.map((s) => [s.model, s.device]))]),
  );

  async function runOn(job: Job): Promise<RuntimeInferResult> {
    const h = pick(job.model);
    if (!h) throw unavailable(job.model);
    const submitted = performance.now();
    const { outputs, inferMs } = await h.submit(job);
    return {
      outputs,
      inferMs,
      service: h.planned.service,
      worker: h.planned.worker,
      device: devices.get(h)?.get(job.model) ?? 'cpu',
      queueMs: Math.max(0, performance.now() - submitted - inferMs),
    };
  }

  const batchers = createBatchers(plan, holders, Math.min(BATCH_DEPTH, depth), runOn, events);
  return {
    plan,
    events,
    models,
    infer(model, inputs, outputs, signal) {
      const batcher = batchers.get(model);
      if (!batcher) return runOn({ model, inputs, outputs, signal });
      if (!(holders.get(model) ?? []).some((h) => h.state === 'ready')) {
        return Promise.reject(unavailable(model));
      }
      return batcher.submit(inputs, outputs, signal);
    },
    ready: () => handles.every((h) => h.state === 'ready'),
    modelReady: (model) => (holders.get(model) ?? []).some((h) => h.state === 'ready'),
    workers: () => handles.map((h) => h.status()),
    async close() {
      await Promise.allSettled(handles.map((h) => h.close()));
    },
  };
}

/**
 * One batcher per model with `batching`. It dispatches to idle workers holding the model, and
 * a full batch also to a worker with room posted, so the device never waits for the round trip
 * between two batches.
 */
function createBatchers(
  plan: Plan,
  holders: ReadonlyMap<string, readonly WorkerHandle[]>,
  depth: number,
  runOn: (job: Job) => Promise<RuntimeInferResult>,
  events: EventEmitter<RuntimeEvents>,
): Map<string, Batcher<RuntimeInferResult>> {
  const batchers = new Map<string, Batcher<RuntimeInferResult>>();
  for (const s of plan.services.flatMap((svc) => svc.workers.flatMap((w) => w.sessions))) {
    if (!s.batching || batchers.has(s.model)) continue;
    const model = s.model;
    batchers.set(
      model,
      createBatcher<RuntimeInferResult>({
        ...s.batching,
        capacity: (full) =>
          (holders.get(model) ?? []).filter(
            (h) => h.state === 'ready' && (h.load === 0 || (full && h.load < depth)),
          ).length,
        execute: (inputs: Readonly<Record<string, WireTensor>>, outputs: readonly string[]) =>
          runOn({ model, inputs, outputs }),
        onBatch: (rows, requests) => events.emit('batch', model, rows, requests),
      }),
    );
  }
  const poke = (w: PlannedWorker) => {
    for (const s of w.sessions) batchers.get(s.model)?.poke();
  };
  events.on('worker-free', poke);
  events.on('worker-ready', poke);
  return batchers;
}
