/**
 * `npm run bench:soak`: the reliability figures of issue 12, measured on a real `bento-run`
 * process. A mixed load for BENCH_SOAK_S seconds (default 180): well-formed requests, malformed
 * ones, shapes that must be refused, bodies that trickle in, and requests that time out on a
 * slow model; the server's RSS is sampled every second and the slow service's backlog (its
 * worker's requests held) every 10 ms. Then SIGTERM with a client that holds a connection open
 * having sent half its headers: the time to exit. Writes bench/soak.md.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { bentoArgs, listeningUrl, ROOT, startProcess } from './proc.js';

const models = join(ROOT, 'test', 'fixtures', 'models');
const SECONDS = Number(process.env.BENCH_SOAK_S ?? 180);

function spec(): string {
  const dir = mkdtempSync(join(tmpdir(), 'bento-soak-'));
  const file = join(dir, 'bentofile.yaml');
  writeFileSync(
    file,
    `version: 1
models:
  tiny: { path: ${join(models, 'tiny.onnx')} }
  slow: { path: ${join(models, 'slow.onnx')}, session: { intra_op_threads: 1 } }
services:
  main: { models: [tiny], traffic: { max_concurrency: 64 } }
  hurried:
    models: [slow]
    traffic: { timeout_s: 0.5, max_concurrency: 4 }
server: { max_body_mb: 8, drain_timeout_s: 5 }
`,
  );
  return file;
}

async function start(file: string): Promise<{ child: ChildProcess; url: string }> {
  const { child, found } = await startProcess(bentoArgs(file), listeningUrl);
  return { child, url: found };
}

const rssMb = (pid: number) =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

async function post(url: string, body: string): Promise<number> {
  try {
    const res = await request(`${url}`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json' },
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
    await res.body.arrayBuffer();
    return res.statusCode;
  } catch {
    return 0;
  }
}

const tensor = (name: string, shape: number[], data: unknown) =>
  JSON.stringify({ inputs: [{ name, shape, datatype: 'FP32', data }] });

/** A client that sends half its headers, then nothing: what a stuck or hostile client does. */
function stuckClient(url: string): Promise<Socket> {
  const { port } = new URL(url);
  return new Promise((resolve) => {
    const s = connect(Number(port), '127.0.0.1', () => {
      s.write('POST /v2/models/tiny/infer HTTP/1.1\r\nhost: x\r\n');
      resolve(s);
    });
    s.on('error', () => undefined);
  });
}

/** A body sent at one byte a second: it must not hold a slot past the timeout. */
function trickle(url: string, until: number): Promise<void> {
  const { port } = new URL(url);
  return new Promise((resolve) => {
    const s = connect(Number(port), '127.0.0.1', () => {
      s.write(
        'POST /v2/models/slow/infer HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{',
      );
    });
    const t = setInterval(() => {
      if (performance.now() > until || s.destroyed) {
        clearInterval(t);
        s.destroy();
        resolve();
      } else s.write(' ');
    }, 1000);
    s.on('close', () => {
      clearInterval(t);
      resolve();
    });
    s.on('error', () => undefined);
  });
}

