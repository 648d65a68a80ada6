/**
 * Prometheus metrics (prom-client), one registry per server so that tests can run several.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Runtime } from '../runtime/pool.js';

// Seconds: from well under a millisecond (tiny models on loopback) to a minute (timeouts).
const BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
  30, 60,
];

export interface Metrics {
  readonly registry: Registry;
  readonly requests: Counter<'model' | 'status'>;
  readonly requestSeconds: Histogram<'model'>;
  readonly queueSeconds: Histogram<'model'>;
  readonly inferenceSeconds: Histogram<'model' | 'device'>;
  readonly inFlight: Gauge<'service'>;
  readonly workerRequests: Counter<'service' | 'worker' | 'device'>;
  readonly workerRestarts: Counter<'service' | 'worker' | 'device'>;
  /** Requests that left before they ran (deadline passed, client gone), by where they were. */
  readonly withdrawn: Counter<'service' | 'worker' | 'device' | 'stage'>;
  readonly batchSize: Histogram<'model'>;
  /** One pipeline step, from its submission to its result (queue and transfer included). */
  readonly pipelineStepSeconds: Histogram<'pipeline' | 'step'>;
}

export function createMetrics(runtime: Runtime): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'bento_' });
  /** A worker's labels: its service, its index, and the device its placement planned. */
  const workerLabels = (w: { readonly service: string; readonly worker: number }) => ({
    service: w.service,
    worker: String(w.worker),
    device:
      runtime.plan.placements.find((p) => p.service === w.service && p.worker === w.worker)
        ?.device ?? 'cpu',
  });
  const metrics: Metrics = {
    registry,
    requests: new Counter({
      name: 'bento_requests_total',
      help: 'Inference requests by model and HTTP status',
      labelNames: ['model', 'status'],
      registers: [registry],
    }),
    requestSeconds: new Histogram({
      name: 'bento_request_duration_seconds',
      help: 'Time from request to response, per model',
      labelNames: ['model'],
      buckets: BUCKETS,
      registers: [registry],
    }),
    queueSeconds: new Histogram({
      name: 'bento_queue_duration_seconds',
      help: 'Time a request spent outside session.run: waiting for and moving to its worker',
      labelNames: ['model'],
      buckets: BUCKETS,
      registers: [registry],
    }),
    inferenceSeconds: new Histogram({
      name: 'bento_inference_duration_seconds',
      help: 'Time inside session.run, per model and device',
      labelNames: ['model', 'device'],
      buckets: BUCKETS,
      registers: [registry],
    }),
    inFlight: new Gauge({
      name: 'bento_requests_in_flight',
      help: 'Inference requests being served, per service',
      labelNames: ['service'],
      registers: [registry],
    }),
    workerRequests: new Counter({
      name: 'bento_worker_requests_total',
      help: 'Inference runs per worker thread and device',
      labelNames: ['service', 'worker', 'device'],
      registers: [registry],
    }),
    batchSize: new Histogram({
      name: 'bento_batch_size',
      help: 'Rows per session.run of batched models',
      labelNames: ['model'],
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
      registers: [registry],
    }),
    pipelineStepSeconds: new Histogram({
      name: 'bento_pipeline_step_duration_seconds',
      help: 'Time of one pipeline step, from submission to result, per pipeline and step',
      labelNames: ['pipeline', 'step'],
      buckets: BUCKETS,
      registers: [registry],
    }),
    workerRestarts: new Counter({
      name: 'bento_worker_restarts_total',
      help: 'Worker threads replaced after they died',
      labelNames: ['service', 'worker', 'device'],
      registers: [registry],
    }),
    withdrawn: new Counter({
      name: 'bento_requests_withdrawn_total',
      help: 'Requests that left before they ran (deadline passed or client gone): stage "queue" from the worker\'s queue, "thread" skipped by its thread',
      labelNames: ['service', 'worker', 'device', 'stage'],
      registers: [registry],
    }),
  };
  new Gauge({
    name: 'bento_worker_ready',
    help: '1 when the worker thread has its sessions loaded',
    labelNames: ['service', 'worker', 'device'],
    registers: [registry],
    collect() {
      for (const w of runtime.workers()) {
        this.set(workerLabels(w), w.state === 'ready' ? 1 : 0);
      }
    },
  });
  for (const s of runtime.plan.services) metrics.inFlight.set({ service: s.name }, 0);
  runtime.events.on('batch', (model, rows) => metrics.batchSize.observe({ model }, rows));
  runtime.events.on('worker-exit', (w) => metrics.workerRestarts.inc(workerLabels(w)));
  runtime.events.on('withdrawn', (w, stage) =>
    metrics.withdrawn.inc({ ...workerLabels(w), stage }),
  );
  return metrics;
}
