/**
 * `npm run bench`: serving overhead against raw onnxruntime, and batching, measured side by
 * side in one run on this machine. Prints a markdown table and writes bench/results.md.
 *
 * Rows per model: raw session.run in a loop (the limit); a naive node:http server with the
 * session on its main thread; bento-run without batching; the design alternatives it replaced
 * (bench/serve-variant.ts); with adaptive batching; with a fixed batching wait; with adaptive
 * batching and binary tensors. Load comes from a separate process (bench/load.ts) with fixed
 * concurrency. Every row uses one worker (two where it says so) and one intra-op thread.
 *
 * The machine is shared and noisy: every server of a model is started at once, and the rows
 * are measured BENCH_REPEAT times, interleaved (each repetition in another order), and
 * reported as medians. Beside throughput and latency, each row has the server's CPU time per
 * request (every thread of its process, from /proc), which noise moves much less, and for
 * bento-run the time a request waited for its worker (the statistics' queue time).
 *
 * Then gRPC vs REST binary vs REST JSON on the tiny and CNN models (bench/grpc.ts).
 *
 * Filters: BENCH_MODELS=tiny,cnn,mlp  BENCH_CONCURRENCY=1,8,64  BENCH_DURATION_MS=2000
 *          BENCH_REPEAT=3  BENCH_GRPC=0 (no gRPC comparison)
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import { ensureBenchModels } from '../scripts/make-models.js';
import { roundTripFloorUs } from './floor.js';
import { protocolComparison, protocolModels } from './grpc.js';
import { type LoadResult, percentile } from './load.js';
import {
  bentoArgs,
  cpuUs,
  fmt,
  listeningUrl,
  median,
  ROOT,
  startProcess,
  stopProcess,
} from './proc.js';

const modelsDir = join(ROOT, 'bench', 'models');
const here = dirname(fileURLToPath(import.meta.url));
const env = process.env;
const DURATION_MS = Number(env.BENCH_DURATION_MS ?? 2000);
const WARMUP_MS = 500;
const CONCURRENCY = (env.BENCH_CONCURRENCY ?? '1,8,64').split(',').map(Number);
const REPEAT = Math.max(1, Number(env.BENCH_REPEAT ?? 3));

interface BenchModel {
  readonly key: string;
  readonly title: string;
  readonly file: string;
  readonly input: string;
  readonly shape: readonly number[];
}

type ServerKind =
  | 'naive'
  | 'bento'
  | 'depth2'
  | 'batched'
  | 'fixed'
  | 'binary'
  | 'depth1'
  | 'hold0'
  | 'workers2'
  | 'workers2inline'
  | 'workers2parse'
  | 'parse';

const SERVER_TITLES: Record<ServerKind | 'raw', string> = {
  raw: 'raw session.run (1 thread, in-process loop)',
  naive: 'naive node:http, session on main thread, JSON',
  bento: 'bento-run, no batching',
  batched: 'bento-run, adaptive batching',
  fixed: 'bento-run, fixed-wait batching',
  binary: 'bento-run, adaptive batching + binary tensors',
  depth1:
    'bento-run, no batching, one request posted to the worker at a time, whole body by JSON.parse (before #14)',
  depth2: 'bento-run, no batching, up to two posted, one per message (first #14 step)',
  hold0: 'bento-run, no batching, every answer in a message of its own (before answers were held)',
  workers2: 'bento-run, 2 workers, JSON decoded on decoder threads',
  workers2inline: 'bento-run, 2 workers, JSON decoded on the HTTP thread (before #14)',
  workers2parse:
    'bento-run, 2 workers, decoder threads, whole body by JSON.parse (before number lists were lifted)',
  parse: 'bento-run, no batching, whole body by JSON.parse (before number lists were lifted)',
};

/** Variants served by bench/serve-variant.ts: a design alternative switched off. */
const VARIANTS: Partial<Record<ServerKind, Record<string, number | boolean>>> = {
  depth1: { depth: 1, lift: false },
  depth2: { depth: 2 },
  hold0: { holdAnswersMs: 0 },
  workers2inline: { decoderThreads: 0, lift: false },
  workers2parse: { lift: false },
  parse: { lift: false },
};

