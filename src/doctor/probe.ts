/**
 * A real attempt to create a CUDA session on one GPU, in a child process: a provider that cannot
 * load, a driver that crashes the process or a call that never returns is reported as a failed
 * probe, never taken down with it.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { stripVTControlCharacters } from 'node:util';

const CHILD_FILE = fileURLToPath(new URL('./cuda-probe-child.js', import.meta.url));

/** Creating the first CUDA session loads cuBLAS and cuDNN and may JIT kernels: allow a minute. */
export const CUDA_PROBE_TIMEOUT_MS = 60_000;

/** Keep this much of the child's output: onnxruntime's log of a failure fits easily. */
const MAX_OUTPUT = 64 * 1024;

export interface CudaSessionProbe {
  /** The visible index (CUDA deviceId) tried. */
  readonly deviceId: number;
  readonly ok: boolean;
  /** The provider's own error, or how the child process ended; null when ok. */
  readonly error: string | null;
  /** How it failed: the provider said so, the process crashed, or it did not finish in time. */
  readonly outcome: 'ok' | 'error' | 'crash' | 'timeout';
  readonly ms: number;
  /** The child's process id (tests check that a hung one is gone). */
  readonly pid: number | null;
}

export interface ProbeOptions {
  /** The child's environment (CUDA_VISIBLE_DEVICES, LD_LIBRARY_PATH). */
  readonly env?: NodeJS.ProcessEnv;
  readonly timeoutMs?: number;
  /**
   * The script the child runs (default: cuda-probe-child.js), given the device id as its
   * argument. Tests pass one that crashes or hangs, as a broken driver would.
   */
  readonly childFile?: string;
}

export type CudaProbe = (deviceId: number) => Promise<CudaSessionProbe>;

/**
 * onnxruntime logs the cause of a failure on stderr, e.g. `[E:onnxruntime:…] … [ONNXRuntimeError]
 * : 1 : FAIL : Failed to load library …/libonnxruntime_providers_shared.so with error: …`, while
 * the exception says only "Failed to load shared library". Returns those causes.
 */
export function onnxruntimeLogErrors(stderr: string): string[] {
  return stripVTControlCharacters(stderr)
    .split(/\r?\n/)
    .filter((l) => /\[E:onnxruntime/.test(l))
    .map((l) => {
      const m = /\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*\w+\s*:\s*(.*)$/.exec(l);
      return (m?.[1] ?? l.replace(/^.*?\[E:onnxruntime[^\]]*\]\s*/, '')).trim();
    })
    .filter((l) => l !== '');
}

function lastLine(text: string): string {
  const lines = stripVTControlCharacters(text)
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '');
  return lines[lines.length - 1] ?? '';
}

function readResult(stdout: string): { ok: boolean; error?: string } | null {
  try {
    const r = JSON.parse(lastLine(stdout)) as { ok?: unknown; error?: unknown };
    if (typeof r.ok !== 'boolean') return null;
    return { ok: r.ok, ...(typeof r.error === 'string' ? { error: r.error } : {}) };
  } catch {
    return null;
  }
}

/** Spawns the probe child for one GPU and waits for its answer, its end or the timeout. */
export function probeCudaSession(
  deviceId: number,
  opts: ProbeOptions = {},
): Promise<CudaSessionProbe> {
  const timeoutMs = opts.timeoutMs ?? CUDA_PROBE_TIMEOUT_MS;
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [opts.childFile ?? CHILD_FILE, String(deviceId)], {
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      windowsHide: true,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      if (stdout.length < MAX_OUTPUT) stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < MAX_OUTPUT) stderr += d;
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    const done = (outcome: CudaSessionProbe['outcome'], error: string | null) => {
      clearTimeout(timer);
      resolve({
        deviceId,
        ok: outcome === 'ok',
        error,
        outcome,
        ms: performance.now() - started,
        pid: child.pid ?? null,
      });
    };
    child.on('error', (e) => done('crash', `cannot start the probe process: ${e.message}`));
    child.on('close', (code, signal) => {
      const causes = onnxruntimeLogErrors(stderr);
      const cause = causes.length > 0 ? ` (${causes.join('; ')})` : '';
      const said = causes.length > 0 ? cause : lastLine(stderr) ? `: ${lastLine(stderr)}` : '';
      const result = readResult(stdout);
      if (result?.ok) return done('ok', null);
      if (result) return done('error', `${result.error ?? 'failed'}${cause}`);
      if (timedOut) {
        return done(
          'timeout',
          `creating a CUDA session on cuda:${deviceId} did not finish within ${timeoutMs / 1000} s (hung; the probe process was killed)${said}`,
        );
      }
      if (signal !== null) {
        return done(
          'crash',
          `the probe process crashed creating a CUDA session on cuda:${deviceId} (signal ${signal})${said}`,
        );
      }
      done('crash', `the probe process exited with code ${code} and no answer${said}`);
    });
  });
}
