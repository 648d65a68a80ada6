/**
 * Pipelines (DESIGN.md "Pipelines"): models chained in the spec. The checks a JSON Schema cannot
 * express, against the tensor names, datatypes and dims read from the ONNX files, and the
 * resolution into `PipelineSpec`s. Both read the document through one view (pipeline-view.ts),
 * and the checks stay silent where a schema error or another check is the root cause (a step
 * naming an unknown model gets no tensor checks).
 */
import type { CheckContext } from './check-context.js';
import type { Diagnostic } from './diagnostics.js';
import { asRecord, isRecord, suggester } from './locator.js';
import type { OnnxInfo } from './onnx-info.js';
import type { PathSegment } from './parse.js';
import { analyseEdges } from './pipeline-edges.js';
import { findCycles, stepDependencies } from './pipeline-graph.js';
import { protocolDatatype } from './pipeline-shapes.js';
import {
  choices,
  type Env,
  infoOf,
  inputPath,
  inputWho,
  listOf,
  type Problem,
  readViews,
  type StepInputView,
  type StepView,
  stepByName,
  stepPath,
  stepWho,
  tensorNames,
  type View,
} from './pipeline-view.js';
import type { BentoFile, PipelineSpec } from './types.js';

export { type OrderedStep, pipelineOrder } from './pipeline-graph.js';

// ---- checks: each a small function from one pipeline to its problems -----------------------

type Check = (v: View, env: Env) => Problem[];

const namedLikeModel: Check = (v, env) =>
  env.models.includes(v.name)
    ? [
        {
          code: 'pipeline-named-like-model',
          path: ['pipelines', v.name],
          key: true,
          message: `pipeline \`${v.name}\` has the name of a model: both would be /v2/models/${v.name}; rename the pipeline or the model`,
        },
      ]
    : [];

const stepModels: Check = (v, env) =>
  v.steps.flatMap((s): Problem[] => {
    if (s.model === undefined) return [];
    const path = [...stepPath(v, s.name), 'model'];
    if (!env.models.includes(s.model)) {
      const { hint, extra } = choices(s.model, env.models, 'declared');
      return [
        {
          code: 'pipeline-unknown-model',
          path,
          message: `${stepWho(v, s.name)}: model \`${s.model}\` is not declared under models${hint}`,
          ...extra,
        },
      ];
    }
    if (env.served === null || env.served.has(s.model)) return [];
    return [
      {
        code: 'pipeline-model-not-served',
        path,
        message: `${stepWho(v, s.name)}: model \`${s.model}\` is not served by any service, so the step cannot run; add it to a service's models`,
      },
    ];
  });

/** A source that is neither `{input}` nor `{step, output}`: what is wrong with it. */
function sourceProblem(v: View, env: Env, step: StepView, input: StepInputView): Problem | null {
  if (input.source !== null || !isRecord(input.raw)) return null;
  const r = input.raw;
  const who = inputWho(v, step.name, input.name);
  const has = (k: string) => r[k] !== undefined;
  let message: string;
  if (Object.keys(r).length === 0) {
    message = `${who}: the source is empty; write { input: NAME } for a pipeline input or { step: STEP, output: NAME } for an output of another step`;
  } else if (has('input') && (has('step') || has('output'))) {
    message = `${who}: a source is either a pipeline input ({ input: NAME }) or an output of a step ({ step: STEP, output: NAME }), not both`;
  } else if (has('step') && !has('output')) {
    const outputs = tensorNames(infoOf(env, stepByName(v, String(r.step)))?.outputs ?? []);
    const which = outputs.length ? ` (its outputs: ${listOf(outputs)})` : '';
    message = `${who}: names step \`${String(r.step)}\` but not which of its outputs; add output${which}`;
  } else if (has('output') && !has('step')) {
    const having = v.steps
      .filter((s) => s !== step && infoOf(env, s)?.outputs.some((t) => t.name === r.output))
      .map((s) => s.name);
    const which = having.length
      ? ` (steps with an output \`${String(r.output)}\`: ${listOf(having)})`
      : '';
    message = `${who}: names output \`${String(r.output)}\` but not the step it comes from; add step${which}`;
  } else {
    return null; // wrong types or unknown keys only: the schema says so.
  }
  return {
    code: 'pipeline-bad-source',
    path: inputPath(v, step.name, input.name),
    key: true,
    message,
  };
}

