/**
 * gRPC vs REST binary vs REST JSON, side by side: one bento-run (adaptive batching, one worker,
 * one intra-op thread) serves both frontends; the same model and input go in as a
 * ModelInferRequest with raw contents (as tritonclient.grpc sends it), as REST with the binary
 * tensor extension (outputs binary too), and as REST JSON. Load comes from separate processes:
 * bench/grpc-load.ts over one HTTP/2 channel, bench/load.ts over `concurrency` HTTP/1.1
 * connections.
 *
 * Part of `npm run bench` (bench/run.ts); alone: `npm run bench:grpc` (same BENCH_* filters).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import protobuf from 'protobufjs';
import { ensureBenchModels } from '../scripts/make-models.js';
import type { LoadResult } from './load.js';
import { BENTO_BIN, cpuUs, fmt, ROOT, startProcess, stopProcess } from './proc.js';

const here = dirname(fileURLToPath(import.meta.url));

export interface ProtocolModel {
  readonly key: string;
  readonly title: string;
  readonly file: string;
  readonly input: string;
  readonly shape: readonly number[];
}

export interface ProtocolBenchOptions {
  readonly durationMs: number;
  readonly warmupMs: number;
  readonly concurrency: readonly number[];
  /** Where specs and request bodies are written. */
  readonly dir: string;
}

type Protocol = 'grpc' | 'binary' | 'json';
const PROTOCOLS: readonly Protocol[] = ['grpc', 'binary', 'json'];

function inputData(shape: readonly number[]): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  return Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 0.5);
}

/** The request, written once: an encoded ModelInferRequest, or an HTTP body and its headers. */
function writeRequest(m: ProtocolModel, protocol: Protocol, dir: string) {
  const data = inputData(m.shape);
  const file = join(dir, `protocol-${m.key}-${protocol}`);
  const tensor = { name: m.input, shape: m.shape, datatype: 'FP32' };
  if (protocol === 'grpc') {
    const proto = new protobuf.Root().loadSync(join(ROOT, 'proto', 'inference.proto'), {
      keepCase: true,
    });
    const type = proto.lookupType('inference.ModelInferRequest');
    const message = type.fromObject({
      model_name: m.key,
      inputs: [tensor],
      raw_input_contents: [Buffer.from(data.buffer)],
    });
    writeFileSync(file, type.encode(message).finish());
    return { file, headers: {} };
  }
  if (protocol === 'json') {
    writeFileSync(file, JSON.stringify({ inputs: [{ ...tensor, data: Array.from(data) }] }));
    return { file, headers: { 'content-type': 'application/json' } };
  }
  const header = Buffer.from(
    JSON.stringify({
      inputs: [{ ...tensor, parameters: { binary_data_size: data.byteLength } }],
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

/** bento-run serving REST and gRPC on free ports; resolves with both once it listens. */
function startBento(m: ProtocolModel, dir: string) {
  const spec = join(dir, `spec-${m.key}-protocols.yaml`);
  writeFileSync(
    spec,
    `version: 1
models:
  ${m.key}:
    path: ${m.file}
    batching: { max_batch_size: 64, max_latency_ms: 5, policy: adaptive }
    session: { intra_op_threads: 1 }
services:
  bench:
    models: [${m.key}]
    workers: 1
    traffic: { max_concurrency: 1024 }
`,
  );
  return startProcess(
    [BENTO_BIN, spec, '--port', '0', '--grpc-port', '0', '--log-format', 'json'],
    (log) => {
      const m = /"url":"(http:\/\/([^":/]+)[^"]*)".*"grpc_port":(\d+)/.exec(log);
      return m ? { url: m[1]!, grpc: `${m[2]}:${m[3]}` } : undefined;
    },
  ).then(({ child, found }) => ({ ...found, child }));
}

/**
 * CPU time (user + system, ms) of the server's main thread, which runs both frontends (decoding,
 * encoding, HTTP/1.1 and HTTP/2) and nothing that differs between them; NaN off Linux. Worker
 * threads are left out: their spinning and the runs themselves are the same for every protocol.
 */
const cpuMs = (pid: number | undefined): number => cpuUs(pid, 'main') / 1000;

interface Measured extends LoadResult {
  /** The server main thread's CPU time per answered request, in µs: what the protocol costs. */
  readonly cpuUsPerRequest: number;
}

/**
 * Runs a load process; the server's CPU time is read over the measured window (from the end
 * of the warm-up), a figure less sensitive than throughput to other load on a shared machine.
 */
function runLoad(
  script: string,
  args: { readonly warmupMs: number } & Record<string, unknown>,
  server: ChildProcess,
): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(here, script), JSON.stringify(args)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let from = Number.NaN;
    const timer = setTimeout(() => {
      from = cpuMs(server.pid);
    }, args.warmupMs);
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`${script} exited ${code}`));
      const result = JSON.parse(out) as LoadResult;
      const cpu = cpuMs(server.pid) - from;
      resolve({ ...result, cpuUsPerRequest: (cpu * 1000) / result.requests });
    });
  });
}

