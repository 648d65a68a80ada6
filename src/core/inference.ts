/**
 * The inference core, shared by every frontend (REST, gRPC): model lookup, admission
 * (traffic.max_concurrency), the deadline (traffic.timeout_s, from the first byte: reading the
 * body counts), the runtime call, metrics and statistics. A frontend decodes its wire format
 * into an InferRequest between `begin` and `run`, and encodes the result; errors keep their
 * kind until the frontend maps it.
 */
import { InferenceError } from '../errors.js';
import type { PlannedService } from '../plan/types.js';
import { type Cancellation, Deadline } from '../runtime/cancellation.js';
import type { ModelInfo, Runtime, RuntimeInferResult } from '../runtime/types.js';
import type { PipelineStepSpec } from '../spec/types.js';
import type { WireTensor } from '../tensor/types.js';
import { createMetrics, type Metrics } from './metrics.js';
import { runPipeline, type ServedPipeline, servedPipelines } from './pipeline.js';
import { checkRows, type InferRequest, tensorOutputs } from './request.js';
import { createStats, type Stats } from './stats.js';

export interface Call {
  readonly model: ModelInfo;
  /** Aborts when the deadline passes; body reads and queues listen to it. */
  readonly signal: Cancellation;
  /** Runs the decoded request; `decodeMs` is the frontend's time to decode it. */
  run(request: InferRequest, decodeMs?: number): Promise<RuntimeInferResult>;
  /** The frontend answered with `status` (HTTP's, or its equivalent for gRPC). */
  end(status: number, encodeMs?: number): void;
  /**
   * The client went away: aborts `signal` with `reason`, so that work still queued leaves the
   * queues and frees its slot (work already running runs to its end).
   */
  cancel(reason: unknown): void;
}

export interface RepositoryEntry {
  readonly name: string;
  readonly version: string;
  readonly state: 'READY' | 'UNAVAILABLE';
  readonly reason: string;
}

export interface InferenceCore {
  readonly runtime: Runtime;
  readonly metrics: Metrics;
  readonly stats: Stats;
  /** The pipelines served as models (`platform: 'ensemble'`), by name. */
  readonly pipelines: ReadonlyMap<string, ServedPipeline>;
  /** The model or pipeline, or NOT_FOUND naming the models there are. */
  model(name: string): ModelInfo;
  /** Admits one request for `model`: NOT_FOUND, NOT_READY (draining) or OVERLOADED otherwise. */
  begin(model: string): Call;
  ready(): boolean;
  modelReady(name: string): boolean;
  /** From now on every request is refused as not ready; resolves when none is in flight. */
  drain(): Promise<void>;
  /** Triton's repository index: every model and pipeline, its version and state. */
  repositoryIndex(): RepositoryEntry[];
}

function timeoutError(model: string, seconds: number): InferenceError {
  return new InferenceError(
    'BENTO_ERR_INFER_TIMEOUT',
    `inference on model \`${model}\` did not finish within ${seconds}s (traffic.timeout_s)`,
  );
}

/** Rejects with the signal's reason when it aborts first. */
function raceAbort<T>(p: Promise<T>, signal: Cancellation): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Concurrency slots per service, the in-flight count, and the drain. */
function createAdmission(services: ReadonlyMap<string, PlannedService>, metrics: Metrics) {
  const busy = new Map<string, number>();
  let inFlight = 0;
  let drained: (() => void) | undefined;
  const admission = {
    draining: false,
    /** A slot of `service`, or OVERLOADED. */
    take(name: string): void {
      const service = services.get(name)!;
      const n = busy.get(name) ?? 0;
      if (n >= service.maxConcurrency) {
        throw new InferenceError(
          'BENTO_ERR_INFER_OVERLOADED',
          `service \`${name}\` is at its limit of ${service.maxConcurrency} requests in flight (traffic.max_concurrency); retry later`,
        );
      }
      busy.set(name, n + 1);
      metrics.inFlight.inc({ service: name });
      admission.enter();
    },
    release(name: string): void {
      busy.set(name, (busy.get(name) ?? 1) - 1);
      metrics.inFlight.dec({ service: name });
      admission.leave();
    },
    enter(): void {
      inFlight++;
    },
    leave(): void {
      inFlight--;
      if (inFlight === 0) drained?.();
    },
    drain(): Promise<void> {
      admission.draining = true;
      return new Promise<void>((resolve) => {
        drained = resolve;
        if (inFlight === 0) resolve();
      });
    },
  };
  return admission;
}