/** A source naming a pipeline input, step or step output that does not exist. */
function sourceReference(v: View, env: Env, step: StepView, input: StepInputView): Problem[] {
  const src = input.source;
  if (src === null) return [];
  const who = inputWho(v, step.name, input.name);
  const path = inputPath(v, step.name, input.name);
  if (src.kind === 'input') {
    const names = (v.inputs ?? []).map((i) => i.name);
    if (v.inputs === null || names.includes(src.input)) return [];
    const { hint, extra } = choices(src.input, names, 'its inputs');
    return [
      {
        code: 'pipeline-unknown-input',
        path: [...path, 'input'],
        message: `${who}: \`${src.input}\` is not an input of this pipeline${hint}`,
        ...extra,
      },
    ];
  }
  const from = stepByName(v, src.step);
  if (from === undefined) {
    const { hint, extra } = choices(
      src.step,
      v.steps.map((s) => s.name).filter((s) => s !== step.name),
      'its steps',
    );
    return [
      {
        code: 'pipeline-unknown-step',
        path: [...path, 'step'],
        message: `${who}: \`${src.step}\` is not a step of this pipeline${hint}`,
        ...extra,
      },
    ];
  }
  return unknownOutput(env, from, src.output, who, [...path, 'output']);
}

/** `output` of step `from`, which its model does not have. */
function unknownOutput(
  env: Env,
  from: StepView,
  output: string,
  who: string,
  path: PathSegment[],
): Problem[] {
  const outputs = tensorNames(infoOf(env, from)?.outputs ?? []);
  if (outputs.length === 0 || outputs.includes(output)) return [];
  const { hint, extra } = choices(output, outputs, 'its outputs');
  return [
    {
      code: 'pipeline-unknown-tensor',
      path,
      message: `${who}: model \`${from.model}\` of step \`${from.name}\` has no output \`${output}\`${hint}`,
      ...extra,
    },
  ];
}

/** The model inputs a step does not name. */
const unfedOf = (s: StepView, modelInputs: readonly string[]) =>
  modelInputs.filter((m) => !(s.inputs ?? []).some((i) => i.name === m));

const stepInputs: Check = (v, env) =>
  v.steps.flatMap((s) =>
    (s.inputs ?? []).flatMap((input): Problem[] => {
      const out: Problem[] = [];
      const modelInputs = tensorNames(infoOf(env, s)?.inputs ?? []);
      if (infoOf(env, s) && !modelInputs.includes(input.name)) {
        // The input meant is one not fed yet (`c:` beside `a:` means `b:`).
        const { hint, extra } = choices(
          input.name,
          unfedOf(s, modelInputs),
          'its inputs',
          modelInputs,
        );
        out.push({
          code: 'pipeline-unknown-tensor',
          path: inputPath(v, s.name, input.name),
          key: true,
          message: `${stepWho(v, s.name)}: model \`${s.model}\` has no input \`${input.name}\`${hint}`,
          ...extra,
        });
      }
      const bad = sourceProblem(v, env, s, input);
      return [...out, ...(bad ? [bad] : []), ...sourceReference(v, env, s, input)];
    }),
  );

const unfedInputs: Check = (v, env) =>
  v.steps.flatMap((s): Problem[] => {
    const info = infoOf(env, s);
    if (!info || s.inputs === null) return [];
    const modelInputs = tensorNames(info.inputs);
    const given = s.inputs.map((i) => i.name);
    // A misspelt input (`imput:`) is reported as such, not again as `input` left unfed.
    const meant = suggester(unfedOf(s, modelInputs));
    const misspelt = new Set(given.filter((g) => !modelInputs.includes(g)).map(meant));
    const unfed = unfedOf(s, modelInputs).filter((m) => !misspelt.has(m));
    if (unfed.length === 0) return [];
    const names = unfed.map((m) => `\`${m}\``);
    const list =
      names.length > 1 ? `${names.slice(0, -1).join(', ')} and ${names.at(-1)}` : names[0];
    const first = unfed[0];
    return [
      {
        code: 'pipeline-unfed-input',
        path: [...stepPath(v, s.name), 'inputs'],
        key: true,
        message: `${stepWho(v, s.name)}: model \`${s.model}\` needs input${unfed.length > 1 ? 's' : ''} ${list}, which ${unfed.length > 1 ? 'are' : 'is'} not fed; add ${first}: { input: NAME } or ${first}: { step: STEP, output: NAME } under inputs`,
      },
    ];
  });