async function main(): Promise<void> {
  const { child, url } = await start(spec());
  const pid = child.pid!;
  const statuses = new Map<string, Map<number, number>>();
  const count = (kind: string, status: number) => {
    const m = statuses.get(kind) ?? new Map<number, number>();
    m.set(status, (m.get(status) ?? 0) + 1);
    statuses.set(kind, m);
  };
  const rss: number[] = [rssMb(pid)];
  let backlog = 0;
  const end = performance.now() + SECONDS * 1000;
  const sampler = setInterval(() => rss.push(rssMb(pid)), 1000);
  const watcher = setInterval(async () => {
    try {
      const res = await request(`${url}/debug/workers`);
      const body = (await res.body.json()) as { workers: { service: string; inFlight: number }[] };
      for (const w of body.workers)
        if (w.service === 'hurried') backlog = Math.max(backlog, w.inFlight);
    } catch {}
  }, 10);
  const slowRows = (rows: number) => tensor('x', [rows, 64], Array(rows * 64).fill(0.5));
  const loops: [string, () => Promise<number>][] = [
    ['good (tiny)', () => post(`${url}/v2/models/tiny/infer`, tensor('x', [1, 4], [1, 2, 3, 4]))],
    [
      'good (tiny)',
      () => post(`${url}/v2/models/tiny/infer`, tensor('x', [8, 4], Array(32).fill(1))),
    ],
    ['malformed JSON', () => post(`${url}/v2/models/tiny/infer`, '{"inputs": [')],
    ['shape refused', () => post(`${url}/v2/models/tiny/infer`, tensor('x', [0, 1e300], []))],
    ['wrong size', () => post(`${url}/v2/models/tiny/infer`, tensor('x', [2, 4], [1]))],
    ['timeout storm (slow)', () => post(`${url}/v2/models/slow/infer`, slowRows(3))],
    ['timeout storm (slow)', () => post(`${url}/v2/models/slow/infer`, slowRows(3))],
    ['timeout storm (slow)', () => post(`${url}/v2/models/slow/infer`, slowRows(3))],
    ['timeout storm (slow)', () => post(`${url}/v2/models/slow/infer`, slowRows(3))],
    ['timeout storm (slow)', () => post(`${url}/v2/models/slow/infer`, slowRows(3))],
    ['timeout storm (slow)', () => post(`${url}/v2/models/slow/infer`, slowRows(3))],
    [
      'large body (2 MB)',
      () => post(`${url}/v2/models/tiny/infer`, tensor('x', [65536, 4], Array(262144).fill(0.5))),
    ],
  ];
  await Promise.all([
    ...loops.map(async ([kind, send]) => {
      while (performance.now() < end) count(kind, await send());
    }),
    ...Array.from({ length: 4 }, async () => {
      while (performance.now() < end) await trickle(url, end);
    }),
  ]);
  clearInterval(sampler);
  clearInterval(watcher);
  console.error('load done');
  const after = await post(`${url}/v2/models/tiny/infer`, tensor('x', [1, 4], [1, 2, 3, 4]));
  // SIGTERM while a client holds a connection with half its headers sent.
  const stuck = await stuckClient(url);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const t0 = performance.now();
  child.kill('SIGTERM');
  console.error('SIGTERM sent');
  const code = await exited;
  const termMs = performance.now() - t0;
  stuck.destroy();
  const lines = [
    `# bento-run soak\n\n${new Date().toISOString()}: ${SECONDS} s of mixed load on one bento-run process (\`npm run bench:soak\`, BENCH_SOAK_S to change). The slow service has traffic.timeout_s 0.5 and max_concurrency 4; six clients send it 3-row requests (about 165 ms a run) back to back, four more trickle bodies at a byte a second.\n`,
    '| figure | value |',
    '| --- | ---: |',
    `| RSS at start (MB) | ${rss[0]!.toFixed(0)} |`,
    `| RSS after 10 s (MB) | ${(rss[10] ?? Number.NaN).toFixed(0)} |`,
    `| RSS at the end (MB) | ${rss[rss.length - 1]!.toFixed(0)} |`,
    `| RSS peak (MB) | ${Math.max(...rss).toFixed(0)} |`,
    `| most requests held by the slow service's worker (max_concurrency 4) | ${backlog} |`,
    `| a good request right after the load | ${after} |`,
    `| SIGTERM to exit, a client holding half its headers (drain_timeout_s 5) | ${termMs.toFixed(0)} ms, exit code ${code} |`,
    '',
    '| requests | answers (status: count) |',
    '| --- | --- |',
    ...[...statuses].map(
      ([kind, m]) =>
        `| ${kind} | ${[...m]
          .sort((a, b) => a[0] - b[0])
          .map(([s, n]) => `${s === 0 ? 'no answer' : s}: ${n}`)
          .join(', ')} |`,
    ),
    '',
  ];
  const text = lines.join('\n');
  console.log(text);
  writeFileSync(join(ROOT, 'bench', 'soak.md'), text);
}

await main();
