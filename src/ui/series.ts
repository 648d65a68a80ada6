/**
 * The page's charts: per model, points derived from the same counters and histograms that
 * `/metrics` shows, sampled when the feed is read (at most once per interval) and kept for a
 * window of minutes. A point covers the time since the previous sample: request and error rates,
 * p50/p99 latency interpolated within the histogram's buckets as Prometheus'
 * histogram_quantile does, and the mean and largest batch.
 */
import type { Metrics } from '../core/metrics.js';

/** A histogram's cumulative counts per upper bound (the last bound is +Inf). */
export interface Buckets {
  readonly bounds: readonly number[];
  readonly counts: readonly number[];
}

/** One model's counters at one moment: totals since the server started. */
export interface ModelCounters {
  readonly requests: number;
  readonly errors: number;
  readonly latency: Buckets;
  readonly batches: number;
  readonly batchRows: number;
  readonly batchSizes: Buckets;
}

export interface Point {
  /** End of the interval, ms since the epoch. */
  readonly t: number;
  /** Requests per second (every status). */
  readonly rate: number;
  /** Answers other than 200, per second. */
  readonly errors: number;
  /** Milliseconds; null when no request ended in the interval. */
  readonly p50: number | null;
  readonly p99: number | null;
  /** Mean rows per session.run of a batched model; null without batches in the interval. */
  readonly batch: number | null;
  readonly batchMax: number | null;
}

const EMPTY: Buckets = { bounds: [], counts: [] };

function delta(a: Buckets, b: Buckets): number[] {
  return b.counts.map((c, i) => c - (a.counts[i] ?? 0));
}

/**
 * The q-quantile of the observations whose cumulative counts per bound are `counts`: linear
 * within the bucket it falls in; the largest finite bound when it falls in +Inf's.
 */
export function quantile(
  q: number,
  bounds: readonly number[],
  counts: readonly number[],
): number | null {
  const total = counts[counts.length - 1] ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  for (let i = 0; i < counts.length; i++) {
    if (counts[i]! < rank) continue;
    const upper = bounds[i]!;
    const lower = i === 0 ? 0 : bounds[i - 1]!;
    if (!Number.isFinite(upper)) return lower;
    const below = i === 0 ? 0 : counts[i - 1]!;
    const inBucket = counts[i]! - below;
    return inBucket <= 0 ? upper : lower + (upper - lower) * ((rank - below) / inBucket);
  }
  return bounds[bounds.length - 2] ?? null;
}

/** The bucket's bound, or the largest finite one for +Inf's bucket. */
function finiteBound(bounds: readonly number[], i: number): number | null {
  const b = bounds[i];
  if (b === undefined) return null;
  return Number.isFinite(b) ? b : (bounds[i - 1] ?? null);
}

/** The point for the interval between two samples `ms` apart. */
export function pointBetween(t: number, ms: number, a: ModelCounters, b: ModelCounters): Point {
  const seconds = Math.max(ms, 1) / 1000;
  const latency = delta(a.latency, b.latency);
  const batches = b.batches - a.batches;
  const sizes = delta(a.batchSizes, b.batchSizes);
  let largest = -1;
  for (let i = 0; i < sizes.length; i++) if (sizes[i]! > (sizes[i - 1] ?? 0)) largest = i;
  const q = (x: number) => {
    const s = quantile(x, b.latency.bounds, latency);
    return s === null ? null : s * 1000;
  };
  return {
    t,
    rate: (b.requests - a.requests) / seconds,
    errors: (b.errors - a.errors) / seconds,
    p50: q(0.5),
    p99: q(0.99),
    batch: batches > 0 ? (b.batchRows - a.batchRows) / batches : null,
    batchMax: batches > 0 && largest >= 0 ? finiteBound(b.batchSizes.bounds, largest) : null,
  };
}

type Values = Awaited<ReturnType<Metrics['requestSeconds']['get']>>['values'];

/** Cumulative bucket counts, `_sum` and `_count` of one histogram, per model. */
function histograms(values: Values) {
  const out = new Map<string, { bounds: number[]; counts: number[]; sum: number; count: number }>();
  const of = (model: string) => {
    let h = out.get(model);
    if (!h) {
      h = { bounds: [], counts: [], sum: 0, count: 0 };
      out.set(model, h);
    }
    return h;
  };
  for (const v of values) {
    const labels = v.labels as Readonly<Record<string, string | number | undefined>>;
    const model = String(labels.model ?? '');
    const h = of(model);
    if (v.metricName?.endsWith('_bucket')) {
      const le = labels.le;
      h.bounds.push(le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le));
      h.counts.push(v.value);
    } else if (v.metricName?.endsWith('_sum')) h.sum = v.value;
    else if (v.metricName?.endsWith('_count')) h.count = v.value;
  }
  return out;
}

/** The counters of the models named (labels of unknown models, from 404s, are left out). */
export async function readCounters(
  metrics: Metrics,
  models: readonly string[],
): Promise<Map<string, ModelCounters>> {
  const [requests, latency, batches] = await Promise.all([
    metrics.requests.get(),
    metrics.requestSeconds.get(),
    metrics.batchSize.get(),
  ]);
  const lat = histograms(latency.values);
  const bat = histograms(batches.values);
  const out = new Map<string, ModelCounters>();
  for (const name of models) {
    let total = 0;
    let failed = 0;
    for (const v of requests.values) {
      if (v.labels.model !== name) continue;
      total += v.value;
      if (String(v.labels.status) !== '200') failed += v.value;
    }
    const b = bat.get(name);
    out.set(name, {
      requests: total,
      errors: failed,
      latency: lat.get(name) ?? EMPTY,
      batches: b?.count ?? 0,
      batchRows: b?.sum ?? 0,
      batchSizes: b ?? EMPTY,
    });
  }
  return out;
}

export interface SeriesOptions {
  /** Least time between two samples (default 1000 ms). */
  readonly intervalMs?: number;
  /** How long points are kept (default 10 minutes). */
  readonly windowMs?: number;
}

export interface Series {
  readonly intervalMs: number;
  readonly windowMs: number;
  /** Adds a point per model when the last sample is at least an interval old. */
  sample(now: number, read: () => Promise<Map<string, ModelCounters>>): Promise<void>;
  /** Each model's points after `since` (ms since the epoch), oldest first. */
  points(since?: number): Record<string, Point[]>;
}

export function createSeries(opts: SeriesOptions = {}): Series {
  const intervalMs = opts.intervalMs ?? 1000;
  const windowMs = opts.windowMs ?? 10 * 60_000;
  const kept = new Map<string, Point[]>();
  let last: { t: number; counters: Map<string, ModelCounters> } | null = null;
  let pending: Promise<void> | null = null;

  async function take(now: number, read: () => Promise<Map<string, ModelCounters>>) {
    const counters = await read();
    const prev = last;
    last = { t: now, counters };
    if (!prev) return;
    for (const [model, c] of counters) {
      const before = prev.counters.get(model);
      if (!before) continue;
      const points = kept.get(model) ?? [];
      points.push(pointBetween(now, now - prev.t, before, c));
      while (points.length > 0 && points[0]!.t < now - windowMs) points.shift();
      kept.set(model, points);
    }
  }

  return {
    intervalMs,
    windowMs,
    sample(now, read) {
      if (pending) return pending;
      if (last && now - last.t < intervalMs) return Promise.resolve();
      pending = take(now, read).finally(() => {
        pending = null;
      });
      return pending;
    },
    points(since = 0) {
      const out: Record<string, Point[]> = {};
      for (const [model, points] of kept) out[model] = points.filter((p) => p.t > since);
      return out;
    },
  };
}
