/**
 * The runtime: one single-thread Piscina pool per planned worker, grouped by service, behind a
 * least-busy balancer. A pool per worker is how a thread learns its slot of the plan: Piscina
 * gives every thread of a pool the same workerData, so a crashed thread's replacement gets the
 * same slot and device, and reloads its sessions before it takes requests again.
 */
import { EventEmitter, once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { BroadcastChannel } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { RuntimeError } from '../errors.js';
import type { DeviceName, Plan, PlannedWorker } from '../plan/types.js';
import { type Batcher, createBatcher } from './batcher.js';
import { cudaProviderFix, cudaProviderStatus } from './cuda.js';
import type {
  InferResult,
  LoadFailure,
  SessionReport,
  Task,
  TensorSignature,
  WireTensor,
  WorkerReport,
} from './messages.js';

const WORKER_FILE = fileURLToPath(new URL('./worker.js', import.meta.url));
let crashChannels = 0;

export type WorkerState = 'loading' | 'ready' | 'failed' | 'closed';

export interface RuntimeOptions {
  /** Test switch: open sessions on the CPU while keeping the planned devices. */
  readonly forceCpuSessions?: boolean;
  /** Test switch: delay each thread's load, to kill a thread mid-load. */
  readonly loadDelayMs?: number;
}

export interface ModelInfo {
  readonly name: string;
  readonly service: string;
  readonly inputs: readonly TensorSignature[];
  readonly outputs: readonly TensorSignature[];
}

export interface WorkerStatus {
  readonly service: string;
  readonly worker: number;
  readonly state: WorkerState;
  readonly threadId: number | null;
  readonly restarts: number;
  readonly inFlight: number;
  readonly completed: number;
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
  'session-loaded': [worker: PlannedWorker, report: SessionReport];
  'worker-exit': [worker: PlannedWorker];
  'worker-ready': [worker: PlannedWorker, report: WorkerReport, restart: boolean];
  'worker-failed': [worker: PlannedWorker, error: RuntimeError];
  /** A worker finished a task: batchers may dispatch what waits. */
  'worker-free': [worker: PlannedWorker];
  /** A batch of `rows` rows from `requests` requests went to a worker. */
  batch: [model: string, rows: number, requests: number];
}

function isFailure(r: WorkerReport | LoadFailure): r is LoadFailure {
  return 'failed' in r;
}

function loadError(w: PlannedWorker, f: LoadFailure): RuntimeError {
  const where = `service \`${w.service}\`, worker ${w.worker}, model \`${f.model}\` on ${f.device}`;
  if (f.cudaProviderMissing) {
    return new RuntimeError(
      'BENTO_ERR_RUNTIME_CUDA_PROVIDER',
      `${where}: onnxruntime-node could not load its CUDA provider (${f.message.split('\n')[0]}); ${cudaProviderFix()}`,
    );
  }
  return new RuntimeError('BENTO_ERR_RUNTIME_MODEL_LOAD', `${where}: failed to load: ${f.message}`);
}

/** One planned worker: a single-thread pool whose thread holds that worker's sessions. */
class WorkerHandle {
  state: WorkerState = 'loading';
  inFlight = 0;
  completed = 0;
  restarts = 0;
  report: WorkerReport | null = null;
  pool: Piscina<Task, WorkerReport | LoadFailure | InferResult>;
  /** Models whose 'session-loaded' was emitted for the current thread. */
  private readonly announced = new Set<string>();
  private readonly crashChannel = `bento-run:crash:${process.pid}:${++crashChannels}`;
  /** Test switch: how many of the next threads exit before they are ready (shared with them). */
  private readonly bootstrapCrashes = new Int32Array(new SharedArrayBuffer(4));

  constructor(
    readonly planned: PlannedWorker,
    private readonly opts: RuntimeOptions,
    private readonly events: EventEmitter<RuntimeEvents>,
  ) {
    this.pool = this.createPool(false);
  }

  private createPool(
    replacement: boolean,
  ): Piscina<Task, WorkerReport | LoadFailure | InferResult> {
    const pool = new Piscina<Task, WorkerReport | LoadFailure | InferResult>({
      filename: WORKER_FILE,
      name: 'default',
      minThreads: 1,
      maxThreads: 1,
      idleTimeout: Number.POSITIVE_INFINITY,
      // Without it, a queued task that finds the thread busy goes back to the TAIL of the
      // queue: under steady load one request starved for seconds (max 3 s at 8 in flight).
      stricterFIFO: true,
      workerData: {
        worker: this.planned,
        forceCpuSessions: this.opts.forceCpuSessions === true,
        loadDelayMs: this.opts.loadDelayMs ?? 0,
        crashChannel: this.crashChannel,
        bootstrapCrashes: this.bootstrapCrashes.buffer,
      },
    });
    pool.on('message', (m: { kind?: string; report?: SessionReport }) => {
      if (m.kind === 'session-loaded' && m.report) this.announce(m.report);
    });
    // A thread that dies with no task in flight is reported as a pool 'error'; one with tasks
    // fails them instead. Either way Piscina replaces the thread, and workerDestroy tells us.
    pool.on('error', () => undefined);
    pool.on('workerDestroy', () => {
      if (this.state === 'closed' || pool !== this.pool) return;
      this.state = 'loading';
      this.report = null;
      this.announced.clear();
      this.events.emit('worker-exit', this.planned);
      // Piscina stops replacing threads for good once one dies before it is ready (during its
      // bootstrap). Then no thread is left: start a new pool for the same slot and device.
      setImmediate(() => {
        if (this.state !== 'closed' && pool === this.pool && pool.threads.length === 0) {
          this.pool = this.createPool(true);
          void pool.destroy();
        }
      });
    });
    let created = 0;
    pool.on('workerCreate', () => {
      created++;
      if ((replacement || created > 1) && this.state !== 'closed' && pool === this.pool) {
        void this.reload();
      }
    });
    return pool;
  }

  /** Emits 'session-loaded' once per session and load. */
  private announce(report: SessionReport): void {
    if (this.announced.has(report.model)) return;
    this.announced.add(report.model);
    this.events.emit('session-loaded', this.planned, report);
  }

  /** Waits for the thread's sessions; throws the load failure with its cause. */
  async init(): Promise<WorkerReport> {
    const r = (await this.pool.run({ kind: 'init' })) as WorkerReport | LoadFailure;
    if (isFailure(r)) {
      this.state = 'failed';
      throw loadError(this.planned, r);
    }
    // These messages travel apart from the task's answer and may come after it: announce any
    // still missing now, so every session's line precedes the worker's readiness.
    for (const s of r.sessions) this.announce(s);
    this.report = r;
    this.state = 'ready';
    return r;
  }

  private async reload(): Promise<void> {
    this.restarts++;
    this.state = 'loading';
    try {
      const report = await this.init();
      this.events.emit('worker-ready', this.planned, report, true);
    } catch (e) {
      // The thread died mid-load (not a load failure): Piscina has already started its
      // replacement, whose own reload takes over.
      if (!(e instanceof RuntimeError) && this.pool.threads.length > 0) return;
      const err =
        e instanceof RuntimeError
          ? e
          : new RuntimeError('BENTO_ERR_RUNTIME_WORKER_DIED', String(e), { cause: e });
      this.state = 'failed';
      this.events.emit('worker-failed', this.planned, err);
    }
  }

  async run(task: Task, transferList: ArrayBufferLike[]): Promise<InferResult> {
    this.inFlight++;
    try {
      return (await this.pool.run(task, {
        transferList: transferList as ArrayBuffer[],
      })) as InferResult;
    } catch (e) {
      throw new RuntimeError(
        'BENTO_ERR_RUNTIME_WORKER_DIED',
        `service \`${this.planned.service}\`, worker ${this.planned.worker}: ${(e as Error).message}`,
        { kind: 'INTERNAL', cause: e },
      );
    } finally {
      this.inFlight--;
      this.completed++;
      this.events.emit('worker-free', this.planned);
    }
  }

  /**
   * Test switch: ends the current thread, whatever it is doing, and waits for it to exit;
   * `failBootstraps` more threads then exit before they are ready, as a broken start would.
   */
  async crash(failBootstraps = 0): Promise<void> {
    Atomics.store(this.bootstrapCrashes, 0, failBootstraps);
    const thread = this.pool.threads[0];
    if (!thread) return;
    const exited = once(thread, 'exit');
    // A loading or busy thread reads the channel at its next turn of its event loop...
    const channel = new BroadcastChannel(this.crashChannel);
    channel.postMessage(thread.threadId);
    channel.close();
    // ...an idle one sleeps in Atomics.wait until a task wakes it. Not terminate(): a thread
    // terminated inside a native onnxruntime call (loading, running) aborts the whole process.
    this.pool.run({ kind: 'crash', threadId: thread.threadId }).catch(() => undefined);
    await exited;
  }

  status(): WorkerStatus {
    return {
      service: this.planned.service,
      worker: this.planned.worker,
      state: this.state,
      threadId: this.pool.threads[0]?.threadId ?? null,
      restarts: this.restarts,
      inFlight: this.inFlight,
      completed: this.completed,
      thread: this.report
        ? {
            service: this.report.service,
            worker: this.report.worker,
            threadId: this.report.threadId,
          }
        : null,
      sessions: this.report?.sessions ?? [],
    };
  }

  async close(): Promise<void> {
    this.state = 'closed';
    await this.pool.close();
  }
}

/** A result, with the worker that ran it and the device its session was planned on. */
export interface RuntimeInferResult extends InferResult {
  readonly service: string;
  readonly worker: number;
  readonly device: DeviceName;
}

export interface Runtime {
  readonly plan: Plan;
  readonly events: EventEmitter<RuntimeEvents>;
  /** Every model served, with its signature read from the loaded sessions. */
  readonly models: ReadonlyMap<string, ModelInfo>;
  /** Runs one request on the least busy ready worker holding the model. */
  infer(
    model: string,
    inputs: Readonly<Record<string, WireTensor>>,
    outputs: readonly string[],
  ): Promise<RuntimeInferResult>;
  /** True when every worker has its sessions loaded. */
  ready(): boolean;
  /** True when at least one worker holding `model` is ready. */
  modelReady(model: string): boolean;
  workers(): WorkerStatus[];
  /**
   * Test switch: ends the thread of a worker as a crash would, whatever it is doing (loading,
   * running a request, idle), and resolves once it has exited.
   */
  crashWorker(service: string, worker: number, opts?: { failBootstraps?: number }): Promise<void>;
  close(): Promise<void>;
}

/** Where tensor bytes live, to hand the buffers over instead of copying them. */
function buffersOf(inputs: Readonly<Record<string, WireTensor>>): ArrayBufferLike[] {
  const out = new Set<ArrayBufferLike>();
  for (const t of Object.values(inputs)) if (!Array.isArray(t.data)) out.add(t.data.buffer);
  return [...out];
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
  const needsCuda = plan.placements.some((p) => p.deviceId !== null);
  if (needsCuda && !opts.forceCpuSessions) {
    const cuda = cudaProviderStatus();
    if (!cuda.installed) {
      const gpu = plan.placements.find((p) => p.deviceId !== null)!;
      throw new RuntimeError(
        'BENTO_ERR_RUNTIME_CUDA_PROVIDER',
        `the plan puts model \`${gpu.model}\` (service \`${gpu.service}\`) on ${gpu.device}, but the installed onnxruntime-node has no CUDA provider (missing in ${cuda.runtimeDir}: ${cuda.missingFiles.join(', ')}). To fix: ${cudaProviderFix()}`,
      );
    }
  }
  const handles = plan.services.flatMap((s) =>
    s.workers.map((w) => new WorkerHandle(w, opts, events)),
  );
  const bySlot = new Map(handles.map((h) => [`${h.planned.service}/${h.planned.worker}`, h]));
  const results = await Promise.allSettled(handles.map((h) => h.init()));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await Promise.allSettled(handles.map((h) => h.close()));
    throw failed.reason;
  }
  for (const h of handles) events.emit('worker-ready', h.planned, h.report!, false);

  const models = new Map<string, ModelInfo>();
  const holders = new Map<string, WorkerHandle[]>();
  for (const h of handles) {
    for (const s of h.report!.sessions) {
      if (!models.has(s.model)) {
        models.set(s.model, {
          name: s.model,
          service: h.planned.service,
          inputs: s.inputs,
          outputs: s.outputs,
        });
      }
      holders.set(s.model, [...(holders.get(s.model) ?? []), h]);
    }
  }
  let turn = 0;
  /** Least busy ready worker holding the model; ties rotate so idle workers share the load. */
  function pick(model: string): WorkerHandle | undefined {
    const candidates = holders.get(model) ?? [];
    let best: WorkerHandle | undefined;
    const n = candidates.length;
    turn = (turn + 1) % Math.max(1, n);
    for (let i = 0; i < n; i++) {
      const h = candidates[(turn + i) % n]!;
      if (h.state === 'ready' && (!best || h.inFlight < best.inFlight)) best = h;
    }
    return best;
  }

  const unavailable = (model: string) =>
    new RuntimeError(
      'BENTO_ERR_RUNTIME_WORKER_DIED',
      `no worker holding model \`${model}\` is ready (reloading after a crash)`,
      { kind: 'UNAVAILABLE' },
    );

  async function runOn(
    model: string,
    inputs: Readonly<Record<string, WireTensor>>,
    outputs: readonly string[],
  ): Promise<RuntimeInferResult> {
    const h = pick(model);
    if (!h) throw unavailable(model);
    const result = await h.run({ kind: 'infer', model, inputs, outputs }, buffersOf(inputs));
    const device = h.planned.sessions.find((s) => s.model === model)?.device ?? 'cpu';
    return { ...result, service: h.planned.service, worker: h.planned.worker, device };
  }

  // One batcher per model with `batching`. It dispatches to idle workers holding the model,
  // and a full batch also to a worker with one task running, so the device never waits for
  // the round trip between two batches.
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
            (h) => h.state === 'ready' && (h.inFlight === 0 || (full && h.inFlight < 2)),
          ).length,
        execute: (inputs, outputs) => runOn(model, inputs, outputs),
        onBatch: (rows, requests) => events.emit('batch', model, rows, requests),
      }),
    );
  }
  const pokeBatchers = (w: PlannedWorker) => {
    for (const s of w.sessions) batchers.get(s.model)?.poke();
  };
  events.on('worker-free', pokeBatchers);
  events.on('worker-ready', pokeBatchers);

  return {
    plan,
    events,
    models,
    infer(model, inputs, outputs) {
      const batcher = batchers.get(model);
      if (!batcher) return runOn(model, inputs, outputs);
      if (!(holders.get(model) ?? []).some((h) => h.state === 'ready')) {
        return Promise.reject(unavailable(model));
      }
      return batcher.submit(inputs, outputs);
    },
    ready: () => handles.every((h) => h.state === 'ready'),
    modelReady: (model) => (holders.get(model) ?? []).some((h) => h.state === 'ready'),
    workers: () => handles.map((h) => h.status()),
    async crashWorker(service, worker, crashOpts = {}) {
      const h = bySlot.get(`${service}/${worker}`);
      if (!h)
        throw new RuntimeError('BENTO_ERR_RUNTIME_WORKER_DIED', `no worker ${service}/${worker}`, {
          kind: 'NOT_FOUND',
        });
      await h.crash(crashOpts.failBootstraps ?? 0);
    },
    async close() {
      await Promise.allSettled(handles.map((h) => h.close()));
    },
  };
}
