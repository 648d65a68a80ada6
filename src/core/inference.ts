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
import { createMetrics, type Metrics } from './metrics.js';
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
  /** The model, or NOT_FOUND naming the models there are. */
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
  const stats = createStats(runtime.models.values());
  const services = new Map(runtime.plan.services.map((s) => [s.name, s]));
  const busy = new Map<string, number>();
  let inFlight = 0;
  let draining = false;
  let drained: (() => void) | undefined;

  function model(name: string): ModelInfo {
    const m = runtime.models.get(name);
    if (m) return m;
    throw new InferenceError(
      'BENTO_ERR_INFER_MODEL_NOT_FOUND',
      `unknown model \`${name.slice(0, 100)}\` (models: ${[...runtime.models.keys()].join(', ')})`,
    );
  }

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

  function begin(name: string): Call {
    const started = performance.now();
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
    model,
    begin,
    ready: () => runtime.ready() && !draining,
    modelReady: (name) => runtime.modelReady(name) && !draining,
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
