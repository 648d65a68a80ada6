/**
 * What `serve` tells the user while its workers start and run: a log line per runtime event
 * (sessions as they load, workers as they die and come back) and, on a terminal, one line per
 * session still loading (which model, which device, how long so far), updated in place, so
 * that a large model's minute-long load is visibly under way.
 */
import type { EventEmitter } from 'node:events';
import type { Logger } from '../log.js';
import type { PlannedSession, PlannedWorker } from '../plan/types.js';
import type { RuntimeEvents } from '../runtime/types.js';

/** One log line per runtime event: sessions as they load, workers as they die and return. */
export function logRuntimeEvents(events: EventEmitter<RuntimeEvents>, log: Logger): void {
  events.on('session-loaded', (w, r) => {
    log.info(
      `loaded  service=${w.service} worker=${w.worker} model=${r.model} device=${r.device} in ${r.loadMs.toFixed(1)} ms`,
      {
        event: 'session-loaded',
        service: w.service,
        worker: w.worker,
        model: r.model,
        device: r.device,
        load_ms: r.loadMs,
      },
    );
  });
  events.on('worker-exit', (w) => {
    log.warn(
      `worker thread died: service=${w.service} worker=${w.worker}; replacing it on the same device`,
      { event: 'worker-exit', service: w.service, worker: w.worker },
    );
  });
  events.on('worker-ready', (w, _r, restart) => {
    if (restart)
      log.info(`worker back: service=${w.service} worker=${w.worker}, sessions reloaded`, {
        event: 'worker-ready',
        service: w.service,
        worker: w.worker,
      });
  });
  events.on('worker-failed', (w, e) => {
    log.error(`worker could not reload: service=${w.service} worker=${w.worker}: ${e.message}`, {
      event: 'worker-failed',
      service: w.service,
      worker: w.worker,
    });
  });
}

/** Where the progress goes: a terminal (stderr), or a fake one in tests. */
export interface ProgressOutput {
  write(text: string): unknown;
  /** Only a terminal gets the lines updated in place. */
  readonly isTTY?: boolean;
  /** Its width: longer lines are cut, or they would wrap and break the update in place. */
  readonly columns?: number;
}

export interface LoadProgress {
  /** Writes log text above the progress lines (use it as the logger's `write`). */
  write(text: string): void;
  /** Clears the progress lines and stops listening. */
  stop(): void;
}

export interface LoadProgressOptions {
  /** How often the elapsed times are redrawn (default 250 ms). */
  readonly intervalMs?: number;
  /** The clock, in ms (default performance.now). */
  readonly now?: () => number;
}

/** Moves the cursor up one line and erases it. */
const UP_AND_ERASE = '\x1b[1A\x1b[2K';

/**
 * On a terminal, shows one line per session while it loads:
 * `loading service=S worker=W model=M device=cuda:0 ... 12.3 s`, redrawn every `intervalMs`
 * and gone once it has loaded (the log's `loaded` line takes its place). Anything else gets its
 * text passed through unchanged and no progress lines: the log's `loaded` lines are its record.
 */
export function showLoadProgress(
  events: EventEmitter<RuntimeEvents>,
  out: ProgressOutput,
  opts: LoadProgressOptions = {},
): LoadProgress {
  if (out.isTTY !== true) {
    return { write: (text) => void out.write(text), stop: () => undefined };
  }
  const now = opts.now ?? (() => performance.now());
  const loading = new Map<string, { line: string; since: number }>();
  let shown = 0;
  let timer: NodeJS.Timeout | undefined;

  /** `line ... 1.2 s`, the line cut to the terminal's width (the time always shows). */
  const fit = (line: string, since: number) => {
    const elapsed = ` ... ${((now() - since) / 1000).toFixed(1)} s`;
    // A terminal that says it has no width (some pseudo-terminals) gets whole lines.
    const width = out.columns !== undefined && out.columns >= 20 ? out.columns : Infinity;
    const room = width - 1 - elapsed.length;
    return `${line.length > room ? line.slice(0, Math.max(0, room)) : line}${elapsed}`;
  };
  /** Erases the progress lines, writes `text`, and draws the lines again. */
  const redraw = (text = '') => {
    const lines = [...loading.values()].map((l) => `${fit(l.line, l.since)}\n`);
    const all = `${UP_AND_ERASE.repeat(shown)}${text}${lines.join('')}`;
    if (all !== '') out.write(all);
    shown = lines.length;
    if (loading.size === 0 && timer !== undefined) {
      clearInterval(timer);
      timer = undefined;
    } else if (loading.size > 0 && timer === undefined) {
      timer = setInterval(() => redraw(), opts.intervalMs ?? 250);
      timer.unref();
    }
  };
  const key = (w: PlannedWorker, model: string) => `${w.service}\0${w.worker}\0${model}`;
  const forget = (w: PlannedWorker) => {
    for (const s of w.sessions) loading.delete(key(w, s.model));
    redraw();
  };

  const onLoading = (w: PlannedWorker, s: PlannedSession) => {
    loading.set(key(w, s.model), {
      line: `loading service=${w.service} worker=${w.worker} model=${s.model} device=${s.device}`,
      since: now(),
    });
    redraw();
  };
  const onLoaded = (w: PlannedWorker, r: { readonly model: string }) => {
    if (loading.delete(key(w, r.model))) redraw();
  };
  events.on('session-loading', onLoading);
  events.on('session-loaded', onLoaded);
  // A thread that died or failed mid-load loads nothing more; its replacement starts afresh.
  events.on('worker-exit', forget);
  events.on('worker-failed', forget);

  return {
    write: (text) => redraw(text),
    stop() {
      events.off('session-loading', onLoading);
      events.off('session-loaded', onLoaded);
      events.off('worker-exit', forget);
      events.off('worker-failed', forget);
      loading.clear();
      redraw();
    },
  };
}
