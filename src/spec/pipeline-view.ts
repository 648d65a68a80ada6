/**
 * A pipeline as far as the document lets it be read: the one view that the checks and the
 * resolution share, defensive about shapes the schema already reported. With it, the helpers
 * that name a pipeline's parts in paths and messages.
 */
import type { ProtocolDatatype } from '../tensor/datatypes.js';
import { asRecord, isRecord, suggester } from './locator.js';
import type { OnnxInfo, OnnxTensorInfo } from './onnx-info.js';
import type { PathSegment } from './parse.js';
import { PROTOCOL_DATATYPES } from './pipeline-shapes.js';
import type { PipelineDim, StepSource } from './types.js';

/** A diagnostic before it has a position: what `Locator.diag` takes. */
export interface Problem {
  readonly code: string;
  readonly path: readonly PathSegment[];
  readonly message: string;
  readonly key?: boolean;
  readonly suggestion?: string;
  readonly severity?: 'warning';
}

/** What the checks know of the rest of the spec. */
export interface Env {
  readonly models: readonly string[];
  /** Models some service lists (near misses count); null when `services:` itself is broken. */
  readonly served: ReadonlySet<string> | null;
  /** The model's signature; undefined when its file was not read or is not a model. */
  readonly info: (model: string) => OnnxInfo | undefined;
}

export interface InputView {
  readonly name: string;
  readonly datatype: ProtocolDatatype | null;
  readonly shape: readonly PipelineDim[] | null;
}

export interface StepInputView {
  readonly name: string;
  readonly raw: unknown;
  /** Null when the source is malformed (see `sourceProblem`). */
  readonly source: StepSource | null;
}

export interface StepView {
  readonly name: string;
  readonly model: string | undefined;
  /** Null when `inputs` is missing or not a mapping (the schema says so). */
  readonly inputs: readonly StepInputView[] | null;
}

export interface OutputView {
  readonly name: string;
  readonly step: string | undefined;
  readonly output: string | undefined;
}

export interface View {
  readonly name: string;
  readonly inputs: readonly InputView[] | null;
  readonly steps: readonly StepView[];
  /** False when `steps` is missing or not a mapping (the schema says so). */
  readonly stepsDeclared: boolean;
  readonly outputs: readonly OutputView[] | null;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

const isDim = (d: unknown): d is PipelineDim =>
  typeof d === 'string' || (typeof d === 'number' && Number.isInteger(d) && d >= -1);

function readSource(raw: unknown): StepSource | null {
  const r = asRecord(raw);
  if (typeof r.input === 'string' && r.step === undefined && r.output === undefined) {
    return { kind: 'input', input: r.input };
  }
  if (typeof r.step === 'string' && typeof r.output === 'string' && r.input === undefined) {
    return { kind: 'step', step: r.step, output: r.output };
  }
  return null;
}

function readView(name: string, raw: unknown): View {
  const p = asRecord(raw);
  const inputs = isRecord(p.inputs)
    ? Object.entries(p.inputs).map(([n, v]): InputView => {
        const t = asRecord(v);
        const datatype = PROTOCOL_DATATYPES.find((d) => d === t.datatype) ?? null;
        const shape = Array.isArray(t.shape) && t.shape.every(isDim) ? t.shape : null;
        return { name: n, datatype, shape };
      })
    : null;
  const steps = Object.entries(asRecord(p.steps)).map(([n, v]): StepView => {
    const s = asRecord(v);
    const inputs = isRecord(s.inputs)
      ? Object.entries(s.inputs).map(([i, src]) => ({ name: i, raw: src, source: readSource(src) }))
      : null;
    return { name: n, model: str(s.model), inputs };
  });
  const outputs = isRecord(p.outputs)
    ? Object.entries(p.outputs).map(([n, v]): OutputView => {
        const o = asRecord(v);
        return { name: n, step: str(o.step), output: str(o.output) };
      })
    : null;
  return { name, inputs, steps, stepsDeclared: isRecord(p.steps), outputs };
}

/** The pipelines of a document, as far as they can be read. */
export function readViews(value: unknown): View[] {
  return Object.entries(asRecord(asRecord(value).pipelines)).map(([n, p]) => readView(n, p));
}

// ---- message helpers -----------------------------------------------------------------------

/** Names for a message: the first few, then how many more. */
export function listOf(names: readonly string[], max = 10): string {
  if (names.length === 0) return 'none';
  const shown = names.slice(0, max).join(', ');
  return names.length > max ? `${shown} and ${names.length - max} more` : shown;
}

/** `; did you mean `x`?` for a near miss, else ` (noun: the choices)`, with the suggestion. */
export function choices(word: string, valid: readonly string[], noun: string, listed = valid) {
  const best = suggester(valid)(word);
  return {
    hint: best ? `; did you mean \`${best}\`?` : ` (${noun}: ${listOf(listed)})`,
    extra: best ? { suggestion: best } : {},
  };
}

export const showDims = (dims: readonly (number | string | null)[]) =>
  `[${dims.map((d) => d ?? '?').join(', ')}]`;

export const tensorNames = (ts: readonly OnnxTensorInfo[]) => ts.map((t) => t.name);

export const stepPath = (v: View, step: string): PathSegment[] => [
  'pipelines',
  v.name,
  'steps',
  step,
];
export const inputPath = (v: View, step: string, input: string): PathSegment[] => [
  ...stepPath(v, step),
  'inputs',
  input,
];

export const stepWho = (v: View, step: string) => `pipeline \`${v.name}\`, step \`${step}\``;
export const inputWho = (v: View, step: string, input: string) =>
  `${stepWho(v, step)}, input \`${input}\``;

/** The step's model signature, when the model is declared and its file was read. */
export function infoOf(env: Env, step: StepView | undefined): OnnxInfo | undefined {
  return step?.model !== undefined && env.models.includes(step.model)
    ? env.info(step.model)
    : undefined;
}

export const stepByName = (v: View, name: string) => v.steps.find((s) => s.name === name);
