/**
 * `npm run bench`: serving overhead against raw onnxruntime, and batching, measured side by
 * side in one run on this machine. Prints a markdown table and writes bench/results.md.
 *
 * Rows per model: raw session.run in a loop (the limit); a naive node:http server with the
 * session on its main thread; bento-run without batching; with adaptive batching; with a fixed
 * batching wait; with adaptive batching and binary tensors. Load comes from a separate process
 * (bench/load.ts) with fixed concurrency. Every row uses one worker and one intra-op thread.
 *
 * Then gRPC vs REST binary vs REST JSON on the tiny and CNN models (bench/grpc.ts).
 *
 * Filters: BENCH_MODELS=tiny,cnn,mlp  BENCH_CONCURRENCY=1,8,64  BENCH_DURATION_MS=2000
 *          BENCH_GRPC=0 (no gRPC comparison)
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import { ensureBenchModels } from '../scripts/make-models.js';
import { protocolComparison, protocolModels } from './grpc.js';
import { type LoadResult, percentile } from './load.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const modelsDir = join(root, 'bench', 'models');
const here = dirname(fileURLToPath(import.meta.url));
const env = process.env;
const DURATION_MS = Number(env.BENCH_DURATION_MS ?? 2000);
const WARMUP_MS = 500;
const CONCURRENCY = (env.BENCH_CONCURRENCY ?? '1,8,64').split(',').map(Number);

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
  | 'batched'
  | 'fixed'
  | 'binary'
  | 'depth1'
  | 'workers2'
  | 'workers2inline';

const SERVER_TITLES: Record<ServerKind | 'raw', string> = {
  raw: 'raw session.run (1 thread, in-process loop)',
  naive: 'naive node:http, session on main thread, JSON',
  bento: 'bento-run, no batching',
  batched: 'bento-run, adaptive batching',
  fixed: 'bento-run, fixed-wait batching',
  binary: 'bento-run, adaptive batching + binary tensors',
  depth1: 'bento-run, no batching, one request posted per worker (before #14)',
  workers2: 'bento-run, 2 workers, JSON decoded on decoder threads',
  workers2inline: 'bento-run, 2 workers, JSON decoded on the HTTP thread (before #14)',
};

/** Variants served by bench/serve-variant.ts: a design alternative switched off. */
const VARIANTS: Partial<Record<ServerKind, Record<string, number>>> = {
  depth1: { depth: 1 },
  workers2inline: { decoderThreads: 0 },
};

interface Row {
  readonly model: string;
  readonly server: ServerKind | 'raw';
  readonly concurrency: number;
  readonly result: LoadResult;
}

function inputData(shape: readonly number[]): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  return Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 0.5);
}

async function raw(m: BenchModel): Promise<LoadResult> {
  const session = await ort.InferenceSession.create(m.file, { intraOpNumThreads: 1 });
  const feeds = { [m.input]: new ort.Tensor('float32', inputData(m.shape), [...m.shape]) };
  const latencies: number[] = [];
  const start = performance.now();
  while (performance.now() - start < WARMUP_MS) await session.run(feeds);
  const t0 = performance.now();
  while (performance.now() - t0 < DURATION_MS) {
    const s = performance.now();
    await session.run(feeds);
    latencies.push(performance.now() - s);
  }
  await session.release();
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length,
    errors: 0,
    rps: latencies.length / (DURATION_MS / 1000),
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  };
}

function specFor(m: BenchModel, kind: ServerKind): string {
  const batching =
    kind === 'bento' || kind === 'depth1' || kind.startsWith('workers2')
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
function startServer(
  m: BenchModel,
  kind: ServerKind,
): Promise<{ url: string; child: ChildProcess }> {
  const variant = VARIANTS[kind];
  const args =
    kind === 'naive'
      ? [join(here, 'naive-server.js'), m.file, '1']
      : variant
        ? [join(here, 'serve-variant.js'), specFor(m, kind), JSON.stringify(variant)]
        : [
            join(root, 'bin', 'bento-run.js'),
            specFor(m, kind),
            '--port',
            '0',
            '--log-format',
            'json',
          ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let log = '';
    const onData = (chunk: Buffer) => {
      log += chunk.toString();
      // The naive server prints its port; bento-run logs {"event":"listening","url":...}.
      const url =
        kind === 'naive'
          ? /^(\d+)\n/.exec(log)?.[1]?.replace(/^/, 'http://127.0.0.1:')
          : /"url":"(http:[^"]+)"/.exec(log)?.[1];
      if (url) resolve({ url, child });
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`server exited ${code}: ${log}`)));
  });
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

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