type Admission = ReturnType<typeof createAdmission>;

interface CallSpec<R extends { readonly inferMs: number }> {
  readonly info: ModelInfo;
  readonly timeoutS: number;
  readonly started: number;
  readonly metrics: Metrics;
  readonly stats: Stats;
  /** Runs the decoded request under the deadline's signal. */
  execute(request: InferRequest, signal: Cancellation): Promise<R>;
  result(r: R): RuntimeInferResult;
  /** Called once the frontend answered and the work (if any) has ended. */
  done(): void;
}

/**
 * One admitted request: its deadline, its run, and its accounting when the frontend answers.
 * Work a worker already runs keeps its slot until it ends (`done` waits for it): a worker's
 * backlog never exceeds max_concurrency, however many requests time out.
 */
function createCall<R extends { readonly inferMs: number }>(spec: CallSpec<R>): Call {
  const { info, metrics, stats } = spec;
  const deadline = new Deadline();
  const timer = setTimeout(
    () => deadline.abort(timeoutError(info.name, spec.timeoutS)),
    spec.timeoutS * 1000,
  );
  let work: Promise<unknown> | null = null;
  let result: RuntimeInferResult | null = null;
  let decodeMs = 0;
  let rows = 1;
  let ended = false;
  return {
    model: info,
    signal: deadline,
    run(request, decode = 0) {
      decodeMs = decode;
      rows = Object.values(request.inputs)[0]?.dims[0] ?? 1;
      // A check that throws at once (more rows than max_batch_size) rejects like the rest.
      const p = new Promise<R>((resolve) => resolve(spec.execute(request, deadline))).then((r) =>
        spec.result(r),
      );
      work = p.then(
        (r) => {
          result = r;
        },
        () => undefined,
      );
      return raceAbort(p, deadline);
    },
    end(status, encodeMs = 0) {
      if (ended) return;
      ended = true;
      clearTimeout(timer);
      const totalMs = performance.now() - spec.started;
      metrics.requests.inc({ model: info.name, status: String(status) });
      metrics.requestSeconds.observe({ model: info.name }, totalMs / 1000);
      const r = result as RuntimeInferResult | null;
      if (status === 200 && r) {
        if (r.worker >= 0) observe(metrics, info.name, r);
        stats.success(info.name, {
          rows,
          batchRows: r.batchRows ?? rows,
          totalMs,
          queueMs: r.queueMs ?? 0,
          inputMs: decodeMs,
          inferMs: r.inferMs,
          outputMs: encodeMs,
        });
      } else stats.fail(info.name, totalMs);
      if (work) void work.then(spec.done);
      else spec.done();
    },
    cancel(reason) {
      deadline.abort(reason);
    },
  };
}

/**
 * One step of an admitted pipeline request, as a request of its model: it takes a slot of
 * the model's service (OVERLOADED when none is free), runs on the runtime under the
 * pipeline's deadline, and counts in the model's metrics and statistics. Not refused while
 * draining: the pipeline request was accepted.
 */
async function runStep(
  deps: {
    readonly runtime: Runtime;
    readonly admission: Admission;
    readonly metrics: Metrics;
    readonly stats: Stats;
  },
  pipeline: string,
  step: PipelineStepSpec,
  inputs: Record<string, WireTensor>,
  outputs: string[],
  signal: Cancellation,
): Promise<RuntimeInferResult> {
  const { runtime, admission, metrics, stats } = deps;
  admission.take(step.service);
  const started = performance.now();
  const rows = Object.values(inputs)[0]?.dims[0] ?? 1;
  const p = runtime.infer(step.model, inputs, outputs, signal);
  // The slot is held until the worker is done, as for a model's request that timed out.
  const free = () => admission.release(step.service);
  void p.then(free, free);
  try {
    const r = await raceAbort(p, signal);
    const ms = performance.now() - started;
    observe(metrics, step.model, r);
    metrics.pipelineStepSeconds.observe({ pipeline, step: step.name }, ms / 1000);
    stats.success(step.model, {
      rows,
      batchRows: r.batchRows ?? rows,
      totalMs: ms,
      queueMs: r.queueMs ?? 0,
      inputMs: 0,
      inferMs: r.inferMs,
      outputMs: 0,
    });
    return r;
  } catch (e) {
    stats.fail(step.model, performance.now() - started);
    throw e;
  }
}

