/**
 * Adaptive batching for one model. Requests whose non-batch dimensions and datatypes agree are
 * merged along dimension 0 into one session.run, then the outputs are split back per request.
 *
 * When to dispatch, like BentoML's adaptive batcher: the cost of a batch is learnt as
 * time ≈ a·rows + b (least squares over recent batches). Waiting for the next request pays
 * while the latency it adds to the rows already queued (expected gap × rows) is smaller than
 * the fixed cost b of the run that request would otherwise need alone. Never later than
 * max_latency_ms after the first request of the batch; at once when the batch is full.
 */

import type { BatchPolicy } from '../spec/types.js';
import { elementCount } from '../tensor/datatypes.js';
import type { TensorData, WireTensor } from '../tensor/types.js';
import type { Cancellation } from './cancellation.js';
import type { InferResult } from './messages.js';

export type { BatchPolicy };

export interface DecideInput {
  readonly rows: number;
  /** How long the oldest queued request has waited. */
  readonly oldestWaitMs: number;
  readonly maxBatchSize: number;
  readonly maxLatencyMs: number;
  /** Expected time until the next request arrives (Infinity when unknown). */
  readonly arrivalGapMs: number;
  /** The learnt fixed cost b of one run. */
  readonly fixedCostMs: number;
  readonly policy: BatchPolicy;
}

export type Decision =
  | { readonly dispatch: true }
  | { readonly dispatch: false; readonly waitMs: number };

/** The dispatch rule, pure: testable without threads, timers or models. */
export function decide(s: DecideInput): Decision {
  const left = s.maxLatencyMs - s.oldestWaitMs;
  if (s.rows >= s.maxBatchSize || left <= 0) return { dispatch: true };
  if (s.policy === 'fixed') return { dispatch: false, waitMs: left };
  if (s.arrivalGapMs > left) return { dispatch: true };
  if (s.arrivalGapMs * s.rows >= s.fixedCostMs) return { dispatch: true };
  return { dispatch: false, waitMs: Math.min(left, Math.max(s.arrivalGapMs, 0.05)) };
}

/** time ≈ a·rows + b, refitted over the last `window` batches. */
export class CostModel {
  private readonly samples: [rows: number, ms: number][] = [];
  a = 0;
  b = 0;

  constructor(private readonly window = 64) {}

  observe(rows: number, ms: number): void {
    this.samples.push([rows, ms]);
    if (this.samples.length > this.window) this.samples.shift();
    const n = this.samples.length;
    let sx = 0;
    let sy = 0;
    let sxx = 0;
    let sxy = 0;
    for (const [x, y] of this.samples) {
      sx += x;
      sy += y;
      sxx += x * x;
      sxy += x * y;
    }
    const denom = n * sxx - sx * sx;
    if (denom === 0) {
      // One batch size seen so far: all of the time counts as fixed cost until we learn more.
      this.a = 0;
      this.b = sy / n;
      return;
    }
    this.a = Math.max(0, (n * sxy - sx * sy) / denom);
    this.b = Math.max(0, (sy - this.a * sx) / n);
  }
}

interface Pending<R extends InferResult> {
  readonly inputs: Readonly<Record<string, WireTensor>>;
  readonly outputs: readonly string[];
  readonly rows: number;
  readonly enqueuedAt: number;
  readonly resolve: (r: BatchedResult<R>) => void;
  readonly reject: (e: unknown) => void;
  readonly signal: Cancellation | undefined;
  readonly onAbort: () => void;
}

/** The executor's result for the whole batch, with this request's rows of every output. */
export type BatchedResult<R extends InferResult = InferResult> = R & {
  /** Time this request waited in the batcher before its batch was dispatched. */
  readonly queueMs: number;
  readonly batchRows: number;
};

export interface BatcherOptions<R extends InferResult = InferResult> {
  readonly maxBatchSize: number;
  readonly maxLatencyMs: number;
  readonly policy?: BatchPolicy;
  /** Batches that could start now: idle workers (or, for a full batch, workers with room queued). */
  readonly capacity: (full: boolean) => number;
  readonly execute: (
    inputs: Readonly<Record<string, WireTensor>>,
    outputs: readonly string[],
  ) => Promise<R>;
  readonly onBatch?: (rows: number, requests: number) => void;
  readonly now?: () => number;
}

