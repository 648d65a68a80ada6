/**
 * The inference core, shared by every frontend (REST, gRPC): model lookup, admission
 * (traffic.max_concurrency), the deadline (traffic.timeout_s, from the first byte: reading the
 * body counts), the runtime call, metrics and statistics. A frontend decodes its wire format
 * into an InferRequest between `begin` and `run`, and encodes the result; errors keep their
 * kind until the frontend maps it.
 */
import { InferenceError } from '../errors.js';
import type { PlannedService } from '../plan/types.js';
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
  readonly signal: AbortSignal;
  /** Runs the decoded request; `decodeMs` is the frontend's time to decode it. */
  run(request: InferRequest, decodeMs?: number): Promise<RuntimeInferResult>;
  /** The frontend answered with `status` (HTTP's, or its equivalent for gRPC). */
  end(status: number, encodeMs?: number): void;
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
}

function timeoutError(model: string, seconds: number): InferenceError {
  return new InferenceError(
    'BENTO_ERR_INFER_TIMEOUT',
    `inference on model \`${model}\` did not finish within ${seconds}s (traffic.timeout_s)`,
  );
}

/** Rejects with the signal's reason when it aborts first. */
function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

export function createInferenceCore(runtime: Runtime): InferenceCore {
  const metrics = createMetrics(runtime);
  const pipelines = servedPipelines(runtime.plan, runtime.models);
  const stats = createStats([
    ...runtime.models.values(),
    ...[...pipelines.values()].map((p) => p.info),
  ]);
  const services = new Map(runtime.plan.services.map((s) => [s.name, s]));
  const busy = new Map<string, number>();
  let inFlight = 0;
  let draining = false;
  let drained: (() => void) | undefined;

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

  function admit(m: ModelInfo, service: PlannedService): void {
    if (draining || !runtime.modelReady(m.name)) {
      throw new InferenceError(
        'BENTO_ERR_INFER_NOT_READY',
        draining
          ? 'the server is shutting down'
          : `no worker holding model \`${m.name}\` is ready (loading or reloading)`,
      );
    }
    const n = busy.get(service.name) ?? 0;
    if (n >= service.maxConcurrency) {
      throw new InferenceError(
        'BENTO_ERR_INFER_OVERLOADED',
        `service \`${service.name}\` is at its limit of ${service.maxConcurrency} requests in flight (traffic.max_concurrency); retry later`,
      );
    }
    busy.set(service.name, n + 1);
    inFlight++;
    metrics.inFlight.inc({ service: service.name });
  }

  function release(service: PlannedService): void {
    busy.set(service.name, (busy.get(service.name) ?? 1) - 1);
    inFlight--;
    metrics.inFlight.dec({ service: service.name });
    if (inFlight === 0) drained?.();
  }

  /**
   * One step of an admitted pipeline request, as a request of its model: it takes a slot of
   * the model's service (OVERLOADED when none is free), runs on the runtime under the
   * pipeline's deadline, and counts in the model's metrics and statistics. Not refused while
   * draining: the pipeline request was accepted.
   */
  async function runStep(
    pipeline: string,
    step: PipelineStepSpec,
    inputs: Record<string, WireTensor>,
    outputs: string[],
    signal: AbortSignal,
  ): Promise<RuntimeInferResult> {
    const service = services.get(step.service)!;
    const n = busy.get(service.name) ?? 0;
    if (n >= service.maxConcurrency) {
      throw new InferenceError(
        'BENTO_ERR_INFER_OVERLOADED',
        `service \`${service.name}\` is at its limit of ${service.maxConcurrency} requests in flight (traffic.max_concurrency); retry later`,
      );
    }
    busy.set(service.name, n + 1);
    inFlight++;
    metrics.inFlight.inc({ service: service.name });
    const started = performance.now();
    const rows = Object.values(inputs)[0]?.dims[0] ?? 1;
    const p = runtime.infer(step.model, inputs, outputs, signal);
    // The slot is held until the worker is done, as for a model's request that timed out.
    void p.then(
      () => release(service),
      () => release(service),
    );
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

  /**
   * A pipeline request: refused while draining or while a step's model has no ready worker;
   * no concurrency limit of its own (each step takes its service's slot); the deadline is the
   * largest traffic.timeout_s of its steps' services.
   */
  function beginPipeline(p: ServedPipeline, started: number): Call {
    const name = p.info.name;
    if (draining || !pipelineReady(p)) {
      const missing = p.models.find((m) => !runtime.modelReady(m));
      throw new InferenceError(
        'BENTO_ERR_INFER_NOT_READY',
        draining
          ? 'the server is shutting down'
          : `pipeline \`${name}\`: no worker holding model \`${missing}\` is ready (loading or reloading)`,
      );
    }
    inFlight++;
    const timeoutS = Math.max(...p.services.map((s) => services.get(s)!.timeoutS));
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(timeoutError(name, timeoutS)), timeoutS * 1000);
    let work: Promise<unknown> | null = null;
    let result: { inferMs: number } | null = null;
    let decodeMs = 0;
    let rows = 1;
    let ended = false;
    return {
      model: p.info,
      signal: deadline.signal,
      run(request, decode = 0) {
        decodeMs = decode;
        rows = Object.values(request.inputs)[0]?.dims[0] ?? 1;
        const signal = deadline.signal;
        const run = runPipeline(p, request, (step, inputs, outputs) =>
          runStep(name, step, inputs, outputs, signal),
        );
        work = run.then(
          (r) => {
            result = r;
          },
          () => undefined,
        );
        return run.then((r) => ({
          outputs: r.outputs,
          inferMs: r.inferMs,
          service: '',
          worker: -1,
          device: 'cpu' as const,
        }));
      },
      end(status, encodeMs = 0) {
        if (ended) return;
        ended = true;
        clearTimeout(timer);
        const totalMs = performance.now() - started;
        metrics.requests.inc({ model: name, status: String(status) });
        metrics.requestSeconds.observe({ model: name }, totalMs / 1000);
        const r = result as { inferMs: number } | null;
        if (status === 200 && r) {
          stats.success(name, {
            rows,
            batchRows: rows,
            totalMs,
            queueMs: 0,
            inputMs: decodeMs,
            inferMs: r.inferMs,
            outputMs: encodeMs,
          });
        } else stats.fail(name, totalMs);
        const done = () => {
          inFlight--;
          if (inFlight === 0) drained?.();
        };
        if (work) void work.then(done);
        else done();
      },
    };
  }

  function begin(name: string): Call {
    const started = performance.now();
    const pipeline = pipelines.get(name);
    if (pipeline) return beginPipeline(pipeline, started);
    const m = model(name);
    const service = services.get(m.service)!;
    admit(m, service);
    const deadline = new AbortController();
    const timer = setTimeout(
      () => deadline.abort(timeoutError(name, service.timeoutS)),
      service.timeoutS * 1000,
    );
    let work: Promise<unknown> | null = null;
    let result: RuntimeInferResult | null = null;
    let decodeMs = 0;
    let rows = 1;
    let ended = false;
    return {
      model: m,
      signal: deadline.signal,
      run(request, decode = 0) {
        decodeMs = decode;
        checkRows(m, request.inputs);
        rows = Object.values(request.inputs)[0]?.dims[0] ?? 1;
        // Without a list, every tensor output: a non-tensor one (a ZipMap) would fail the run.
        const outputs =
          request.outputs.length > 0 || tensorOutputs(m).length === m.outputs.length
            ? request.outputs
            : tensorOutputs(m);
        const p = runtime.infer(name, request.inputs, outputs, deadline.signal);
        work = p.then(
          (r) => {
            result = r;
          },
          () => undefined,
        );
        return raceAbort(p, deadline.signal);
      },
      end(status, encodeMs = 0) {
        if (ended) return;
        ended = true;
        clearTimeout(timer);
        const totalMs = performance.now() - started;
        metrics.requests.inc({ model: name, status: String(status) });
        metrics.requestSeconds.observe({ model: name }, totalMs / 1000);
        const r = result as RuntimeInferResult | null;
        if (status === 200 && r) {
          observe(metrics, name, r);
          stats.success(name, {
            rows,
            batchRows: r.batchRows ?? rows,
            totalMs,
            queueMs: r.queueMs ?? 0,
            inputMs: decodeMs,
            inferMs: r.inferMs,
            outputMs: encodeMs,
          });
        } else stats.fail(name, totalMs);
        // Work a worker already runs holds its slot until it ends: a worker's backlog never
        // exceeds max_concurrency, however many requests time out.
        if (work) void work.then(() => release(service));
        else release(service);
      },
    };
  }

  return {
    runtime,
    metrics,
    stats,
    pipelines,
    model,
    begin,
    ready: () => runtime.ready() && !draining,
    modelReady: (name) => {
      const p = pipelines.get(name);
      return (p ? pipelineReady(p) : runtime.modelReady(name)) && !draining;
    },
    drain() {
      draining = true;
      return new Promise<void>((resolve) => {
        drained = resolve;
        if (inFlight === 0) resolve();
      });
    },
  };
}

function observe(metrics: Metrics, model: string, r: RuntimeInferResult): void {
  metrics.inferenceSeconds.observe({ model, device: r.device }, r.inferMs / 1000);
  metrics.workerRequests.inc({ service: r.service, worker: String(r.worker), device: r.device });
  metrics.queueSeconds.observe({ model }, (r.queueMs ?? 0) / 1000);
}
