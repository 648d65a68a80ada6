// `serve`'s loading progress: on a terminal one line per loading session, updated in place, log
// lines written above it; elsewhere nothing but the log. Fed runtime events by hand, written to
// a fake terminal (a Writable with isTTY), on a clock the test moves.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { stripVTControlCharacters } from 'node:util';
import { showLoadProgress } from '../src/commands/progress.js';
import type { PlannedSession, PlannedWorker } from '../src/plan/types.js';
import type { SessionReport } from '../src/runtime/messages.js';
import type { RuntimeEvents } from '../src/runtime/types.js';

class FakeTerminal extends Writable {
  readonly isTTY: boolean;
  readonly columns: number;
  chunks: string[] = [];
  constructor(isTTY: boolean, columns = 100) {
    super();
    this.isTTY = isTTY;
    this.columns = columns;
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void) {
    this.chunks.push(chunk.toString('utf8'));
    done();
  }
  /** What the terminal shows now: the text with each "up one line, erase it" applied. */
  screen(): string[] {
    const lines: string[] = [];
    for (const chunk of this.chunks) {
      const parts = chunk.split('\x1b[1A\x1b[2K');
      for (let i = 1; i < parts.length; i++) lines.pop();
      lines.push(...parts.join('').split('\n').slice(0, -1));
    }
    return lines.map(stripVTControlCharacters);
  }
}

const session = (model: string, device: PlannedSession['device']): PlannedSession => ({
  model,
  path: `${model}.onnx`,
  device,
  deviceId: device === 'cpu' ? null : Number(device.slice(5)),
  session: { graphOptimization: 'all', executionMode: 'sequential' },
  batching: null,
});
const worker: PlannedWorker = {
  service: 'multi_gpu',
  worker: 0,
  sessions: [session('model1', 'cuda:0'), session('model2', 'cuda:1')],
};
const report = (model: string, device: string): SessionReport => ({
  model,
  device,
  deviceId: 0,
  providers: [{ name: 'cpu' }],
  loadMs: 12,
  inputs: [],
  outputs: [],
});

describe('serve: loading progress', () => {
  test('on a terminal: a line per loading session with its elapsed time, updated in place', () => {
    const events = new EventEmitter<RuntimeEvents>();
    const term = new FakeTerminal(true);
    let now = 1000;
    const progress = showLoadProgress(events, term, { now: () => now, intervalMs: 60_000 });
    progress.write('bento-run: starting\n');
    events.emit('session-loading', worker, worker.sessions[0]!);
    now += 1500;
    events.emit('session-loading', worker, worker.sessions[1]!);
    assert.deepEqual(term.screen(), [
      'bento-run: starting',
      'loading service=multi_gpu worker=0 model=model1 device=cuda:0 ... 1.5 s',
      'loading service=multi_gpu worker=0 model=model2 device=cuda:1 ... 0.0 s',
    ]);

    // A log line goes above the progress, which stays at the bottom.
    now += 500;
    events.emit('session-loaded', worker, report('model1', 'cuda:0'));
    progress.write('loaded  service=multi_gpu worker=0 model=model1 device=cuda:0 in 12.0 ms\n');
    assert.deepEqual(term.screen(), [
      'bento-run: starting',
      'loaded  service=multi_gpu worker=0 model=model1 device=cuda:0 in 12.0 ms',
      'loading service=multi_gpu worker=0 model=model2 device=cuda:1 ... 0.5 s',
    ]);
    events.emit('session-loaded', worker, report('model2', 'cuda:1'));
    progress.stop();
    assert.deepEqual(term.screen(), [
      'bento-run: starting',
      'loaded  service=multi_gpu worker=0 model=model1 device=cuda:0 in 12.0 ms',
    ]);
    assert.equal(events.listenerCount('session-loading'), 0, 'stop() stops listening');
  });

  test('the elapsed time counts up while a session loads', async () => {
    const events = new EventEmitter<RuntimeEvents>();
    const term = new FakeTerminal(true);
    let now = 0;
    const progress = showLoadProgress(events, term, { now: () => now, intervalMs: 5 });
    events.emit('session-loading', worker, worker.sessions[0]!);
    now = 2300;
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.match(term.screen().at(-1)!, /model=model1 device=cuda:0 \.\.\. 2\.3 s$/);
    assert.equal(term.screen().length, 1, 'redrawn in place, not appended');
    progress.stop();
    assert.deepEqual(term.screen(), []);
  });

  test('a narrow terminal: the line is cut, the time kept, so it never wraps', () => {
    const events = new EventEmitter<RuntimeEvents>();
    const term = new FakeTerminal(true, 40);
    const progress = showLoadProgress(events, term, { now: () => 0, intervalMs: 60_000 });
    events.emit('session-loading', worker, worker.sessions[0]!);
    assert.deepEqual(term.screen(), ['loading service=multi_gpu wor ... 0.0 s']);
    assert.equal(term.screen()[0]!.length, 39);
    progress.stop();
  });

  test('a thread that dies mid-load takes its lines with it', () => {
    const events = new EventEmitter<RuntimeEvents>();
    const term = new FakeTerminal(true);
    const progress = showLoadProgress(events, term, { intervalMs: 60_000 });
    events.emit('session-loading', worker, worker.sessions[0]!);
    events.emit('worker-exit', worker);
    assert.deepEqual(term.screen(), []);
    progress.stop();
  });

  test('not a terminal: the text passes through, no progress lines', () => {
    const events = new EventEmitter<RuntimeEvents>();
    const out = new FakeTerminal(false);
    const progress = showLoadProgress(events, out);
    events.emit('session-loading', worker, worker.sessions[0]!);
    progress.write('loaded  service=multi_gpu worker=0 model=model1 device=cuda:0 in 12.0 ms\n');
    progress.stop();
    assert.deepEqual(out.chunks, [
      'loaded  service=multi_gpu worker=0 model=model1 device=cuda:0 in 12.0 ms\n',
    ]);
    assert.equal(events.listenerCount('session-loading'), 0);
  });
});
