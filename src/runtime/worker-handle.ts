/**
 * One planned worker: a single-thread Piscina pool whose thread holds that worker's sessions,
 * and the main thread's side of the thread's request port. Piscina owns the thread's life
 * (start, replacement after a crash, with the same workerData and so the same slot and
 * device); requests go over the port. Whenever the thread holds at most one, every request
 * waiting here (up to `depth` in all) goes over in one message: the thread never waits for the
 * main thread between two requests, and under load one message and one wake-up carry many. A
 * request withdrawn while it waits here leaves the queue; one withdrawn after it was posted is
 * flagged in memory shared with the thread, which answers it without running it.
 */
import type { EventEmitter } from 'node:events';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { RuntimeError } from '../errors.js';
import type { PlannedWorker } from '../plan/types.js';
import { addTensorBuffers } from '../tensor/datatypes.js';
import type { WireTensor } from '../tensor/types.js';
import type { Cancellation } from './cancellation.js';
import { cudaProviderFix } from './cuda.js';
import type {
  InferReplyMessage,
  InferRequestMessage,
  InferResult,
  InitTask,
  LoadFailure,
  ProgressMessage,
  SessionReport,
  WorkerData,
  WorkerReport,
} from './messages.js';
import { inferenceError } from './ort-errors.js';
import type { RuntimeEvents, WorkerState, WorkerStatus } from './types.js';

export interface Job {
  readonly model: string;
  readonly inputs: Readonly<Record<string, WireTensor>>;
  readonly outputs: readonly string[];
  /** Aborted when the request's deadline passes: a job still waiting here is dropped. */
  readonly signal?: Cancellation | undefined;
}

interface Queued {
  readonly job: Job;
  /** Set once posted to the thread. */
  id: number;
  readonly resolve: (r: InferResult) => void;
  readonly reject: (e: unknown) => void;
  readonly onAbort: () => void;
}

export interface HandleOptions {
  readonly workerFile: string;
  readonly extra: Readonly<Record<string, unknown>>;
  /** The most requests posted to the thread at once (at most WITHDRAWN_SLOTS). */
  readonly depth: number;
  /** How long the thread may hold an answer to send it with the next ones (ms). */
  readonly holdMs: number;
}

/** Withdrawal flags shared with a thread: request id modulo this; more than can be posted. */
export const WITHDRAWN_SLOTS = 1024;

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

/** A request withdrawn without a reason of its own (its signal always has one). */
function withdrawnError(): RuntimeError {
  return new RuntimeError('BENTO_ERR_RUNTIME_WORKER_DIED', 'the request was withdrawn', {
    kind: 'UNAVAILABLE',
  });
}

type Pool = Piscina<InitTask, WorkerReport | LoadFailure>;

export class WorkerHandle {
  state: WorkerState = 'loading';
  completed = 0;
  withdrawn = 0;
  restarts = 0;
  report: WorkerReport | null = null;
  private pool: Pool;
  /** The current thread's request port and withdrawal flags; null while it loads or is gone. */
  private link: { readonly port: MessagePort; readonly withdrawn: Int32Array } | null = null;
  private readonly waiting: Queued[] = [];
  private readonly posted = new Map<number, Queued>();
  private nextId = 0;
  /** Models whose 'session-loaded' was emitted for the current thread. */
  private readonly announced = new Set<string>();

  constructor(
    readonly planned: PlannedWorker,
    private readonly opts: HandleOptions,
    private readonly events: EventEmitter<RuntimeEvents>,
  ) {
    this.pool = this.createPool(false);
  }

  /** Requests this worker holds: running, posted, or waiting here. */
  get load(): number {
    return this.posted.size + this.waiting.length;
  }

