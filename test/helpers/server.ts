/**
 * Real servers for tests, on loopback and an ephemeral port: the CLI as a child process
 * (`startCli`, `runCli`), or the stages wired in this process (`startInProcess`) for tests that
 * need the `Runtime` itself. Plus small HTTP and Prometheus helpers.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import { createLogger } from '../../src/log.js';
import { discoverDevices, planPlacement } from '../../src/plan/index.js';
import type { Plan } from '../../src/plan/types.js';
import { type Runtime, type RuntimeEvents, startRuntime } from '../../src/runtime/pool.js';
import type { Authenticator } from '../../src/server/auth.js';
import { type RunningServer, startServer } from '../../src/server/http.js';
import { loadSpec } from '../../src/spec/validate.js';
import { crashRoute, fixtureRuntimeOptions } from '../fixtures/worker-switches.js';
import { readNvidiaSmiFixture } from './fake-nvidia-smi.js';

/** The repository root, found from the compiled file (dist/test/helpers). */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const BIN = join(ROOT, 'bin', 'bento-run.js');
/** bento-run with the test switches (test/fixtures/bento-run-fixture.ts). */
export const FIXTURE_BIN = join(ROOT, 'dist', 'test', 'fixtures', 'bento-run-fixture.js');

/** Which bento-run to spawn: the shipped one (default) or FIXTURE_BIN. */
export interface CliOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly timeoutMs?: number;
  readonly bin?: string;
}
/** Test specs (model paths relative to this folder). */
export const TEST_SPECS = join(ROOT, 'test', 'fixtures', 'specs');
export const TEST_MODELS = join(ROOT, 'test', 'fixtures', 'models');

const LISTENING = /serving \d+ model\(s\) on (http:\/\/[^\s"]+)/;

/** The environment for a child: this one without GPU selection or test switches leaking in. */
export function childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) {
    if (k === 'CUDA_VISIBLE_DEVICES' || k.startsWith('FIXTURE_') || k === 'NODE_TEST_CONTEXT')
      delete env[k];
  }
  return { ...env, ...extra };
}