/** Step name -> the steps it takes outputs from (known steps only). */
function dependencies(v: View): Map<string, string[]> {
  return stepDependencies(
    v.steps.map((s) => ({
      name: s.name,
      deps: (s.inputs ?? []).flatMap((i) => (i.source?.kind === 'step' ? [i.source.step] : [])),
    })),
  );
}

const cycles: Check = (v) =>
  findCycles(dependencies(v)).map((cycle): Problem => {
    const [start] = cycle as [string, ...string[]];
    const before = cycle.at(-2);
    const edge = stepByName(v, start)?.inputs?.find(
      (i) => i.source?.kind === 'step' && i.source.step === before,
    );
    const message =
      cycle.length === 2
        ? `step \`${start}\` takes an output of its own, so it can never run`
        : `steps ${cycle.join(' -> ')} form a cycle (each takes an output of the one before it), so none of them can run first`;
    return {
      code: 'pipeline-cycle',
      path: edge ? [...inputPath(v, start, edge.name), 'step'] : stepPath(v, start),
      message: `pipeline \`${v.name}\`: ${message}`,
    };
  });

/** The order edges are checked in: data-flow order, so sizes are set where they come from. */
const edges: Check = (v, env) => analyseEdges(v, env).problems;

const pipelineOutputs: Check = (v, env) =>
  (v.outputs ?? []).flatMap((o): Problem[] => {
    if (o.step === undefined) return [];
    const who = `pipeline \`${v.name}\`, output \`${o.name}\``;
    const path: PathSegment[] = ['pipelines', v.name, 'outputs', o.name];
    const from = stepByName(v, o.step);
    if (from === undefined) {
      const { hint, extra } = choices(
        o.step,
        v.steps.map((s) => s.name),
        'its steps',
      );
      return [
        {
          code: 'pipeline-unknown-step',
          path: [...path, 'step'],
          message: `${who}: \`${o.step}\` is not a step of this pipeline${hint}`,
          ...extra,
        },
      ];
    }
    return o.output === undefined
      ? []
      : unknownOutput(env, from, o.output, who, [...path, 'output']);
  });

/** Names the sources use, with the near misses of unknown ones (a typo is not "unused"). */
function used(named: readonly string[], valid: readonly string[]): Set<string> {
  const meant = suggester(valid);
  return new Set(named.flatMap((n) => (valid.includes(n) ? [n] : (meant(n) ?? []))));
}

/**
 * The names a step input's source gives for `key` (`input` or `step`), malformed ones too: a
 * source with both `input` and `step` still uses them, and a bare string may mean either.
 */
function named(i: StepInputView, key: 'input' | 'step'): string[] {
  const name = typeof i.raw === 'string' ? i.raw : asRecord(i.raw)[key];
  return typeof name === 'string' ? [name] : [];
}

const unusedInputs: Check = (v) => {
  // Without steps, every input would be "unused": the schema's error says what is wrong.
  if (!v.stepsDeclared) return [];
  const names = (v.inputs ?? []).map((i) => i.name);
  const taken = used(
    v.steps.flatMap((s) => (s.inputs ?? []).flatMap((i) => named(i, 'input'))),
    names,
  );
  return names
    .filter((n) => !taken.has(n))
    .map((n) => ({
      code: 'pipeline-unused-input',
      path: ['pipelines', v.name, 'inputs', n],
      key: true,
      severity: 'warning' as const,
      message: `pipeline \`${v.name}\`: input \`${n}\` is not used by any step`,
    }));
};