  private createPool(replacement: boolean): Pool {
    const workerData: WorkerData = { worker: this.planned, extra: this.opts.extra };
    const pool: Pool = new Piscina({
      filename: this.opts.workerFile,
      minThreads: 1,
      maxThreads: 1,
      idleTimeout: Number.POSITIVE_INFINITY,
      // An idle thread must keep its event loop turning to hear its port, not sleep in
      // Atomics.wait until Piscina's next task.
      atomics: 'disabled',
      workerData,
    });
    pool.on('message', (m: ProgressMessage) => {
      if (m.kind === 'session-loading')
        this.events.emit('session-loading', this.planned, m.session);
      if (m.kind === 'session-loaded') this.announce(m.report);
    });
    // A thread that dies with no Piscina task is reported as a pool 'error'; its replacement
    // comes through workerDestroy/workerCreate either way.
    pool.on('error', () => undefined);
    pool.on('workerDestroy', () => {
      if (this.state === 'closed' || pool !== this.pool) return;
      this.threadDied();
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

  /** The thread is gone: what it held fails, what waits here fails too (its load is unknown). */
  private threadDied(): void {
    this.link?.port.close();
    this.link = null;
    this.state = 'loading';
    this.report = null;
    this.announced.clear();
    const where = `service \`${this.planned.service}\`, worker ${this.planned.worker}`;
    const died = new RuntimeError(
      'BENTO_ERR_RUNTIME_WORKER_DIED',
      `${where}: the worker thread died while it held this request; it is being replaced`,
    );
    for (const q of this.posted.values()) this.settle(q, died);
    this.posted.clear();
    for (const w of this.idleWaiters.splice(0)) w();
    const gone = new RuntimeError(
      'BENTO_ERR_RUNTIME_WORKER_DIED',
      `${where}: the worker thread died before this request started; retry`,
      { kind: 'UNAVAILABLE' },
    );
    for (const q of this.waiting.splice(0)) this.settle(q, gone);
    this.events.emit('worker-exit', this.planned);
  }

  /** Waits for the thread's sessions; throws the load failure with its cause. */
  async init(): Promise<WorkerReport> {
    const { port1, port2 } = new MessageChannel();
    const withdrawn = new Int32Array(new SharedArrayBuffer(4 * WITHDRAWN_SLOTS));
    let r: WorkerReport | LoadFailure;
    try {
      r = await this.pool.run(
        { kind: 'init', port: port2, withdrawn, holdMs: this.opts.holdMs },
        { transferList: [port2] },
      );
    } catch (e) {
      port1.close();
      throw e;
    }
    if (isFailure(r)) {
      port1.close();
      this.state = 'failed';
      throw loadError(this.planned, r);
    }
    // Progress messages travel apart from the task's answer and may come after it: announce
    // any still missing now, so every session's line precedes the worker's readiness.
    for (const s of r.sessions) this.announce(s);
    port1.on('message', (answers: readonly InferReplyMessage[]) => this.replies(answers));
    this.link = { port: port1, withdrawn };
    this.report = r;
    this.state = 'ready';
    this.pump();
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

  /** Queues a request for this worker; it starts in arrival order. */
  submit(job: Job): Promise<InferResult> {
    return new Promise<InferResult>((resolve, reject) => {
      const q: Queued = {
        job,
        id: 0,
        resolve,
        reject,
        onAbort: () => {
          const at = this.waiting.indexOf(q);
          if (at >= 0) {
            this.waiting.splice(at, 1);
            this.settle(q, job.signal?.reason);
            this.events.emit('withdrawn', this.planned, 'queue');
          } else if (this.posted.get(q.id) === q && this.link) {
            // Posted: the thread skips it if it has not started; either way its answer settles it.
            Atomics.store(this.link.withdrawn, q.id % WITHDRAWN_SLOTS, 1);
          }
        },
      };
      if (job.signal?.aborted) return reject(job.signal.reason);
      job.signal?.addEventListener('abort', q.onAbort, { once: true });
      this.waiting.push(q);
      this.pump();
    });
  }

  private settle(q: Queued, error: unknown, result?: InferResult): void {
    q.job.signal?.removeEventListener('abort', q.onAbort);
    if (result) q.resolve(result);
    else q.reject(error);
  }

  /**
   * Once the thread holds at most one request (none, with depth 1), posts what waits, up to
   * `depth` in all, as one message.
   */
  private pump(): void {
    const link = this.link;
    if (!link || this.state !== 'ready' || this.waiting.length === 0) return;
    const depth = this.opts.depth;
    if (this.posted.size > Math.min(1, depth - 1)) return;
    const batch: InferRequestMessage[] = [];
    const transfer: ArrayBuffer[] = [];
    while (this.posted.size < depth && this.waiting.length > 0) {
      const q = this.waiting.shift()!;
      q.id = ++this.nextId;
      Atomics.store(link.withdrawn, q.id % WITHDRAWN_SLOTS, 0);
      this.posted.set(q.id, q);
      const { model, inputs, outputs } = q.job;
      batch.push({ id: q.id, model, inputs, outputs });
      addTensorBuffers(inputs, transfer);
    }
    link.port.postMessage(batch, transfer);
  }

  private replies(answers: readonly InferReplyMessage[]): void {
    for (const m of answers) this.reply(m);
    if (this.posted.size === 0) for (const w of this.idleWaiters.splice(0)) w();
    this.pump();
    this.events.emit('worker-free', this.planned);
  }

  private reply(m: InferReplyMessage): void {
    const q = this.posted.get(m.id);
    if (!q) return;
    this.posted.delete(m.id);
    if (m.withdrawn) {
      this.withdrawn++;
      this.settle(q, q.job.signal?.reason ?? withdrawnError());
      this.events.emit('withdrawn', this.planned, 'thread');
    } else {
      this.completed++;
      if (m.error === undefined)
        this.settle(q, undefined, { outputs: m.outputs, inferMs: m.inferMs });
      else this.settle(q, inferenceError(q.job.model, m.error));
    }
  }

  status(): WorkerStatus {
    return {
      service: this.planned.service,
      worker: this.planned.worker,
      state: this.state,
      threadId: this.pool.threads[0]?.threadId ?? null,
      restarts: this.restarts,
      inFlight: this.load,
      completed: this.completed,
      withdrawn: this.withdrawn,
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

  /**
   * Fails what waits, lets what the thread holds finish (a thread terminated inside a native
   * onnxruntime call can abort the process), then ends the thread.
   */
  async close(): Promise<void> {
    this.state = 'closed';
    const closing = new RuntimeError('BENTO_ERR_RUNTIME_WORKER_DIED', 'the server is stopping', {
      kind: 'UNAVAILABLE',
    });
    for (const q of this.waiting.splice(0)) this.settle(q, closing);
    await this.whenIdle();
    this.link?.port.close();
    this.link = null;
    await this.pool.close();
  }

  private idleWaiters: (() => void)[] = [];

  /** Resolves once no request is posted to the thread (or the thread is gone). */
  whenIdle(): Promise<void> {
    if (this.posted.size === 0 || !this.link) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}
