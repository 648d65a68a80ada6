/**
 * The floor under "wait for the worker" at 1 in flight: a bare MessagePort round trip between
 * this thread and a worker thread that works (spins) as long as one run of the model before it
 * answers. No onnxruntime, no HTTP, no bento-run: what waking a sleeping thread costs on this
 * machine, twice. On a VM it grows with the time the waiting thread slept.
 */
import { MessageChannel, Worker } from 'node:worker_threads';
import { median } from './proc.js';

const SPINNER = `
const { workerData } = require('node:worker_threads');
workerData.port.on('message', (m) => {
  const end = performance.now() + workerData.workMs;
  while (performance.now() < end) {}
  workerData.port.postMessage(m);
});
`;

/** Median round trip less the work, in µs, over `durationMs` of back-to-back trips. */
export async function roundTripFloorUs(workMs: number, durationMs: number): Promise<number> {
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(SPINNER, {
    eval: true,
    workerData: { port: port2, workMs },
    transferList: [port2],
  });
  try {
    await new Promise((resolve) => setTimeout(resolve, 200));
    const trips: number[] = [];
    const end = performance.now() + durationMs;
    while (performance.now() < end) {
      const t0 = performance.now();
      await new Promise((resolve) => {
        port1.once('message', resolve);
        port1.postMessage(0);
      });
      trips.push((performance.now() - t0 - workMs) * 1000);
      // As at 1 in flight over HTTP: the next request comes after a turn of the event loop.
      await new Promise((resolve) => setImmediate(resolve));
    }
    return median(trips);
  } finally {
    port1.close();
    await worker.terminate();
  }
}