/** A load run, with what the server spent on it. */
interface Measured extends LoadResult {
  /** CPU time of the server process, every thread, per request (µs). */
  readonly cpuUs: number;
  /** bento-run only: mean time a request waited for its worker, statistics' queue (µs). */
  readonly queueUs?: number;
}

interface Row {
  readonly model: string;
  readonly server: ServerKind | 'raw';
  readonly concurrency: number;
  readonly result: Measured;
  /** The lowest and highest req/s of the repetitions. */
  readonly range?: readonly [number, number];
}

function medianOf(runs: readonly Measured[]): Measured {
  const of = (f: (r: Measured) => number | undefined) =>
    median(runs.map((r) => f(r) ?? Number.NaN));
  const queue = of((r) => r.queueUs);
  return {
    requests: of((r) => r.requests),
    errors: runs.reduce((n, r) => n + r.errors, 0),
    rps: of((r) => r.rps),
    p50Ms: of((r) => r.p50Ms),
    p99Ms: of((r) => r.p99Ms),
    cpuUs: of((r) => r.cpuUs),
    ...(Number.isFinite(queue) ? { queueUs: queue } : {}),
    ...(runs.find((r) => r.firstError)
      ? { firstError: runs.find((r) => r.firstError)!.firstError! }
      : {}),
  };
}

/** The model's cumulative queue time and count, from bento-run's statistics. */
async function queueStats(url: string, model: string): Promise<{ ns: number; count: number }> {
  const res = await fetch(`${url}/v2/models/${model}/stats`);
  const body = (await res.json()) as {
    model_stats: { inference_stats: { queue: { ns: number; count: number } } }[];
  };
  return body.model_stats[0]!.inference_stats.queue;
}

function inputData(shape: readonly number[]): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  return Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 0.5);
}

async function raw(m: BenchModel): Promise<Measured> {
  const session = await ort.InferenceSession.create(m.file, { intraOpNumThreads: 1 });
  const feeds = { [m.input]: new ort.Tensor('float32', inputData(m.shape), [...m.shape]) };
  const latencies: number[] = [];
  const start = performance.now();
  while (performance.now() - start < WARMUP_MS) await session.run(feeds);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  while (performance.now() - t0 < DURATION_MS) {
    const s = performance.now();
    await session.run(feeds);
    latencies.push(performance.now() - s);
  }
  const cpu = process.cpuUsage(cpu0);
  await session.release();
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length,
    errors: 0,
    rps: latencies.length / (DURATION_MS / 1000),
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    cpuUs: (cpu.user + cpu.system) / latencies.length,
  };
}

function specFor(m: BenchModel, kind: ServerKind): string {
  const batching = !['batched', 'fixed', 'binary'].includes(kind)
    ? ''
    : `\n    batching: { max_batch_size: 64, max_latency_ms: 5, policy: ${kind === 'fixed' ? 'fixed' : 'adaptive'} }`;
  const path = join(modelsDir, `spec-${m.key}-${kind}.yaml`);
  writeFileSync(
    path,
    `version: 1
models:
  ${m.key}:
    path: ${m.file}${batching}
    session: { intra_op_threads: 1 }
services:
  bench:
    models: [${m.key}]
    workers: ${kind.startsWith('workers2') ? 2 : 1}
    traffic: { max_concurrency: 1024 }
`,
  );
  return path;
}

/** Starts a server process and resolves its base URL once it listens. */
async function startServer(m: BenchModel, kind: ServerKind): Promise<Started> {
  const variant = VARIANTS[kind];
  const args =
    kind === 'naive'
      ? [join(here, 'naive-server.js'), m.file, '1']
      : variant
        ? [join(here, 'serve-variant.js'), specFor(m, kind), JSON.stringify(variant)]
        : bentoArgs(specFor(m, kind));
  // The naive server prints its port; bento-run and serve-variant log {"url":...}.
  const urlOf = (log: string) =>
    kind === 'naive'
      ? /^(\d+)\n/.exec(log)?.[1]?.replace(/^/, 'http://127.0.0.1:')
      : listeningUrl(log);
  const { child, found } = await startProcess(args, urlOf);
  return { child, url: found };
}

