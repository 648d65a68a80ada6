/**
 * `npm run bench:pipeline`: a two-step pipeline served by bento-run (`two_stage` of
 * test/fixtures/specs/pipeline.yaml: model1 -> classifier, on two services) against the client
 * calling the two models one after the other (model1's JSON answer decoded and sent back as
 * classifier's input). Same server, same sessions, keep-alive connections over undici.
 *
 * Each repetition runs every case for BENCH_REQUESTS requests, in an order that alternates
 * between repetitions (interleaved, so drift hits both alike); per case, the median of the
 * repetitions' medians is printed. Latency at concurrency 1, and throughput at BENCH_CONCURRENCY.
 *
 * Knobs: BENCH_ROWS=1,64  BENCH_REPS=7  BENCH_REQUESTS=200  BENCH_CONCURRENCY=8
 */
import { join } from 'node:path';
import { Pool } from 'undici';
import { BENTO_BIN, median, ROOT, startProcess } from './proc.js';

const env = process.env;
const ROWS = (env.BENCH_ROWS ?? '1,64').split(',').map(Number);
const REPS = Number(env.BENCH_REPS ?? 7);
const REQUESTS = Number(env.BENCH_REQUESTS ?? 200);
const CONCURRENCY = Number(env.BENCH_CONCURRENCY ?? 8);

interface Output {
  name: string;
  shape: number[];
  datatype: string;
  data: number[];
}

async function startServer(): Promise<{ url: string; stop: () => Promise<void> }> {
  const spec = join(ROOT, 'test', 'fixtures', 'specs', 'pipeline.yaml');
  const { child, found: url } = await startProcess(
    [BENTO_BIN, 'serve', spec, '--port', '0'],
    (text) => text.match(/serving \d+ model\(s\) on (http:\/\/[^\s"]+)/)?.[1],
    { cwd: ROOT },
  );
  return {
    url,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

async function main(): Promise<void> {
  const server = await startServer();
  const pool = new Pool(server.url, { connections: CONCURRENCY * 2, pipelining: 1 });
  const infer = async (model: string, body: unknown): Promise<Output[]> => {
    const res = await pool.request({
      method: 'POST',
      path: `/v2/models/${model}/infer`,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const json = (await res.body.json()) as { outputs: Output[]; error?: string };
    if (res.statusCode !== 200) throw new Error(`${model}: ${res.statusCode} ${json.error}`);
    return json.outputs;
  };
  const features = (rows: number) => ({
    inputs: [
      {
        name: 'features',
        shape: [rows, 8],
        datatype: 'FP32',
        data: Array.from({ length: rows * 8 }, (_, i) => Math.fround(Math.sin(i))),
      },
    ],
  });
  const asInput = (rows: number) => ({
    inputs: [{ ...features(rows).inputs[0]!, name: 'input' }],
  });

  type Case = { name: string; run: (rows: number) => Promise<unknown> };
  const cases: Case[] = [
    { name: 'pipeline (1 request)', run: (rows) => infer('two_stage', features(rows)) },
    {
      name: 'client chains 2 models',
      run: async (rows) => {
        const [first] = await infer('model1', asInput(rows));
        return infer('classifier', {
          inputs: [{ name: 'input', shape: first!.shape, datatype: 'FP32', data: first!.data }],
        });
      },
    },
  ];

  // The two give the same answer (a sanity check, not the measurement).
  const a = (await cases[0]!.run(2)) as Output[];
  const b = (await cases[1]!.run(2)) as Output[];
  if (JSON.stringify(a[0]!.data) !== JSON.stringify(b[0]!.data)) {
    throw new Error('the pipeline and the chained calls disagree');
  }

  const lines: string[] = [
    `| rows | case | p50 latency, c=1 (ms) | throughput, c=${CONCURRENCY} (req/s) |`,
    '| ---: | --- | ---: | ---: |',
  ];
  for (const rows of ROWS) {
    const latency = cases.map(() => [] as number[]);
    const rate = cases.map(() => [] as number[]);
    for (const c of cases) for (let i = 0; i < 50; i++) await c.run(rows); // warm-up
    for (let rep = 0; rep < REPS; rep++) {
      const order = rep % 2 === 0 ? [0, 1] : [1, 0];
      for (const ci of order) {
        const c = cases[ci]!;
        const times: number[] = [];
        for (let i = 0; i < REQUESTS; i++) {
          const t = performance.now();
          await c.run(rows);
          times.push(performance.now() - t);
        }
        latency[ci]!.push(median(times));
        let left = REQUESTS;
        const t = performance.now();
        await Promise.all(
          Array.from({ length: CONCURRENCY }, async () => {
            while (left-- > 0) await c.run(rows);
          }),
        );
        rate[ci]!.push(REQUESTS / ((performance.now() - t) / 1000));
      }
    }
    for (const [ci, c] of cases.entries()) {
      lines.push(
        `| ${rows} | ${c.name} | ${median(latency[ci]!).toFixed(3)} | ${median(rate[ci]!).toFixed(0)} |`,
      );
    }
  }
  await pool.close();
  await server.stop();
  console.log(
    `two_stage (model1 -> classifier, services members and heads), ${REPS} interleaved repetitions of ${REQUESTS} requests, medians:\n`,
  );
  console.log(lines.join('\n'));
}

await main();
