/**
 * Triton's statistics extension, per model, counted by the inference core for every frontend:
 * cumulative counts and nanoseconds for success, fail, queue, compute_input, compute_infer and
 * compute_output, and the same per batch size.
 */

export interface StatDuration {
  count: number;
  ns: number;
}

export interface BatchStats {
  readonly batch_size: number;
  readonly compute_input: StatDuration;
  readonly compute_infer: StatDuration;
  readonly compute_output: StatDuration;
}

export interface ModelStats {
  readonly name: string;
  readonly version: string;
  last_inference: number;
  inference_count: number;
  execution_count: number;
  readonly inference_stats: {
    readonly success: StatDuration;
    readonly fail: StatDuration;
    readonly queue: StatDuration;
    readonly compute_input: StatDuration;
    readonly compute_infer: StatDuration;
    readonly compute_output: StatDuration;
  };
  readonly batch_stats: BatchStats[];
}

/** One successful request's times, in milliseconds. */
export interface Timing {
  readonly rows: number;
  /** Rows of the session.run it ran in (its own, without batching). */
  readonly batchRows: number;
  readonly totalMs: number;
  readonly queueMs: number;
  /** Decoding the request into tensors. */
  readonly inputMs: number;
  readonly inferMs: number;
  /** Encoding the outputs (measured by the frontend; 0 when it does not say). */
  readonly outputMs: number;
}

const zero = (): StatDuration => ({ count: 0, ns: 0 });

function add(d: StatDuration, ms: number): void {
  d.count++;
  d.ns += Math.round(ms * 1e6);
}

export function createStats(models: Iterable<{ name: string; version: string }>) {
  const byModel = new Map<string, ModelStats>();
  for (const m of models) {
    byModel.set(m.name, {
      name: m.name,
      version: m.version,
      last_inference: 0,
      inference_count: 0,
      execution_count: 0,
      inference_stats: {
        success: zero(),
        fail: zero(),
        queue: zero(),
        compute_input: zero(),
        compute_infer: zero(),
        compute_output: zero(),
      },
      batch_stats: [],
    });
  }
  return {
    success(model: string, t: Timing): void {
      const s = byModel.get(model);
      if (!s) return;
      s.last_inference = Date.now();
      s.inference_count += t.rows;
      // A batch of n requests is one execution: count each request's share of it.
      s.execution_count += t.batchRows > 0 ? t.rows / t.batchRows : 1;
      const i = s.inference_stats;
      add(i.success, t.totalMs);
      add(i.queue, t.queueMs);
      add(i.compute_input, t.inputMs);
      add(i.compute_infer, t.inferMs);
      add(i.compute_output, t.outputMs);
      let b = s.batch_stats.find((x) => x.batch_size === t.batchRows);
      if (!b) {
        b = {
          batch_size: t.batchRows,
          compute_input: zero(),
          compute_infer: zero(),
          compute_output: zero(),
        };
        s.batch_stats.push(b);
        s.batch_stats.sort((x, y) => x.batch_size - y.batch_size);
      }
      add(b.compute_input, t.inputMs);
      add(b.compute_infer, t.inferMs);
      add(b.compute_output, t.outputMs);
    },
    fail(model: string, totalMs: number): void {
      const s = byModel.get(model);
      if (s) add(s.inference_stats.fail, totalMs);
    },
    /** Triton's `model_stats` entries, execution_count rounded to whole runs. */
    snapshot(model?: string): ModelStats[] {
      const all = model === undefined ? [...byModel.values()] : [byModel.get(model)!];
      return all.map((s) => ({ ...s, execution_count: Math.round(s.execution_count) }));
    },
  };
}

export type Stats = ReturnType<typeof createStats>;
