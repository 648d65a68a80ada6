/**
 * Pipelines served as models (DESIGN.md "Pipelines"): a pipeline's signature as a ModelInfo
 * (`platform: 'ensemble'`), and the run of one request through its steps, level by level,
 * steps of one level at the same time. The inference core admits the request and runs each
 * step as a request of the step's model would run (see inference.ts); this file knows only the
 * data flow: which tensors feed which step, which steps a request needs, and when a tensor
 * must be copied because the runtime hands its buffer over to a worker thread.
 */
import { BentoError, RuntimeError } from '../errors.js';
import type { Plan } from '../plan/types.js';
import type { ModelInfo, RuntimeInferResult } from '../runtime/types.js';
import { pipelineOrder } from '../spec/pipelines.js';
import type { PipelineDim, PipelineSpec, PipelineStepSpec, StepSource } from '../spec/types.js';
import { PROTOCOL_TO_ORT } from '../tensor/datatypes.js';
import type { TensorSignature, WireTensor } from '../tensor/types.js';
import type { InferRequest } from './request.js';
import { tensorOutputs } from './request.js';

/** A pipeline the server serves: every step's model is served here. */
export interface ServedPipeline {
  /** The pipeline as clients see it: a model with `platform: 'ensemble'`. */
  readonly info: ModelInfo;
  readonly spec: PipelineSpec;
  /** Steps in the order they run: each level's steps do not depend on each other. */
  readonly levels: readonly (readonly PipelineStepSpec[])[];
  /** Distinct models of its steps, in the order they run. */
  readonly models: readonly string[];
  /** Distinct services of its steps. */
  readonly services: readonly string[];
}

/** Runs one step: its model's inputs, the outputs wanted from it. */
export type StepRunner = (
  step: PipelineStepSpec,
  inputs: Record<string, WireTensor>,
  outputs: string[],
) => Promise<RuntimeInferResult>;

export interface PipelineResult {
  readonly outputs: Readonly<Record<string, WireTensor>>;
  /** The sum of the steps' times inside session.run, ms. */
  readonly inferMs: number;
  /** Steps that ran (a step no requested output needs does not run). */
  readonly steps: number;
}

const dims = (shape: readonly PipelineDim[]): number[] =>
  shape.map((d) => (typeof d === 'number' ? d : -1));

/**
 * The pipelines of the plan whose step models are all served (`--service` may leave some
 * out), keyed by name. A name that a model uses is skipped (the validator refuses it anyway).
 */
export function servedPipelines(
  plan: Plan,
  models: ReadonlyMap<string, ModelInfo>,
): Map<string, ServedPipeline> {
  const out = new Map<string, ServedPipeline>();
  for (const spec of plan.pipelineSpecs ?? []) {
    if (models.has(spec.name)) continue;
    if (!spec.steps.every((s) => models.has(s.model))) continue;
    const byName = new Map(spec.steps.map((s) => [s.name, s]));
    const levels = pipelineOrder(spec).map((l) => l.map((n) => byName.get(n)!));
    const outputs: TensorSignature[] = spec.outputs.map((o) => {
      const step = byName.get(o.step)!;
      const sig = models.get(step.model)!.outputs.find((x) => x.name === o.output);
      return {
        name: o.name,
        type: sig?.type ?? (o.datatype ? PROTOCOL_TO_ORT[o.datatype] : 'unknown'),
        shape: o.shape ? dims(o.shape) : [...(sig?.shape ?? [])],
      };
    });
    out.set(spec.name, {
      info: {
        name: spec.name,
        service: '',
        version: '1',
        platform: 'ensemble',
        inputs: spec.inputs.map((i) => ({
          name: i.name,
          type: PROTOCOL_TO_ORT[i.datatype],
          shape: dims(i.shape),
        })),
        outputs,
        maxBatchSize: 0,
        batching: null,
      },
      spec,
      levels,
      models: [...new Set(levels.flat().map((s) => s.model))],
      services: [...new Set(spec.steps.map((s) => s.service))],
    });
  }
  return out;
}

const keyOf = (s: StepSource): string =>
  s.kind === 'input' ? `input\u0000${s.input}` : `step\u0000${s.step}\u0000${s.output}`;
const outputKey = (step: string, output: string) => `step\u0000${step}\u0000${output}`;

/** A copy that owns its buffer: the original may be handed to a worker (and detached). */
function copyTensor(t: WireTensor): WireTensor {
  return { type: t.type, dims: [...t.dims], data: t.data.slice() } as WireTensor;
}