function requestBody(
  m: BenchModel,
  binary: boolean,
): { file: string; headers: Record<string, string> } {
  const data = inputData(m.shape);
  const file = join(modelsDir, `body-${m.key}-${binary ? 'bin' : 'json'}`);
  if (!binary) {
    const body = {
      inputs: [{ name: m.input, shape: m.shape, datatype: 'FP32', data: Array.from(data) }],
    };
    writeFileSync(file, JSON.stringify(body));
    return { file, headers: { 'content-type': 'application/json' } };
  }
  const header = Buffer.from(
    JSON.stringify({
      inputs: [
        {
          name: m.input,
          shape: m.shape,
          datatype: 'FP32',
          parameters: { binary_data_size: data.byteLength },
        },
      ],
      parameters: { binary_data_output: true },
    }),
  );
  writeFileSync(file, Buffer.concat([header, Buffer.from(data.buffer)]));
  return {
    file,
    headers: {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': String(header.length),
    },
  };
}

function load(
  url: string,
  path: string,
  body: { file: string; headers: Record<string, string> },
  concurrency: number,
): Promise<LoadResult> {
  const args = JSON.stringify({
    url,
    path,
    bodyFile: body.file,
    headers: body.headers,
    concurrency,
    warmupMs: WARMUP_MS,
    durationMs: DURATION_MS,
  });
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(here, 'load.js'), args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.once('exit', (code) =>
      code === 0
        ? resolve(JSON.parse(out) as LoadResult)
        : reject(new Error(`load exited ${code}`)),
    );
  });
}

function table(rows: readonly Row[], models: readonly BenchModel[]): string {
  const out: string[] = [];
  for (const m of models) {
    const mine = rows.filter((r) => r.model === m.key);
    const rawRow = mine.find((r) => r.server === 'raw')!;
    out.push(`### ${m.title}\n`);
    out.push(
      `raw session.run: ${fmt(rawRow.result.rps, 0)} runs/s, p50 ${fmt(rawRow.result.p50Ms, 3)} ms, p99 ${fmt(rawRow.result.p99Ms, 3)} ms, ${fmt(rawRow.result.cpuUs, 0)} µs CPU a run\n`,
    );
    out.push(
      '| server | concurrency | req/s (range) | p50 ms | p99 ms | served/raw | vs naive | batched/unbatched | p50 added vs naive (ms) | server CPU µs/req | wait for worker µs | errors |',
    );
    out.push(
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    );
    for (const r of mine.filter((x) => x.server !== 'raw')) {
      const unbatched = mine.find((x) => x.server === 'bento' && x.concurrency === r.concurrency);
      const naive = mine.find((x) => x.server === 'naive' && x.concurrency === r.concurrency);
      const batchedRatio =
        r.server === 'batched' || r.server === 'fixed' || r.server === 'binary'
          ? fmt(r.result.rps / (unbatched?.result.rps ?? Number.NaN))
          : '';
      const range = r.range ? ` (${fmt(r.range[0], 0)}-${fmt(r.range[1], 0)})` : '';
      const added =
        r.server === 'naive' ? '' : fmt(r.result.p50Ms - (naive?.result.p50Ms ?? Number.NaN), 3);
      out.push(
        `| ${SERVER_TITLES[r.server]} | ${r.concurrency} | ${fmt(r.result.rps, 0)}${range} | ${fmt(r.result.p50Ms, 3)} | ${fmt(r.result.p99Ms, 3)} | ${fmt(r.result.rps / rawRow.result.rps)} | ${fmt(r.result.rps / (naive?.result.rps ?? Number.NaN))} | ${batchedRatio} | ${added} | ${fmt(r.result.cpuUs, 0)} | ${r.result.queueUs === undefined ? '' : fmt(r.result.queueUs, 0)} | ${r.result.errors} |`,
      );
    }
    out.push('');
  }
  return out.join('\n');
}

