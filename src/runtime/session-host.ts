/**
 * The worker thread's whole job: open the sessions of its slot of the plan on its device, then
 * run the requests that arrive on its port, one at a time in arrival order, and post outputs
 * back as transferred buffers. No YAML, HTTP or policy here.
 *
 * `createWorker` is what the shipped worker.ts exports; a test's fixture worker calls it with
 * hooks of its own (the CPU for every session, a delay), which the shipped worker never passes.
 */
import { type MessagePort, parentPort, receiveMessageOnPort, threadId } from 'node:worker_threads';
// Before onnxruntime-node: see float16-guard.ts.
import './float16-guard.js';
import ort from 'onnxruntime-node';
import { Piscina } from 'piscina';
import type { PlannedSession } from '../plan/types.js';
import { addTensorBuffers, normaliseData } from '../tensor/datatypes.js';
import type { TensorSignature, WireTensor } from '../tensor/types.js';
import type {
  InferReplyMessage,
  InferRequestMessage,
  InitTask,
  LoadFailure,
  ProgressMessage,
  ProviderOption,
  SessionReport,
  WorkerData,
  WorkerReport,
} from './messages.js';

// The environment's logger too (it is created with the first session): fatal lines only.
ort.env.logLevel = 'fatal';

export interface WorkerHooks {
  /** The execution providers for a session; default: CUDA on its planned device, or the CPU. */
  readonly providers?: (session: PlannedSession) => ProviderOption[];
  /** Runs before any session is created. */
  readonly beforeLoad?: () => Promise<void>;
}

function plannedProviders(s: PlannedSession): ProviderOption[] {
  return s.deviceId === null ? [{ name: 'cpu' }] : [{ name: 'cuda', deviceId: s.deviceId }];
}

function signature(m: ort.InferenceSession.ValueMetadata): TensorSignature {
  if (!m.isTensor) return { name: m.name, type: 'unknown', shape: [] };
  return {
    name: m.name,
    type: m.type as TensorSignature['type'],
    shape: m.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)),
  };
}

function sessionOptions(s: PlannedSession, providers: ProviderOption[]) {
  const o = s.session;
  return {
    executionProviders: providers,
    graphOptimizationLevel: o.graphOptimization,
    executionMode: o.executionMode,
    ...(o.intraOpThreads ? { intraOpNumThreads: o.intraOpThreads } : {}),
    ...(o.interOpThreads ? { interOpNumThreads: o.interOpThreads } : {}),
    ...(o.memoryArena === undefined ? {} : { enableCpuMemArena: o.memoryArena }),
    ...(o.memoryPattern === undefined ? {} : { enableMemPattern: o.memoryPattern }),
    ...(o.arenaExtendStrategy === undefined
      ? {}
      : { extra: { session: { 'arena.extend_strategy': o.arenaExtendStrategy } } }),
    // onnxruntime prints its own lines on stderr, coloured plain text that bypasses bento-run's
    // logger and its --log-format; every error it reports also reaches bento-run (and the
    // client) as the thrown error, so only its fatal lines are let through.
    logSeverityLevel: 4 as const,
  };
}

function progress(m: ProgressMessage): void {
  parentPort?.postMessage(m);
}

async function openSessions(
  data: WorkerData,
  sessions: Map<string, ort.InferenceSession>,
  hooks: WorkerHooks,
): Promise<WorkerReport | LoadFailure> {
  await hooks.beforeLoad?.();
  const reports: SessionReport[] = [];
  for (const s of data.worker.sessions) {
    const providers = (hooks.providers ?? plannedProviders)(s);
    const started = performance.now();
    progress({ kind: 'session-loading', session: s });
    try {
      const session = await ort.InferenceSession.create(s.path, sessionOptions(s, providers));
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
      progress({ kind: 'session-loaded', report });
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      const cudaProviderMissing = /Failed to load (shared )?library|providers_(cuda|shared)/.test(
        message,
      );
      return { failed: true, model: s.model, device: s.device, message, cudaProviderMissing };
    }
  }
  return { service: data.worker.service, worker: data.worker.worker, threadId, sessions: reports };
}

