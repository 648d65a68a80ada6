/**
 * The edges of a pipeline, a source feeding a model input: datatypes, ranks and dimensions
 * (see pipeline-shapes.ts for how named sizes travel), checked in data-flow order so that a
 * size is set where it comes from and reported where it conflicts.
 */
import { pipelineOrder } from './pipeline-graph.js';
import {
  createDimensions,
  type Dimensions,
  datatypeName,
  type KnownSize,
  type Term,
} from './pipeline-shapes.js';
import {
  type Env,
  infoOf,
  inputPath,
  inputWho,
  type Problem,
  type StepView,
  showDims,
  stepByName,
  type View,
} from './pipeline-view.js';
import type { StepSource } from './types.js';

function checkOrder(v: View): StepView[] {
  try {
    const steps = v.steps.map((s) => ({
      name: s.name,
      inputs: Object.fromEntries(
        (s.inputs ?? []).flatMap((i) => (i.source ? [[i.name, i.source] as const] : [])),
      ),
    }));
    return pipelineOrder({ steps }).flatMap((level) => level.map((n) => stepByName(v, n)!));
  } catch {
    return [...v.steps]; // a cycle, reported on its own
  }
}

/** One end of an edge: a tensor's datatype and dims, and how messages name it. */
interface End {
  readonly datatype: string | null;
  readonly terms: readonly Term[] | null;
  readonly shown: string;
  readonly what: string;
}

function sourceEnd(v: View, env: Env, dims: Dimensions, src: StepSource): End | null {
  if (src.kind === 'input') {
    const input = v.inputs?.find((i) => i.name === src.input);
    if (!input) return null;
    return {
      datatype: input.datatype,
      terms: input.shape && dims.pipelineTerms(input.shape),
      shown: input.shape ? ` [${input.shape.join(', ')}]` : '',
      what: `pipeline input \`${input.name}\``,
    };
  }
  const from = stepByName(v, src.step);
  const t = infoOf(env, from)?.outputs.find((o) => o.name === src.output);
  if (!from || !t) return null;
  return {
    datatype: datatypeName(t.elementType),
    terms: t.dims && dims.modelTerms(from.name, t.dims),
    shown: t.dims ? ` ${showDims(t.dims)}` : '',
    what: `output \`${t.name}\` of step \`${from.name}\``,
  };
}

const why = (k: KnownSize) => (k.why ? ` (${k.why})` : '');

/** Datatype, rank and dims of one edge: a source feeding input `input` of step `step`. */
function edgeProblems(
  v: View,
  step: StepView,
  input: string,
  src: End,
  dst: End,
  dims: Dimensions,
) {
  const who = inputWho(v, step.name, input);
  const problem = (code: string, message: string): Problem => ({
    code,
    path: inputPath(v, step.name, input),
    key: true,
    message: `${who}: ${message}`,
  });
  const out: Problem[] = [];
  if (src.datatype !== null && dst.datatype !== null && src.datatype !== dst.datatype) {
    out.push(
      problem(
        'pipeline-datatype-mismatch',
        `${dst.what} takes ${dst.datatype}, but ${src.what} is ${src.datatype}`,
      ),
    );
  }
  if (src.terms === null || dst.terms === null) return out;
  if (src.terms.length !== dst.terms.length) {
    out.push(
      problem(
        'pipeline-rank-mismatch',
        `${dst.what} takes rank ${dst.terms.length}${dst.shown}, but ${src.what} has rank ${src.terms.length}${src.shown}`,
      ),
    );
    return out;
  }
  src.terms.forEach((t, i) => {
    const conflict = dims.unify(
      t,
      dst.terms?.[i] ?? null,
      `input \`${input}\` of step \`${step.name}\``,
    );
    if (!conflict) return;
    const [s, d] = conflict;
    out.push(
      problem(
        'pipeline-dimension-mismatch',
        `dimension ${i} is ${d.size} in ${dst.what}${dst.shown}${why(d)} but ${s.size} in ${src.what}${src.shown}${why(s)}`,
      ),
    );
  });
  return out;
}

/** Every edge in data-flow order; the dimensions that result, for resolution. */
export function analyseEdges(v: View, env: Env): { problems: Problem[]; dims: Dimensions } {
  const dims = createDimensions();
  const problems: Problem[] = [];
  for (const step of checkOrder(v)) {
    const info = infoOf(env, step);
    for (const input of step.inputs ?? []) {
      const t = info?.inputs.find((i) => i.name === input.name);
      const src = input.source && sourceEnd(v, env, dims, input.source);
      if (!t || !src) continue;
      const dst: End = {
        datatype: datatypeName(t.elementType),
        terms: t.dims && dims.modelTerms(step.name, t.dims),
        shown: t.dims ? ` ${showDims(t.dims)}` : '',
        what: `model \`${step.model}\``,
      };
      problems.push(...edgeProblems(v, step, input.name, src, dst, dims));
    }
  }
  return { problems, dims };
}