/** One goal of issue #14: the figure before (the variant kept switchable) and now. */
interface Goal {
  readonly what: string;
  readonly target: string;
  readonly before: number | undefined;
  readonly after: number | undefined;
  readonly met: (x: number) => boolean;
  readonly digits: number;
}

/**
 * The request-path goals (issue #14), from this run's medians: "before" is the design it
 * replaced, served in the same run (one request posted at a time; JSON on the HTTP thread).
 */
function goals(rows: readonly Row[], floors: ReadonlyMap<string, number>): string {
  const at = (model: string, server: Row['server'], c: number) =>
    rows.find((r) => r.model === model && r.server === server && r.concurrency === c)?.result;
  const ratio = (a: Measured | undefined, b: Measured | undefined) =>
    a && b ? a.rps / b.rps : undefined;
  const added = (a: Measured | undefined, n: Measured | undefined) =>
    a && n ? a.p50Ms - n.p50Ms : undefined;
  const raw = (model: string) => at(model, 'raw', 1);
  const list: Goal[] = [
    {
      what: 'tiny, unbatched, 64 in flight: throughput vs the naive server',
      target: '>= 0.8x',
      before: ratio(at('tiny', 'depth1', 64), at('tiny', 'naive', 64)),
      after: ratio(at('tiny', 'bento', 64), at('tiny', 'naive', 64)),
      met: (x) => x >= 0.8,
      digits: 2,
    },
    {
      what: 'tiny, 1 in flight: p50 added over the naive server (ms)',
      target: '<= 0.15',
      before: added(at('tiny', 'depth1', 1), at('tiny', 'naive', 1)),
      after: added(at('tiny', 'bento', 1), at('tiny', 'naive', 1)),
      met: (x) => x <= 0.15,
      digits: 3,
    },
    ...['tiny', 'mlp', 'cnn'].map((m) => ({
      what: `${m}, 1 in flight: wait for the worker (µs)${floors.has(m) ? `; a bare round trip to a thread here: ${fmt(floors.get(m)!, 0)}` : ''}`,
      target: '<= 100',
      before: at(m, 'depth1', 1)?.queueUs,
      after: at(m, 'bento', 1)?.queueUs,
      met: (x: number) => x <= 100,
      digits: 0,
    })),
    ...[8, 64].map((c) => ({
      what: `cnn, unbatched JSON, ${c} in flight: served/raw`,
      target: c === 8 ? '>= 0.93' : '>= 0.90',
      before: ratio(at('cnn', 'depth1', c), raw('cnn')),
      after: ratio(at('cnn', 'bento', c), raw('cnn')),
      met: (x: number) => x >= (c === 8 ? 0.93 : 0.9),
      digits: 2,
    })),
    ...[8, 64].map((c) => ({
      what: `cnn, batched + binary, ${c} in flight: served/raw`,
      target: '>= 0.95',
      before: undefined,
      after: ratio(at('cnn', 'binary', c), raw('cnn')),
      met: (x: number) => x >= 0.95,
      digits: 2,
    })),
    {
      what: '[1,3,224,224] as JSON, 2 workers, 8 in flight: vs the naive server',
      target: '>= 1.5x',
      before: ratio(at('image', 'workers2inline', 8), at('image', 'naive', 8)),
      after: ratio(at('image', 'workers2', 8), at('image', 'naive', 8)),
      met: (x) => x >= 1.5,
      digits: 2,
    },
    {
      what: 'mlp, 64 in flight: batched/unbatched',
      target: '>= 6x',
      before: undefined,
      after: ratio(at('mlp', 'batched', 64), at('mlp', 'bento', 64)),
      met: (x) => x >= 6,
      digits: 2,
    },
  ];
  const shown = list.filter((g) => g.after !== undefined && Number.isFinite(g.after));
  if (shown.length === 0) return '';
  const out = [
    "## The request path's goals (#14), this run\n",
    '"before": the design replaced, served in this same run (one request posted to the worker at a time, every answer in its own message; JSON decoded whole by JSON.parse on the HTTP thread).\n',
    '| goal | target | before | now | met |',
    '| --- | ---: | ---: | ---: | :---: |',
  ];
  for (const g of shown) {
    out.push(
      `| ${g.what} | ${g.target} | ${g.before === undefined ? '' : fmt(g.before, g.digits)} | ${fmt(g.after!, g.digits)} | ${g.met(g.after!) ? 'yes' : 'no'} |`,
    );
  }
  return `${out.join('\n')}\n\n`;
}