async function runOne(
  sessions: ReadonlyMap<string, ort.InferenceSession>,
  m: InferRequestMessage,
): Promise<{ reply: InferReplyMessage; transfer: ArrayBuffer[] }> {
  const session = sessions.get(m.model);
  if (!session)
    return { reply: { id: m.id, error: `model ${m.model} is not loaded here` }, transfer: [] };
  const feeds: Record<string, ort.Tensor> = {};
  for (const name in m.inputs) {
    const t = m.inputs[name]!;
    feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
  }
  const started = performance.now();
  try {
    const results =
      m.outputs.length > 0 ? await session.run(feeds, [...m.outputs]) : await session.run(feeds);
    const inferMs = performance.now() - started;
    const outputs: Record<string, WireTensor> = {};
    for (const name in results) {
      const t = results[name]!;
      const type = t.type as WireTensor['type'];
      outputs[name] = { type, dims: t.dims, data: normaliseData(type, t.data) };
    }
    return { reply: { id: m.id, outputs, inferMs }, transfer: addTensorBuffers(outputs, []) };
  } catch (e) {
    return { reply: { id: m.id, error: e instanceof Error ? e.message : String(e) }, transfer: [] };
  }
}

/**
 * Serves requests from `port` strictly in arrival order, one session.run at a time; one the
 * main thread withdrew after posting it is answered without running. Answers go back in one
 * message per run of short requests: an answer waits for the next ones only while the queue is
 * not empty and it would be sent at most `holdMs` late (judged by the last run's length), so a
 * long run's answer goes at once and the last answer of a burst never waits. A request that
 * reached the port during a run counts as queued: it is taken from the port when the run ends.
 */
function serve(
  port: MessagePort,
  withdrawn: Int32Array,
  sessions: ReadonlyMap<string, ort.InferenceSession>,
  holdMs: number,
): void {
  const queue: InferRequestMessage[] = [];
  let running = false;
  let replies: InferReplyMessage[] = [];
  let transfer: ArrayBuffer[] = [];
  let oldest = 0;
  function flush(): void {
    port.postMessage(replies, transfer);
    replies = [];
    transfer = [];
  }
  async function work(): Promise<void> {
    running = true;
    while (queue.length > 0) {
      const m = queue.shift()!;
      const started = performance.now();
      if (Atomics.load(withdrawn, m.id % withdrawn.length) === 1) {
        replies.push({ id: m.id, withdrawn: true });
      } else {
        const done = await runOne(sessions, m);
        replies.push(done.reply);
        for (const b of done.transfer) transfer.push(b);
      }
      const now = performance.now();
      if (replies.length === 1) oldest = now;
      // Requests that arrived during the run wait in the port until the event loop turns: take
      // them now, so that "nothing is queued" means nothing was sent.
      if (queue.length === 0) receivePending();
      // The next run is about as long as this one: hold the answers only if that keeps them
      // within holdMs.
      if (queue.length === 0 || now - oldest + (now - started) > holdMs) flush();
    }
    running = false;
  }
  function enqueue(batch: readonly InferRequestMessage[]): void {
    for (const m of batch) queue.push(m);
  }
  function receivePending(): void {
    for (let got = receiveMessageOnPort(port); got; got = receiveMessageOnPort(port)) {
      enqueue(got.message as readonly InferRequestMessage[]);
    }
  }
  port.on('message', (batch: readonly InferRequestMessage[]) => {
    enqueue(batch);
    if (!running) void work();
  });
}

/** The Piscina task function of a worker thread. */
export function createWorker(
  hooks: WorkerHooks = {},
): (task: InitTask) => Promise<WorkerReport | LoadFailure> {
  const data = Piscina.workerData as WorkerData;
  const sessions = new Map<string, ort.InferenceSession>();
  // Loading starts as soon as the thread does. It never rejects: a failed load is reported
  // through the init task instead of killing the thread during its bootstrap.
  const loading = openSessions(data, sessions, hooks);
  return async (task) => {
    const loaded = await loading;
    if (!('failed' in loaded)) serve(task.port, task.withdrawn, sessions, task.holdMs);
    return loaded;
  };
}