export interface Batcher<R extends InferResult = InferResult> {
  /** Queues a request; when `signal` aborts before its batch leaves, it leaves the queue. */
  submit(
    inputs: Readonly<Record<string, WireTensor>>,
    outputs: readonly string[],
    signal?: Cancellation,
  ): Promise<BatchedResult<R>>;
  /** A worker became free: dispatch what is waiting. */
  poke(): void;
}

/**
 * Requests merge only when everything but dimension 0 agrees. A request whose inputs differ in
 * dimension 0 (a model that broadcasts) has no rows to stack: null, it runs alone.
 */
function batchKey(
  inputs: Readonly<Record<string, WireTensor>>,
  outputs: readonly string[],
): string | null {
  const rows = new Set(Object.values(inputs).map((t) => t.dims[0]));
  if (rows.size !== 1 || rows.has(undefined)) return null;
  const parts = Object.keys(inputs)
    .sort()
    .map((k) => `${k}:${inputs[k]!.type}:${inputs[k]!.dims.slice(1).join('x')}`);
  return `${parts.join('|')}>${outputs.join(',')}`;
}

function rowsOf(inputs: Readonly<Record<string, WireTensor>>): number {
  const first = Object.values(inputs)[0];
  return first?.dims[0] ?? 1;
}

function concat(parts: readonly WireTensor[]): WireTensor {
  const first = parts[0]!;
  if (parts.length === 1) return first;
  const rows = parts.reduce((n, p) => n + (p.dims[0] ?? 0), 0);
  const dims = [rows, ...first.dims.slice(1)];
  if (Array.isArray(first.data)) {
    return { type: first.type, dims, data: parts.flatMap((p) => p.data as string[]) };
  }
  const Ctor = (first.data as Exclude<TensorData, string[]>).constructor as new (
    n: number,
  ) => Exclude<TensorData, string[]>;
  const out = new Ctor(elementCount(dims));
  let offset = 0;
  for (const p of parts) {
    (out as Float32Array).set(p.data as Float32Array, offset);
    offset += (p.data as Float32Array).length;
  }
  return { type: first.type, dims, data: out };
}

function slice(t: WireTensor, start: number, rows: number): WireTensor {
  const total = t.dims[0] ?? 0;
  const per = total === 0 ? 0 : t.data.length / total;
  const dims = [rows, ...t.dims.slice(1)];
  const data = Array.isArray(t.data)
    ? t.data.slice(start * per, (start + rows) * per)
    : (t.data as Float32Array).subarray(start * per, (start + rows) * per);
  return { type: t.type, dims, data: data as TensorData };
}

/** Hands each request of a batch its own rows of every output. */
function resolveBatch<R extends InferResult>(
  batch: readonly Pending<R>[],
  result: R,
  rows: number,
  dispatchedAt: number,
): void {
  if (batch.length === 1) {
    // Nothing to split: the outputs are the request's own, whatever their dimension 0.
    const p = batch[0]!;
    p.resolve({ ...result, queueMs: dispatchedAt - p.enqueuedAt, batchRows: rows });
    return;
  }
  for (const [name, t] of Object.entries(result.outputs)) {
    if (t.dims[0] !== rows) {
      throw new Error(
        `output \`${name}\` has ${t.dims[0]} rows for a batch of ${rows}: it cannot be split per request`,
      );
    }
  }
  let start = 0;
  for (const p of batch) {
    const outputs: Record<string, WireTensor> = {};
    for (const [name, t] of Object.entries(result.outputs)) outputs[name] = slice(t, start, p.rows);
    start += p.rows;
    p.resolve({ ...result, outputs, queueMs: dispatchedAt - p.enqueuedAt, batchRows: rows });
  }
}

/** The oldest requests of a group, up to max_batch_size rows (at least one request). */
function take<R extends InferResult>(group: Pending<R>[], maxBatchSize: number): Pending<R>[] {
  const batch: Pending<R>[] = [];
  let rows = 0;
  while (group.length > 0) {
    const next = group[0]!;
    if (batch.length > 0 && rows + next.rows > maxBatchSize) break;
    batch.push(group.shift()!);
    rows += next.rows;
  }
  return batch;
}