const fmt = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : '-');

function table(rows: readonly Row[], models: readonly BenchModel[]): string {
  const out: string[] = [];
  for (const m of models) {
    const mine = rows.filter((r) => r.model === m.key);
    const rawRow = mine.find((r) => r.server === 'raw')!;
    out.push(`### ${m.title}\n`);
    out.push(
      `raw session.run: ${fmt(rawRow.result.rps, 0)} runs/s, p50 ${fmt(rawRow.result.p50Ms, 3)} ms, p99 ${fmt(rawRow.result.p99Ms, 3)} ms\n`,
    );
    out.push(
      '| server | concurrency | req/s | p50 ms | p99 ms | served/raw | vs naive | batched/unbatched | p50 added vs raw (ms) | errors |',
    );
    out.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const r of mine.filter((x) => x.server !== 'raw')) {
      const unbatched = mine.find((x) => x.server === 'bento' && x.concurrency === r.concurrency);
      const naive = mine.find((x) => x.server === 'naive' && x.concurrency === r.concurrency);
      const batchedRatio =
        r.server === 'batched' || r.server === 'fixed' || r.server === 'binary'
          ? fmt(r.result.rps / (unbatched?.result.rps ?? Number.NaN))
          : '';
      out.push(
        `| ${SERVER_TITLES[r.server]} | ${r.concurrency} | ${fmt(r.result.rps, 0)} | ${fmt(r.result.p50Ms, 3)} | ${fmt(r.result.p99Ms, 3)} | ${fmt(r.result.rps / rawRow.result.rps)} | ${fmt(r.result.rps / (naive?.result.rps ?? Number.NaN))} | ${batchedRatio} | ${fmt(r.result.p50Ms - rawRow.result.p50Ms, 3)} | ${r.result.errors} |`,
      );
    }
    out.push('');
  }
  return out.join('\n');
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
      ? ['naive', 'bento', 'workers2', 'workers2inline']
      : ['naive', 'bento', 'depth1', 'batched', 'fixed', 'binary'];
  const rows: Row[] = [];
  for (const m of models) {
    const r = await raw(m);
    rows.push({ model: m.key, server: 'raw', concurrency: 1, result: r });
    console.error(`${m.key} raw: ${fmt(r.rps, 0)} runs/s p50 ${fmt(r.p50Ms, 3)} ms`);
    for (const kind of kindsFor(m)) {
      const { url, child } = await startServer(m, kind);
      const body = requestBody(m, kind === 'binary');
      const path = kind === 'naive' ? '/' : `/v2/models/${m.key}/infer`;
      try {
        for (const c of CONCURRENCY) {
          const result = await load(url, path, body, c);
          rows.push({ model: m.key, server: kind, concurrency: c, result });
          console.error(
            `${m.key} ${kind} c=${c}: ${fmt(result.rps, 0)} req/s p50 ${fmt(result.p50Ms, 3)} ms p99 ${fmt(result.p99Ms, 3)} ms errors ${result.errors}${result.firstError ? ` (${result.firstError})` : ''}`,
          );
        }
      } finally {
        await stop(child);
      }
    }
  }
  const cpu = cpus();
  const ortVersion = ort.env.versions.node;
  let commit = '';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root }).toString().trim();
  } catch {}
  const header = `# bento-run benchmark\n\n${new Date().toISOString()}, commit ${commit || 'unknown'}: ${cpu[0]?.model ?? 'unknown CPU'}, ${cpu.length} cores, Node ${process.version}, onnxruntime-node ${ortVersion}. Load: a separate process on loopback (undici), ${DURATION_MS} ms per row after ${WARMUP_MS} ms warm-up; every server has one worker with one intra-op thread; the load generator shares the machine. Command: \`npm run bench\`.\n\n`;
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
  const text = header + table(rows, models) + protocols;
  console.log(text);
  writeFileSync(join(root, 'bench', 'results.md'), text);
}

await main();
