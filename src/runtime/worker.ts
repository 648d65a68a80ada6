/**
 * One worker thread: opens the sessions of its slot of the plan on its device, then runs
 * tensors. It receives its slot as workerData (each worker has its own single-thread pool, so a
 * replacement thread gets the same slot and device), and returns outputs as transferred buffers.
 */
import { BroadcastChannel, parentPort, threadId } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { Piscina } from 'piscina';
import type { PlannedSession } from '../plan/types.js';
import type {
  InferResult,
  LoadFailure,
  ProviderOption,
  SessionReport,
  Task,
  TensorSignature,
  WireTensor,
  WorkerData,
  WorkerReport,
} from './messages.js';
import { normaliseData } from './tensor.js';

const data = Piscina.workerData as WorkerData;
// Test switch (crashWorker's failBootstraps): exit before this thread is ready, as a thread
// whose start breaks would. Counts down in memory shared with the main thread.
if (Atomics.sub(new Int32Array(data.bootstrapCrashes), 0, 1) > 0) process.exit(71);
const sessions = new Map<string, ort.InferenceSession>();
// Loading starts as soon as the thread does; tasks wait for it. It never rejects, so a failed
// load is reported through the init task instead of killing the thread during bootstrap.
const loading: Promise<WorkerReport | LoadFailure> = load();
// Test switch (crashWorker): exit at this thread's next turn of its event loop, even mid-load,
// but never inside a native onnxruntime call: a thread terminated there aborts the process.
const crashChannel = new BroadcastChannel(data.crashChannel);
crashChannel.onmessage = (e) => {
  if ((e as MessageEvent).data === threadId) process.exit(70);
};
crashChannel.unref();

function providersFor(s: PlannedSession): ProviderOption[] {
  if (s.deviceId === null || data.forceCpuSessions) return [{ name: 'cpu' }];
  return [{ name: 'cuda', deviceId: s.deviceId }];
}

function signature(m: ort.InferenceSession.ValueMetadata): TensorSignature {
  if (!m.isTensor) return { name: m.name, type: 'unknown', shape: [] };
  return {
    name: m.name,
    type: m.type as TensorSignature['type'],
    shape: m.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)),
  };
}

async function load(): Promise<WorkerReport | LoadFailure> {
  if (data.loadDelayMs > 0) await new Promise((r) => setTimeout(r, data.loadDelayMs));
  const reports: SessionReport[] = [];
  for (const s of data.worker.sessions) {
    const providers = providersFor(s);
    const started = performance.now();
    try {
      const session = await ort.InferenceSession.create(s.path, {
        executionProviders: providers,
        graphOptimizationLevel: s.session.graphOptimization,
        executionMode: s.session.executionMode,
        ...(s.session.intraOpThreads ? { intraOpNumThreads: s.session.intraOpThreads } : {}),
        ...(s.session.interOpThreads ? { interOpNumThreads: s.session.interOpThreads } : {}),
      });
      sessions.set(s.model, session);
      const report: SessionReport = {
        model: s.model,
        device: s.device,
        deviceId: s.deviceId,
        providers,
        loadMs: performance.now() - started,
        inputs: session.inputMetadata.map(signature),
        outputs: session.outputMetadata.map(signature),
      };
      reports.push(report);
      parentPort?.postMessage({ kind: 'session-loaded', worker: data.worker.worker, report });
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      return {
        failed: true,
        model: s.model,
        device: s.device,
        message,
        cudaProviderMissing: /Failed to load (shared )?library|providers_(cuda|shared)/.test(
          message,
        ),
      };
    }
  }
  return { service: data.worker.service, worker: data.worker.worker, threadId, sessions: reports };
}

async function infer(task: Extract<Task, { kind: 'infer' }>): Promise<InferResult> {
  const session = sessions.get(task.model);
  if (!session) throw new Error(`model ${task.model} is not loaded in this worker`);
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(task.inputs)) {
    feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
  }
  const started = performance.now();
  const results =
    task.outputs.length > 0
      ? await session.run(feeds, [...task.outputs])
      : await session.run(feeds);
  const inferMs = performance.now() - started;
  const outputs: Record<string, WireTensor> = {};
  const transfer = new Set<ArrayBufferLike>();
  for (const [name, t] of Object.entries(results)) {
    const type = t.type as WireTensor['type'];
    const out = normaliseData(type, t.data);
    outputs[name] = { type, dims: t.dims, data: out };
    if (!Array.isArray(out)) transfer.add(out.buffer);
  }
  // Piscina's transferable protocol: the value to post, and the buffers to move with it.
  const movable = {
    [Piscina.transferableSymbol]: [...transfer],
    [Piscina.valueSymbol]: { outputs, inferMs },
  } as unknown as Parameters<typeof Piscina.move>[0];
  return Piscina.move(movable) as unknown as InferResult;
}

export default async function run(task: Task): Promise<WorkerReport | LoadFailure | InferResult> {
  switch (task.kind) {
    case 'init':
      return loading;
    case 'crash':
      // Test switch: a thread dying as a native crash would (exit code 70, EX_SOFTWARE).
      if (task.threadId === threadId) process.exit(70);
      throw new Error(`crash task for thread ${task.threadId}, not this one`);
    case 'infer': {
      const loaded = await loading;
      if ('failed' in loaded) throw new Error(`worker failed to load: ${loaded.message}`);
      return infer(task);
    }
  }
  throw new Error('unknown task');
}