interface Started {
  readonly url: string;
  readonly child: ChildProcess;
}

/** One load run against a started server, with its CPU time and (bento-run) queue time. */
async function measure(
  m: BenchModel,
  kind: ServerKind,
  server: Started,
  concurrency: number,
): Promise<Measured> {
  const body = requestBody(m, kind === 'binary');
  const path = kind === 'naive' ? '/' : `/v2/models/${m.key}/infer`;
  const pid = server.child.pid!;
  const q0 = kind === 'naive' ? null : await queueStats(server.url, m.key);
  const cpu0 = cpuUs(pid, 'all');
  const result = await load(server.url, path, body, concurrency);
  const cpu = cpuUs(pid, 'all') - cpu0;
  const q1 = kind === 'naive' ? null : await queueStats(server.url, m.key);
  // The load process counts what it timed after its warm-up; the server served those too.
  const served = (result.requests * (DURATION_MS + WARMUP_MS)) / DURATION_MS;
  const queueUs =
    q0 && q1 && q1.count > q0.count ? (q1.ns - q0.ns) / (q1.count - q0.count) / 1000 : undefined;
  return {
    ...result,
    cpuUs: served > 0 ? cpu / served : Number.NaN,
    ...(queueUs === undefined ? {} : { queueUs }),
  };
}

/** Every row of a model, REPEAT times, each repetition in another order; medians. */
async function benchModel(m: BenchModel, kinds: readonly ServerKind[]): Promise<Row[]> {
  const servers = new Map<ServerKind, Started>();
  const runs = new Map<string, Measured[]>();
  const raws: Measured[] = [];
  const add = (key: string, r: Measured) => runs.set(key, [...(runs.get(key) ?? []), r]);
  try {
    for (const kind of kinds) servers.set(kind, await startServer(m, kind));
    for (let rep = 0; rep < REPEAT; rep++) {
      const r = await raw(m);
      raws.push(r);
      console.error(
        `${m.key} raw (${rep + 1}/${REPEAT}): ${fmt(r.rps, 0)} runs/s p50 ${fmt(r.p50Ms, 3)} ms`,
      );
      for (const c of CONCURRENCY) {
        const order = kinds.map((_, i) => kinds[(i + rep) % kinds.length]!);
        for (const kind of rep % 2 ? order.reverse() : order) {
          const result = await measure(m, kind, servers.get(kind)!, c);
          add(`${kind}:${c}`, result);
          console.error(
            `${m.key} ${kind} c=${c} (${rep + 1}/${REPEAT}): ${fmt(result.rps, 0)} req/s p50 ${fmt(result.p50Ms, 3)} ms p99 ${fmt(result.p99Ms, 3)} ms, ${fmt(result.cpuUs, 0)} µs CPU/req${result.queueUs === undefined ? '' : `, waited ${fmt(result.queueUs, 0)} µs`}, errors ${result.errors}${result.firstError ? ` (${result.firstError})` : ''}`,
          );
        }
      }
    }
  } finally {
    await Promise.all([...servers.values()].map((s) => stopProcess(s.child)));
  }
  const rows: Row[] = [{ model: m.key, server: 'raw', concurrency: 1, result: medianOf(raws) }];
  for (const kind of kinds) {
    for (const c of CONCURRENCY) {
      const mine = runs.get(`${kind}:${c}`) ?? [];
      const rps = mine.map((r) => r.rps);
      rows.push({
        model: m.key,
        server: kind,
        concurrency: c,
        result: medianOf(mine),
        range: [Math.min(...rps), Math.max(...rps)],
      });
    }
  }
  return rows;
}