const cell = (r: Measured) =>
  `${fmt(r.rps, 0)} (${fmt(r.p50Ms, 3)} / ${fmt(r.p99Ms, 3)}) ${fmt(r.cpuUsPerRequest, 0)} µs${r.errors ? `, ${r.errors} errors` : ''}`;

/** Measures every model over the three protocols; returns the markdown section. */
export async function protocolComparison(
  models: readonly ProtocolModel[],
  opts: ProtocolBenchOptions,
): Promise<string> {
  const out = [
    '\n## gRPC vs REST binary vs REST JSON\n',
    "One bento-run serving both frontends (adaptive batching, one worker, one intra-op thread); the same input as a gRPC ModelInferRequest with raw contents (one HTTP/2 channel, as tritonclient.grpc), as REST with binary tensors both ways, and as REST JSON. Cells: req/s (p50 / p99 ms) and the CPU time of the server's main thread (which runs both frontends) per request, in µs: less sensitive than throughput to other load on the machine.\n",
  ];
  for (const m of models) {
    const { url, grpc, child } = await startBento(m, opts.dir);
    const results = new Map<string, Measured>();
    try {
      const bodies = new Map(PROTOCOLS.map((p) => [p, writeRequest(m, p, opts.dir)]));
      // Protocols back to back at each concurrency: whatever else loads the machine then
      // weighs on the three alike.
      for (const concurrency of opts.concurrency) {
        for (const protocol of PROTOCOLS) {
          const body = bodies.get(protocol)!;
          const common = { concurrency, warmupMs: opts.warmupMs, durationMs: opts.durationMs };
          const result =
            protocol === 'grpc'
              ? await runLoad(
                  'grpc-load.js',
                  { address: grpc, requestFile: body.file, ...common },
                  child,
                )
              : await runLoad(
                  'load.js',
                  {
                    url,
                    path: `/v2/models/${m.key}/infer`,
                    bodyFile: body.file,
                    headers: body.headers,
                    ...common,
                  },
                  child,
                );
          results.set(`${protocol} ${concurrency}`, result);
          console.error(
            `${m.key} ${protocol} c=${concurrency}: ${fmt(result.rps, 0)} req/s p50 ${fmt(result.p50Ms, 3)} ms p99 ${fmt(result.p99Ms, 3)} ms, main thread ${fmt(result.cpuUsPerRequest, 0)} µs/req, errors ${result.errors}${result.firstError ? ` (${result.firstError})` : ''}`,
          );
        }
      }
    } finally {
      await stopProcess(child);
    }
    out.push(`### ${m.title}\n`);
    out.push(
      '| in flight | gRPC, raw contents | REST, binary tensors | REST, JSON | CPU/req gRPC / binary | CPU/req gRPC / JSON |',
    );
    out.push('| ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const c of opts.concurrency) {
      const [g, b, j] = PROTOCOLS.map((p) => results.get(`${p} ${c}`)!);
      out.push(
        `| ${c} | ${cell(g!)} | ${cell(b!)} | ${cell(j!)} | ${fmt(g!.cpuUsPerRequest / b!.cpuUsPerRequest)} | ${fmt(g!.cpuUsPerRequest / j!.cpuUsPerRequest)} |`,
      );
    }
    out.push('');
  }
  return out.join('\n');
}

/** The bench's tiny and CNN models, as bench/run.ts describes them. */
export function protocolModels(files: { tiny: string; cnn: string }): ProtocolModel[] {
  return [
    { key: 'tiny', title: 'tiny (x + c, [1,4])', file: files.tiny, input: 'x', shape: [1, 4] },
    {
      key: 'cnn',
      title: 'cnn (conv net, [1,3,32,32])',
      file: files.cnn,
      input: 'input',
      shape: [1, 3, 32, 32],
    },
  ];
}

async function main(): Promise<void> {
  const env = process.env;
  const dir = join(ROOT, 'bench', 'models');
  mkdirSync(dir, { recursive: true });
  const wanted = (env.BENCH_MODELS ?? 'tiny,cnn').split(',');
  const models = protocolModels(await ensureBenchModels(dir)).filter((m) => wanted.includes(m.key));
  const text = await protocolComparison(models, {
    durationMs: Number(env.BENCH_DURATION_MS ?? 2000),
    warmupMs: 500,
    concurrency: (env.BENCH_CONCURRENCY ?? '1,8,64').split(',').map(Number),
    dir,
  });
  console.log(text);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href)
  await main();
