/**
 * Stopping `serve`: on SIGTERM or SIGINT the frontends stop accepting and requests in flight
 * get server.drain_timeout_s; then every connection is closed and the process exits, 0 when
 * nothing was cut. A thread inside onnxruntime's native run cannot be interrupted and would
 * hold process.exit (seen: 15 s, then an abort), so past the deadline, and on a second signal,
 * the process ends itself at once.
 */
import { EXIT_OK, EXIT_RUNTIME } from '../errors.js';
import type { Logger } from '../log.js';

export interface Drainable {
  /** Resolves true when everything in flight was answered before `timeoutS`. */
  drain(timeoutS: number): Promise<boolean>;
}

/** Resolves with the first stop signal; listen before loading, so none is missed. */
export function firstStopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const once = (s: NodeJS.Signals) => {
      process.off('SIGTERM', once);
      process.off('SIGINT', once);
      resolve(s);
    };
    process.on('SIGTERM', once);
    process.on('SIGINT', once);
  });
}

/** Ends the process now, whatever its threads are doing. */
function hardExit(): never {
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable');
}

/** After the first signal: drain, close the runtime, and say how it ended. */
export async function drainAndStop(opts: {
  readonly signal: NodeJS.Signals;
  readonly frontends: readonly Drainable[];
  readonly closeRuntime: () => Promise<void>;
  readonly drainTimeoutS: number;
  readonly log: Logger;
}): Promise<number> {
  const { log } = opts;
  const again = (s: NodeJS.Signals) => {
    log.warn(`${s} again: exiting at once`, { event: 'exit-now', signal: s });
    hardExit();
  };
  process.once('SIGTERM', again);
  process.once('SIGINT', again);
  log.info(
    `${opts.signal}: finishing in-flight requests (at most ${opts.drainTimeoutS}s, server.drain_timeout_s), then stopping`,
    { event: 'draining', signal: opts.signal },
  );
  const answered = await Promise.all(opts.frontends.map((f) => f.drain(opts.drainTimeoutS)));
  const clean = answered.every(Boolean);
  if (!clean) {
    log.warn(`drain timeout (${opts.drainTimeoutS}s): requests still in flight were cut`, {
      event: 'drain-timeout',
    });
    // Work still running in a worker would hold the exit: give it a moment, then go.
    const closed = await Promise.race([
      opts.closeRuntime().then(() => true),
      new Promise<false>((r) => setTimeout(() => r(false), 1000).unref()),
    ]);
    log.info('stopped', { event: 'stopped', clean: false });
    if (!closed) hardExit();
    return EXIT_RUNTIME;
  }
  await opts.closeRuntime();
  log.info('stopped', { event: 'stopped', clean: true });
  return EXIT_OK;
}