async function main(): Promise<void> {
  mkdirSync(modelsDir, { recursive: true });
  const files = await ensureBenchModels(modelsDir);
  const all: BenchModel[] = [
    {
      key: 'tiny',
      title: 'tiny (x + c, [1,4]): added latency',
      file: files.tiny,
      input: 'x',
      shape: [1, 4],
    },
    {
      key: 'cnn',
      title: 'cnn (conv net, [1,3,32,32]): inference dominates',
      file: files.cnn,
      input: 'input',
      shape: [1, 3, 32, 32],
    },
    {
      key: 'image',
      title: 'image ([1,3,224,224] FP32 as JSON -> GlobalAveragePool): JSON decoding dominates',
      file: files.image,
      input: 'image',
      shape: [1, 3, 224, 224],
    },
    {
      key: 'mlp',
      title: 'mlp-4096 (16 -> 4096 -> 4096 -> 16, 67 MB): memory-bound, batching',
      file: files.mlp4096,
      input: 'input',
      shape: [1, 16],
    },
  ];
  const wanted = (env.BENCH_MODELS ?? 'tiny,cnn,image,mlp').split(',');
  const models = all.filter((m) => wanted.includes(m.key));
  const kindsFor = (m: BenchModel): ServerKind[] =>
    m.key === 'image'
      ? ['naive', 'bento', 'parse', 'workers2', 'workers2parse', 'workers2inline']
      : [
          'naive',
          'bento',
          'hold0',
          ...(m.key === 'cnn' ? (['parse'] as const) : []),
          'depth2',
          'depth1',
          'batched',
          'fixed',
          'binary',
        ];
  const rows: Row[] = [];
  for (const m of models) rows.push(...(await benchModel(m, kindsFor(m))));
  const cpu = cpus();
  const ortVersion = ort.env.versions.node;
  let commit = '';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT }).toString().trim();
  } catch {}
  const header = `# bento-run benchmark\n\n${new Date().toISOString()}, commit ${commit || 'unknown'}: ${cpu[0]?.model ?? 'unknown CPU'}, ${cpu.length} cores, Node ${process.version}, onnxruntime-node ${ortVersion}. Load: a separate process on loopback (undici), ${DURATION_MS} ms per row after ${WARMUP_MS} ms warm-up, ${REPEAT} interleaved repetitions, medians (req/s range in brackets); every server has one worker (two where it says so) with one intra-op thread; the load generator shares the machine. "server CPU" is every thread of the server's process per request; "wait for worker" is the statistics' queue time per request (from the request's hand-over to the runtime until its worker's answer, less session.run). Command: \`npm run bench\`.\n\n`;
  // gRPC vs REST binary vs REST JSON (bench/grpc.ts), on the tiny and CNN models; BENCH_GRPC=0 skips.
  const protocols =
    env.BENCH_GRPC === '0'
      ? ''
      : await protocolComparison(
          protocolModels(files).filter((m) => wanted.includes(m.key)),
          {
            durationMs: DURATION_MS,
            warmupMs: WARMUP_MS,
            concurrency: CONCURRENCY,
            dir: modelsDir,
          },
        );
  // The floor under the wait for a worker: a bare thread round trip, as long a sleep as a run.
  const floors = new Map<string, number>();
  for (const m of models.filter((x) => x.key !== 'image')) {
    const rawRun = rows.find((r) => r.model === m.key && r.server === 'raw')!.result;
    floors.set(m.key, await roundTripFloorUs(rawRun.p50Ms, 1500));
  }
  const text = header + goals(rows, floors) + table(rows, models) + protocols;
  console.log(text);
  writeFileSync(join(ROOT, 'bench', 'results.md'), text);
}

await main();
