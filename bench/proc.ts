/**
 * What the benchmarks share: starting a server process and waiting for the line that says
 * where it listens, its threads' CPU time from /proc, and the median.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BENTO_BIN = join(ROOT, 'bin', 'bento-run.js');

/** `bento-run serve` on a free port, gRPC off, logging JSON (whose "listening" line has the URL). */
export const bentoArgs = (spec: string): string[] => [
  BENTO_BIN,
  spec,
  '--port',
  '0',
  '--grpc-port',
  'false',
  '--log-format',
  'json',
];

/** The URL in bento-run's JSON "listening" line. */
export const listeningUrl = (log: string): string | undefined =>
  /"url":"(http:[^"]+)"/.exec(log)?.[1];

/**
 * Starts `node ARGS...` and resolves once `found` recognises what it printed (stdout and
 * stderr together); rejects with the output if it exits first.
 */
export function startProcess<T>(
  args: readonly string[],
  found: (log: string) => T | undefined,
  opts: { cwd?: string } = {},
): Promise<{ child: ChildProcess; found: T }> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  return new Promise((resolve, reject) => {
    let log = '';
    const onData = (chunk: Buffer) => {
      log += chunk.toString();
      const value = found(log);
      if (value !== undefined) resolve({ child, found: value });
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`server exited ${code}: ${log}`)));
  });
}

/** Linux's USER_HZ, the unit of /proc/PID/stat's times. */
const CLOCK_TICKS = 100;

/** CPU time (user + system, µs) of a process's main thread or all its threads; NaN off Linux. */
export function cpuUs(pid: number | undefined, threads: 'main' | 'all'): number {
  try {
    const tids = threads === 'main' ? [String(pid)] : readdirSync(`/proc/${pid}/task`);
    let ticks = 0;
    for (const t of tids) {
      const stat = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    }
    return (ticks * 1e6) / CLOCK_TICKS;
  } catch {
    return Number.NaN;
  }
}

/** The median of the finite values (NaN when there are none). */
export function median(xs: readonly number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** SIGTERM, and resolves once the process has exited. */
export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

/** A figure for a table: fixed digits, '-' when there is none. */
export const fmt = (n: number, digits = 2): string =>
  Number.isFinite(n) ? n.toFixed(digits) : '-';