export function createInferenceCore(runtime: Runtime): InferenceCore {
  const metrics = createMetrics(runtime);
  const pipelines = servedPipelines(runtime.plan, runtime.models);
  const stats = createStats([
    ...runtime.models.values(),
    ...[...pipelines.values()].map((p) => p.info),
  ]);
  const services = new Map(runtime.plan.services.map((s) => [s.name, s]));
  const admission = createAdmission(services, metrics);

  function model(name: string): ModelInfo {
    const m = runtime.models.get(name) ?? pipelines.get(name)?.info;
    if (m) return m;
    throw new InferenceError(
      'BENTO_ERR_INFER_MODEL_NOT_FOUND',
      `unknown model \`${name.slice(0, 100)}\` (models: ${[...runtime.models.keys(), ...pipelines.keys()].join(', ')})`,
    );
  }

  /** Every step's model has a ready worker. */
  const pipelineReady = (p: ServedPipeline) => p.models.every((m) => runtime.modelReady(m));

  function notReady(what: string, model: string): InferenceError {
    return new InferenceError(
      'BENTO_ERR_INFER_NOT_READY',
      admission.draining
        ? 'the server is shutting down'
        : `${what}no worker holding model \`${model}\` is ready (loading or reloading)`,
    );
  }

  /**
   * A pipeline request: refused while draining or while a step's model has no ready worker;
   * no concurrency limit of its own (each step takes its service's slot); the deadline is the
   * largest traffic.timeout_s of its steps' services.
   */
  function beginPipeline(p: ServedPipeline, started: number): Call {
    const name = p.info.name;
    if (admission.draining || !pipelineReady(p)) {
      throw notReady(`pipeline \`${name}\`: `, p.models.find((m) => !runtime.modelReady(m)) ?? '');
    }
    admission.enter();
    return createCall({
      info: p.info,
      timeoutS: Math.max(...p.services.map((s) => services.get(s)!.timeoutS)),
      started,
      metrics,
      stats,
      execute: (request, signal) =>
        runPipeline(p, request, (step, inputs, outputs) =>
          runStep({ runtime, admission, metrics, stats }, name, step, inputs, outputs, signal),
        ),
      result: (r) => ({
        outputs: r.outputs,
        inferMs: r.inferMs,
        service: '',
        worker: -1,
        device: 'cpu',
      }),
      done: () => admission.leave(),
    });
  }

  function begin(name: string): Call {
    const started = performance.now();
    const pipeline = pipelines.get(name);
    if (pipeline) return beginPipeline(pipeline, started);
    const m = model(name);
    if (admission.draining || !runtime.modelReady(m.name)) throw notReady('', m.name);
    admission.take(m.service);
    return createCall({
      info: m,
      timeoutS: services.get(m.service)!.timeoutS,
      started,
      metrics,
      stats,
      execute(request, signal) {
        checkRows(m, request.inputs);
        // Without a list, every tensor output: a non-tensor one (a ZipMap) would fail the run.
        const outputs =
          request.outputs.length > 0 || tensorOutputs(m).length === m.outputs.length
            ? request.outputs
            : tensorOutputs(m);
        return runtime.infer(name, request.inputs, outputs, signal);
      },
      result: (r) => r,
      done: () => admission.release(m.service),
    });
  }

  return {
    runtime,
    metrics,
    stats,
    pipelines,
    model,
    begin,
    ready: () => runtime.ready() && !admission.draining,
    modelReady: (name) => {
      const p = pipelines.get(name);
      return (p ? pipelineReady(p) : runtime.modelReady(name)) && !admission.draining;
    },
    drain: () => admission.drain(),
    repositoryIndex() {
      const all = [...runtime.models.values(), ...[...pipelines.values()].map((p) => p.info)];
      return all.map((m) => ({
        name: m.name,
        version: m.version,
        state: this.modelReady(m.name) ? 'READY' : 'UNAVAILABLE',
        reason: '',
      }));
    },
  };
}

function observe(metrics: Metrics, model: string, r: RuntimeInferResult): void {
  metrics.inferenceSeconds.observe({ model, device: r.device }, r.inferMs / 1000);
  metrics.workerRequests.inc({ service: r.service, worker: String(r.worker), device: r.device });
  metrics.queueSeconds.observe({ model }, (r.queueMs ?? 0) / 1000);
}