/**
 * The error of a failed step, naming the pipeline, the step and its model; the same class,
 * code and kind, so that frontends answer as they would for the model's own request.
 */
export function stepError(pipeline: string, step: PipelineStepSpec, e: unknown): Error {
  const text = e instanceof Error ? e.message : String(e);
  const message = `pipeline \`${pipeline}\`, step \`${step.name}\` (model \`${step.model}\`): ${text}`;
  if (!(e instanceof BentoError)) {
    return new RuntimeError('BENTO_ERR_RUNTIME_INFERENCE_FAILED', message, { cause: e });
  }
  const wrapped = Object.create(Object.getPrototypeOf(e)) as BentoError;
  Object.assign(wrapped, e);
  Object.defineProperty(wrapped, 'message', { value: message, writable: true, configurable: true });
  Object.defineProperty(wrapped, 'cause', { value: e, writable: true, configurable: true });
  Object.defineProperty(wrapped, 'stack', {
    value: `${e.name}: ${message}\n${(e.stack ?? '').split('\n').slice(1).join('\n')}`,
    writable: true,
    configurable: true,
  });
  return wrapped;
}

/**
 * Runs `request` (checked against the pipeline's signature) through the steps the requested
 * outputs need. Each tensor goes to its consumers; every consumer but the last gets a copy,
 * and a tensor that is also a pipeline output is never handed over, so no buffer is used after
 * it was transferred. A failed step rejects with `stepError`.
 */
export async function runPipeline(
  p: ServedPipeline,
  request: InferRequest,
  runStep: StepRunner,
): Promise<PipelineResult> {
  const wanted = request.outputs.length > 0 ? request.outputs : tensorOutputs(p.info);
  const outputSpecs = wanted.map((name) => p.spec.outputs.find((o) => o.name === name)!);

  // Backwards from the wanted outputs: the steps that must run and what each must return.
  const need = new Map<string, Set<string>>();
  const needOutput = (step: string, output: string) => {
    const s = need.get(step) ?? new Set<string>();
    s.add(output);
    need.set(step, s);
  };
  for (const o of outputSpecs) needOutput(o.step, o.output);
  for (const level of [...p.levels].reverse()) {
    for (const step of level) {
      if (!need.has(step.name)) continue;
      for (const src of Object.values(step.inputs)) {
        if (src.kind === 'step') needOutput(src.step, src.output);
      }
    }
  }

  // How many consumers each tensor has left; pipeline outputs are kept whole.
  const uses = new Map<string, number>();
  for (const step of p.levels.flat()) {
    if (!need.has(step.name)) continue;
    for (const src of Object.values(step.inputs)) {
      const k = keyOf(src);
      uses.set(k, (uses.get(k) ?? 0) + 1);
    }
  }
  const kept = new Set(outputSpecs.map((o) => outputKey(o.step, o.output)));
  const values = new Map<string, WireTensor>();
  for (const [name, t] of Object.entries(request.inputs)) values.set(`input\u0000${name}`, t);

  const take = (k: string): WireTensor => {
    const t = values.get(k)!;
    const left = (uses.get(k) ?? 1) - 1;
    uses.set(k, left);
    if (left > 0 || kept.has(k)) return copyTensor(t);
    values.delete(k);
    return t;
  };

  let inferMs = 0;
  let steps = 0;
  for (const level of p.levels) {
    const runs = level
      .filter((step) => need.has(step.name))
      .map((step) => {
        const inputs: Record<string, WireTensor> = {};
        for (const [name, src] of Object.entries(step.inputs)) inputs[name] = take(keyOf(src));
        const outputs = [...need.get(step.name)!];
        return runStep(step, inputs, outputs).then(
          (r) => {
            for (const o of outputs) {
              const t = r.outputs[o];
              if (!t) {
                throw stepError(
                  p.spec.name,
                  step,
                  new RuntimeError(
                    'BENTO_ERR_RUNTIME_INFERENCE_FAILED',
                    `the model returned no output \`${o}\``,
                  ),
                );
              }
              values.set(outputKey(step.name, o), t);
            }
            inferMs += r.inferMs;
            steps++;
          },
          (e: unknown) => {
            throw stepError(p.spec.name, step, e);
          },
        );
      });
    await Promise.all(runs);
  }

  const outputs: Record<string, WireTensor> = {};
  for (const o of outputSpecs) outputs[o.name] = values.get(outputKey(o.step, o.output))!;
  return { outputs, inferMs, steps };
}
