/**
 * The load generator, run as its own process so that it does not share an event loop with the
 * server it measures: `concurrency` closed loops over undici for `durationMs` after a warm-up,
 * then one JSON line on stdout with the throughput and latency percentiles.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Pool } from 'undici';

export interface LoadArgs {
  readonly url: string;
  readonly path: string;
  readonly bodyFile: string;
  readonly headers: Record<string, string>;
  readonly concurrency: number;
  readonly warmupMs: number;
  readonly durationMs: number;
}

export interface LoadResult {
  readonly requests: number;
  readonly errors: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly firstError?: string;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as LoadArgs;
  const body = readFileSync(args.bodyFile);
  const pool = new Pool(args.url, { connections: args.concurrency, pipelining: 1 });
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const start = performance.now();
  const measureFrom = start + args.warmupMs;
  const end = measureFrom + args.durationMs;
  async function loop(): Promise<void> {
    while (performance.now() < end) {
      const t0 = performance.now();
      try {
        const res = await pool.request({
          method: 'POST',
          path: args.path,
          body,
          headers: args.headers,
        });
        const text = await res.body.arrayBuffer();
        if (res.statusCode !== 200) {
          errors++;
          firstError ??= `HTTP ${res.statusCode}: ${Buffer.from(text).toString('utf8').slice(0, 200)}`;
          continue;
        }
      } catch (e) {
        errors++;
        firstError ??= String(e);
        continue;
      }
      const t1 = performance.now();
      if (t0 >= measureFrom && t1 <= end) latencies.push(t1 - t0);
    }
  }
  await Promise.all(Array.from({ length: args.concurrency }, loop));
  await pool.close();
  latencies.sort((a, b) => a - b);
  const result: LoadResult = {
    requests: latencies.length,
    errors,
    rps: latencies.length / (args.durationMs / 1000),
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    ...(firstError ? { firstError } : {}),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

// Run only as the load process, not when the orchestrator imports `percentile`.
if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href)
  await main();