const unusedSteps: Check = (v) => {
  if (v.outputs === null) return [];
  const names = v.steps.map((s) => s.name);
  const taken = used(
    [
      ...v.steps.flatMap((s) =>
        (s.inputs ?? []).flatMap((i) => named(i, 'step').filter((n) => n !== s.name)),
      ),
      ...v.outputs.flatMap((o) => (o.step === undefined ? [] : [o.step])),
    ],
    names,
  );
  return v.steps
    .filter((s) => !taken.has(s.name))
    .map((s) => ({
      code: 'pipeline-unused-step',
      path: stepPath(v, s.name),
      key: true,
      severity: 'warning' as const,
      message: `pipeline \`${v.name}\`: step \`${s.name}\` feeds no other step and no pipeline output, so its model runs for nothing`,
    }));
};

const CHECKS: readonly Check[] = [
  namedLikeModel,
  stepModels,
  stepInputs,
  unfedInputs,
  cycles,
  edges,
  pipelineOutputs,
  unusedInputs,
  unusedSteps,
];

function environment(ctx: Pick<CheckContext, 'value' | 'onnx'>): Env {
  const models = Object.keys(asRecord(ctx.value.models));
  let served: Set<string> | null = null;
  if (isRecord(ctx.value.services)) {
    const meant = suggester(models);
    const listed = Object.values(ctx.value.services).flatMap((s) => {
      const m = asRecord(s).models;
      return Array.isArray(m) ? m.filter((x): x is string => typeof x === 'string') : [];
    });
    served = new Set(listed.flatMap((m) => (models.includes(m) ? [m] : (meant(m) ?? []))));
  }
  return {
    models,
    served,
    info: (model) => {
      const r = ctx.onnx.get(model);
      return r?.ok ? r.info : undefined;
    },
  };
}

/** Every problem of every pipeline; wired into the cross-reference checks (checks.ts). */
export function checkPipelines(ctx: CheckContext): Diagnostic[] {
  const env = environment(ctx);
  return readViews(ctx.value).flatMap((v) =>
    CHECKS.flatMap((check) => check(v, env)).map(({ code, path, message, ...opts }) =>
      ctx.at.diag(code, path, message, opts),
    ),
  );
}

// ---- resolution: the valid pipelines -> PipelineSpec ----------------------------------------

/**
 * The pipelines of a valid spec. `info` gives a model's signature (undefined when model files
 * were not read: outputs then have no datatype or shape).
 */
export function resolvePipelines(
  file: BentoFile,
  info: (model: string) => OnnxInfo | undefined,
): Record<string, PipelineSpec> {
  const serviceOf = new Map<string, string>();
  for (const [name, s] of Object.entries(file.services)) {
    for (const m of s.models) if (!serviceOf.has(m)) serviceOf.set(m, name);
  }
  const env: Env = { models: Object.keys(file.models), served: null, info };
  const out: Record<string, PipelineSpec> = {};
  for (const v of readViews(file)) {
    const { dims } = analyseEdges(v, env);
    out[v.name] = {
      name: v.name,
      inputs: (v.inputs ?? []).map((i) => ({
        name: i.name,
        datatype: i.datatype ?? 'FP32',
        shape: [...(i.shape ?? [])],
      })),
      steps: v.steps.map((s) => ({
        name: s.name,
        model: s.model ?? '',
        service: serviceOf.get(s.model ?? '') ?? '',
        inputs: Object.fromEntries(
          (s.inputs ?? []).flatMap((i) => (i.source ? [[i.name, i.source] as const] : [])),
        ),
      })),
      outputs: (v.outputs ?? []).map((o) => {
        const step = stepByName(v, o.step ?? '');
        const t = infoOf(env, step)?.outputs.find((x) => x.name === o.output);
        return {
          name: o.name,
          step: o.step ?? '',
          output: o.output ?? '',
          datatype: t ? protocolDatatype(t.elementType) : null,
          shape: t?.dims && step ? dims.modelTerms(step.name, t.dims).map(dims.shown) : null,
        };
      }),
    };
  }
  return out;
}