export function createBatcher<R extends InferResult = InferResult>(
  opts: BatcherOptions<R>,
): Batcher<R> {
  const now = opts.now ?? (() => performance.now());
  const policy = opts.policy ?? 'adaptive';
  const cost = new CostModel();
  const groups = new Map<string, Pending<R>[]>();
  let lastArrival = Number.NaN;
  let gapEwma = Number.POSITIVE_INFINITY;
  let timer: NodeJS.Timeout | undefined;
  let loners = 0;

  function expectedGap(): number {
    if (Number.isNaN(lastArrival)) return Number.POSITIVE_INFINITY;
    // The time since the last arrival is a lower bound on the current gap.
    return Math.max(gapEwma, now() - lastArrival);
  }

  async function run(batch: Pending<R>[]): Promise<void> {
    const dispatchedAt = now();
    const rows = batch.reduce((n, p) => n + p.rows, 0);
    for (const p of batch) p.signal?.removeEventListener('abort', p.onAbort);
    opts.onBatch?.(rows, batch.length);
    try {
      const names = Object.keys(batch[0]!.inputs);
      const inputs: Record<string, WireTensor> = {};
      for (const name of names) inputs[name] = concat(batch.map((p) => p.inputs[name]!));
      const result = await opts.execute(inputs, batch[0]!.outputs);
      cost.observe(rows, result.inferMs);
      resolveBatch(batch, result, rows, dispatchedAt);
    } catch (e) {
      for (const p of batch) p.reject(e);
    } finally {
      schedule();
    }
  }

  function schedule(): void {
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    let wakeIn = Number.POSITIVE_INFINITY;
    // Oldest groups first.
    const ordered = [...groups.entries()].sort(
      (x, y) => (x[1][0]?.enqueuedAt ?? 0) - (y[1][0]?.enqueuedAt ?? 0),
    );
    for (const [key, group] of ordered) {
      while (group.length > 0) {
        const rows = group.reduce((n, p) => n + p.rows, 0);
        const full = rows >= opts.maxBatchSize;
        if (opts.capacity(full) <= 0) break;
        const d = decide({
          rows,
          oldestWaitMs: now() - group[0]!.enqueuedAt,
          maxBatchSize: opts.maxBatchSize,
          maxLatencyMs: opts.maxLatencyMs,
          arrivalGapMs: expectedGap(),
          fixedCostMs: cost.b,
          policy,
        });
        if (!d.dispatch) {
          wakeIn = Math.min(wakeIn, d.waitMs);
          break;
        }
        void run(take(group, opts.maxBatchSize));
      }
      if (group.length === 0) groups.delete(key);
    }
    if (Number.isFinite(wakeIn)) timer = setTimeout(schedule, wakeIn);
  }

  function enqueue(key: string, p: Pending<R>): void {
    const group = groups.get(key) ?? [];
    group.push(p);
    groups.set(key, group);
    schedule();
  }

  function drop(key: string, p: Pending<R>): void {
    const group = groups.get(key);
    const at = group?.indexOf(p) ?? -1;
    if (at < 0) return; // already dispatched: it runs to its end
    group!.splice(at, 1);
    if (group!.length === 0) groups.delete(key);
    p.reject(p.signal?.reason);
  }

  return {
    poke: schedule,
    submit(inputs, outputs, signal) {
      const t = now();
      if (!Number.isNaN(lastArrival)) {
        const gap = t - lastArrival;
        gapEwma = Number.isFinite(gapEwma) ? 0.8 * gapEwma + 0.2 * gap : gap;
      }
      lastArrival = t;
      if (signal?.aborted) return Promise.reject(signal.reason);
      return new Promise<BatchedResult<R>>((resolve, reject) => {
        const key = batchKey(inputs, outputs) ?? `alone#${++loners}`;
        const rows = rowsOf(inputs);
        const p: Pending<R> = {
          inputs,
          outputs,
          rows,
          enqueuedAt: t,
          resolve,
          reject,
          signal,
          onAbort: () => drop(key, p),
        };
        signal?.addEventListener('abort', p.onAbort, { once: true });
        enqueue(key, p);
      });
    },
  };
}