export interface CliServer {
  readonly url: string;
  readonly port: number;
  readonly child: ChildProcess;
  /** Everything the child wrote on stderr and stdout so far. */
  log(): string;
  /** Resolves once the log matches `pattern` (bounded; rejects with the log on timeout). */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code once the child has exited. */
  readonly exited: Promise<number | null>;
  /** Sends `signal` (default SIGTERM) and resolves with the exit code (bounded). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
}

function spawnCli(args: readonly string[], env: NodeJS.ProcessEnv, bin = BIN) {
  const child = spawn(process.execPath, [bin, ...args], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  const output = new EventEmitter();
  const onData = (chunk: Buffer) => {
    text += chunk.toString('utf8');
    output.emit('data');
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => {
    child.once('close', (code) => {
      output.emit('data');
      resolve(code);
    });
  });
  const waitForLog = (pattern: RegExp, timeoutMs = 30_000) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        const m = text.match(pattern);
        if (m) {
          done();
          resolve(m);
        } else if (child.exitCode !== null || child.signalCode !== null) {
          done();
          reject(
            new Error(`bento-run exited (${child.exitCode ?? child.signalCode}) before ${pattern}:
${text}`),
          );
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no ${pattern} within ${timeoutMs} ms; bento-run's log:\n${text}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        output.off('data', check);
      };
      output.on('data', check);
      check();
    });
  return { child, log: () => text, exited, waitForLog };
}

/**
 * Starts `bento-run ARGS --port 0` and resolves once it prints its listening line. Rejects
 * with the captured log if the child exits first or does not listen within `timeoutMs`.
 */
export async function startCli(args: readonly string[], opts: CliOptions = {}): Promise<CliServer> {
  const { child, log, exited, waitForLog } = spawnCli(
    [...args, '--port', '0', ...(args.includes('--grpc-port') ? [] : ['--grpc-port', '0'])],
    opts.env ?? childEnv(),
    opts.bin,
  );
  let url: string;
  try {
    url = (await waitForLog(LISTENING, opts.timeoutMs ?? 30_000))[1]!;
  } catch (e) {
    child.kill('SIGKILL');
    await exited;
    throw e;
  }
  const stop = async (signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    try {
      return await exited;
    } finally {
      clearTimeout(timer);
    }
  };
  return { url, port: Number(new URL(url).port), child, log, waitForLog, exited, stop };
}

/** Runs bento-run to its end (bounded) and returns its exit code and output. */
export async function runCli(
  args: readonly string[],
  opts: CliOptions = {},
): Promise<{ code: number | null; output: string }> {
  const { child, log, exited } = spawnCli(args, opts.env ?? childEnv(), opts.bin);
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
  const code = await exited;
  clearTimeout(timer);
  return { code, output: log() };
}

export interface InProcessServer {
  readonly url: string;
  readonly plan: Plan;
  readonly runtime: Runtime;
  readonly server: RunningServer;
  /** What the server logged. */
  log(): string;
  /** Drains the server and closes the worker threads. */
  close(): Promise<void>;
}

export interface InProcessOptions {
  /** Plan on the GPUs of this recorded nvidia-smi output (e.g. "2x-l4"); none by default. */
  readonly gpus?: string;
  readonly cpu?: boolean;
  /** Every session on the CPU, planned devices kept: the fixture worker. */
  readonly forceCpuSessions?: boolean;
  /** The fixture worker, waiting this long before it loads. */
  readonly loadDelayMs?: number;
  /** The fixture worker (whose threads crashWorker can end), sessions on the CPU. */
  readonly fixtureWorker?: boolean;
  readonly maxBodyBytes?: number;
  /** server.auth's check, as serve builds it from the spec. */
  readonly auth?: Authenticator;
  /** Serves POST /debug/workers/{service}/{worker}/crash (test code's crashRoute). */
  readonly testHooks?: boolean;
  readonly events?: EventEmitter<RuntimeEvents>;
}

/**
 * loadSpec -> planPlacement -> startRuntime -> startServer in this process, on an ephemeral
 * port. Always `close()` it (in `after`): live onnxruntime threads at exit can crash the process.
 */
export async function startInProcess(
  specFile: string,
  opts: InProcessOptions = {},
): Promise<InProcessServer> {
  const { spec } = loadSpec(specFile);
  const devices =
    opts.gpus === undefined
      ? []
      : discoverDevices({ env: {}, nvidiaSmi: () => readNvidiaSmiFixture(opts.gpus!) }).devices;
  const plan = planPlacement(spec, devices, { cpu: opts.cpu === true });
  const runtime = await startRuntime(
    plan,
    opts.forceCpuSessions || opts.loadDelayMs || opts.fixtureWorker
      ? fixtureRuntimeOptions({ loadDelayMs: opts.loadDelayMs ?? 0 })
      : {},
    opts.events ?? new EventEmitter<RuntimeEvents>(),
  );
  let text = '';
  let server: RunningServer;
  try {
    server = await startServer(runtime, {
      host: '127.0.0.1',
      port: 0,
      version: 'test',
      log: createLogger({
        level: 'debug',
        write: (line) => {
          text += line;
        },
      }),
      routes: opts.testHooks ? [crashRoute] : [],
      auth: opts.auth ?? null,
      ...(opts.maxBodyBytes === undefined ? {} : { maxBodyBytes: opts.maxBodyBytes }),
    });
  } catch (e) {
    await runtime.close();
    throw e;
  }
  return {
    url: server.url,
    plan,
    runtime,
    server,
    log: () => text,
    async close() {
      await server.drain();
      await runtime.close();
    },
  };
}

// ---- HTTP -----------------------------------------------------------------------------------

export interface JsonResponse {
  readonly status: number;
  readonly headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: test code reads arbitrary JSON answers
  readonly body: any;
  readonly text: string;
}

/** A request whose answer is read as JSON when it is JSON. `body` objects are serialised. */
export async function request(
  method: string,
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<JsonResponse> {
  const res = await fetch(url, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, body: parsed, text };
}

export const get = (url: string) => request('GET', url);
export const post = (url: string, body: unknown) => request('POST', url, body);

/** Polls `probe` until it returns a value (not undefined), at most `timeoutMs`. */
export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 15_000,
  intervalMs = 20,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** `p`, or a rejection naming `what` after `timeoutMs` (the timer never outlives the wait). */
export async function within<T>(p: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${timeoutMs} ms: ${what}`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

// ---- Prometheus text --------------------------------------------------------------------------

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Parses the Prometheus text format's samples (comments skipped). */
export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = line.match(/^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The samples named `name` whose labels include `labels`. */
export function samples(
  all: readonly Sample[],
  name: string,
  labels: Readonly<Record<string, string>> = {},
): Sample[] {
  return all.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
}

/** The one sample named `name` with exactly these labels' values; fails when absent. */
export function metric(
  all: readonly Sample[],
  name: string,
  labels: Readonly<Record<string, string>> = {},
): number {
  const found = samples(all, name, labels);
  if (found.length !== 1) {
    throw new Error(
      `expected one sample ${name}${JSON.stringify(labels)}, found ${found.length}: ${JSON.stringify(samples(all, name))}`,
    );
  }
  return found[0]!.value;
}

export async function scrape(url: string): Promise<Sample[]> {
  const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) });
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return parseMetrics(await res.text());
}

/**
 * Sessions opened in the test process with the test specs' options (one intra-op thread, all
 * optimisations, sequential), so that their results are the bit-for-bit reference for served ones.
 */
export async function openDirectSessions(
  models: readonly (readonly [model: string, file: string])[],
): Promise<Map<string, ort.InferenceSession>> {
  const direct = new Map<string, ort.InferenceSession>();
  for (const [model, file] of models) {
    direct.set(
      model,
      await ort.InferenceSession.create(join(TEST_MODELS, file), {
        intraOpNumThreads: 1,
        graphOptimizationLevel: 'all',
        executionMode: 'sequential',
      }),
    );
  }
  return direct;
}
