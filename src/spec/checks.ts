/**
 * Cross-reference checks that a JSON Schema cannot express. Each is a small function from the
 * (schema-shaped, maybe partly invalid) document to diagnostics, defensive about shapes the
 * schema already reported, and silent where the schema's error is the root cause (a service
 * naming models when `models:` itself is missing would otherwise report every name).
 */
import { readdirSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { CheckContext } from './check-context.js';
import type { Diagnostic } from './diagnostics.js';
import { asRecord, isRecord, suggest, suggester } from './locator.js';
import { checkPipelines } from './pipelines.js';
import { DEFAULTS } from './types.js';

/** The context and what more than one check derives from it, computed once. */
interface Derived extends CheckContext {
  readonly unknownReferences: readonly UnknownReference[];
}

type Check = (ctx: Derived) => Diagnostic[];

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

function services(ctx: CheckContext): [string, Record<string, unknown>][] {
  return Object.entries(asRecord(ctx.value.services)).map(([k, v]) => [k, asRecord(v)]);
}

function modelNames(ctx: CheckContext): string[] {
  return Object.keys(asRecord(ctx.value.models));
}

/** The model names a service lists (what is not a string left out). */
export function serviceModels(s: Record<string, unknown>): string[] {
  return Array.isArray(s.models) ? s.models.filter((m): m is string => typeof m === 'string') : [];
}

/** Names for a message: the first few, then how many more (a spec may declare thousands). */
function listOf(names: readonly string[], max = 10): string {
  if (names.length === 0) return 'none';
  const shown = names.slice(0, max).join(', ');
  return names.length > max ? `${shown} and ${names.length - max} more` : shown;
}

/** resources.gpu, 0 when absent; null when the schema already reported it. */
function gpuCount(s: Record<string, unknown>): number | null {
  const gpu = asRecord(s.resources).gpu ?? 0;
  return isInt(gpu) && gpu >= 0 ? gpu : null;
}

interface UnknownReference {
  readonly service: string;
  readonly index: number;
  readonly model: string;
  /** The declared model it is a near miss of, if any. */
  readonly meant: string | undefined;
}

/** The undeclared models the services name; none when `models:` itself is broken. */
function unknownReferences(ctx: CheckContext): UnknownReference[] {
  if (!isRecord(ctx.value.models)) return [];
  const declared = new Set(modelNames(ctx));
  const meant = suggester([...declared]);
  return services(ctx).flatMap(([service, s]) =>
    (Array.isArray(s.models) ? s.models : []).flatMap((model: unknown, index) =>
      typeof model === 'string' && !declared.has(model)
        ? [{ service, index, model, meant: meant(model) }]
        : [],
    ),
  );
}

const modelFiles: Check = ({ value, at, onnx, dir }) => {
  const out: Diagnostic[] = [];
  for (const [name, result] of onnx) {
    if (result.ok) continue;
    const path = String(asRecord(asRecord(value.models)[name]).path);
    let message = `model \`${name}\`: ${path} ${result.reason}`;
    let suggestion: string | undefined;
    if (result.missing) {
      const near = siblingFile(resolve(dir, path));
      suggestion = near && join(dirname(path), near);
      message += suggestion
        ? `; did you mean ${suggestion}?`
        : " (model paths are relative to the spec's folder)";
    }
    out.push(
      at.diag(
        result.missing ? 'model-not-found' : 'not-onnx',
        ['models', name, 'path'],
        message,
        suggestion ? { suggestion } : {},
      ),
    );
  }
  return out;
};

/** A file next to where `path` should be whose name is a near miss of it. */
function siblingFile(path: string): string | undefined {
  try {
    return suggest(basename(path), readdirSync(dirname(path)));
  } catch {
    return undefined;
  }
}

const batchingNeedsDynamicBatch: Check = ({ value, at, onnx }) => {
  const out: Diagnostic[] = [];
  for (const [name, raw] of Object.entries(asRecord(value.models))) {
    const result = onnx.get(name);
    if (asRecord(raw).batching === undefined || !result?.ok) continue;
    const fixed = [
      ...result.info.inputs.map((t) => ({ kind: 'input', t })),
      ...result.info.outputs.map((t) => ({ kind: 'output', t })),
    ].filter(({ t }) => t.dims !== null && (t.dims.length === 0 || typeof t.dims[0] === 'number'));
    if (fixed.length === 0) continue;
    // One diagnostic per model: every fixed tensor is the same problem with the same fix.
    const tensors = fixed.map(
      ({ kind, t }) => `${kind} \`${t.name}\` [${(t.dims ?? []).map((d) => d ?? '?').join(', ')}]`,
    );
    const list =
      tensors.length > 1 ? `${tensors.slice(0, -1).join(', ')} and ${tensors.at(-1)}` : tensors[0];
    out.push(
      at.diag(
        'batching-fixed-batch',
        ['models', name, 'batching'],
        `model \`${name}\`: batching merges requests along dimension 0, but dimension 0 is fixed in ${list}; remove batching or export the model with a dynamic batch dimension`,
        { key: true },
      ),
    );
  }
  return out;
};

/** Sequences and maps (scikit-learn's ZipMap) are no tensors: the protocol cannot carry them. */
const nonTensorValues: Check = ({ value, at, onnx }) => {
  const out: Diagnostic[] = [];
  for (const name of Object.keys(asRecord(value.models))) {
    const result = onnx.get(name);
    if (!result?.ok) continue;
    const inputs = result.info.inputs.filter((t) => t.elementType === 'unknown');
    const outputs = result.info.outputs.filter((t) => t.elementType === 'unknown');
    if (inputs.length + outputs.length === 0) continue;
    const names = [
      ...inputs.map((t) => `input \`${t.name}\``),
      ...outputs.map((t) => `output \`${t.name}\``),
    ].join(', ');
    const consequence =
      inputs.length > 0
        ? 'requests cannot feed a non-tensor input, so the model cannot be served'
        : 'metadata and requests without an `outputs` list leave them out, and asking for one is a 400';
    out.push(
      at.diag(
        'non-tensor-value',
        ['models', name, 'path'],
        `model \`${name}\`: ${names} ${inputs.length + outputs.length > 1 ? 'are' : 'is'} not a tensor (a sequence or map, e.g. scikit-learn's ZipMap): ${consequence}; convert the model without ZipMap (skl2onnx: options={'zipmap': False}) to get the probabilities as a tensor`,
        { severity: inputs.length > 0 ? 'error' : 'warning' },
      ),
    );
  }
  return out;
};

const serviceModelsDeclared: Check = (ctx) =>
  ctx.unknownReferences.map(({ service, index, model, meant }) =>
    ctx.at.diag(
      'unknown-model',
      ['services', service, 'models', index],
      `service \`${service}\` names model \`${model}\`, which is not declared under models${
        meant ? `; did you mean \`${meant}\`?` : ` (declared: ${listOf(modelNames(ctx))})`
      }`,
      meant ? { suggestion: meant } : {},
    ),
  );

const modelServedOnce: Check = (ctx) => {
  const out: Diagnostic[] = [];
  const owner = new Map<string, string>();
  for (const [name, s] of services(ctx)) {
    serviceModels(s).forEach((m, i) => {
      const first = owner.get(m);
      if (first === undefined) owner.set(m, name);
      else if (first !== name) {
        out.push(
          ctx.at.diag(
            'model-in-two-services',
            ['services', name, 'models', i],
            `model \`${m}\` is already served by service \`${first}\`; a model belongs to one service (declare a second model with the same path to serve it twice)`,
          ),
        );
      }
    });
  }
  return out;
};

const unusedModels: Check = (ctx) => {
  // Only when every service lists its models: otherwise "unused" restates the service's error.
  const all = services(ctx);
  const complete = all.every(([, s]) => Array.isArray(s.models) && s.models.length > 0);
  if (!isRecord(ctx.value.services) || all.length === 0 || !complete) return [];
  // A near miss (`clasifier`) counts as a use of the model it was meant to be.
  const meant = ctx.unknownReferences.flatMap((r) => (r.meant ? [r.meant] : []));
  const used = new Set([...all.flatMap(([, s]) => serviceModels(s)), ...meant]);
  return modelNames(ctx)
    .filter((m) => !used.has(m))
    .map((m) =>
      ctx.at.diag('unused-model', ['models', m], `model \`${m}\` is not served by any service`, {
        key: true,
        severity: 'warning',
      }),
    );
};

const workerPlacement: Check = (ctx) => {
  const out: Diagnostic[] = [];
  for (const [name, s] of services(ctx)) {
    const gpu = gpuCount(s);
    if (gpu === null || !Array.isArray(s.workers)) continue;
    const models = serviceModels(s);
    const valid = Array.from({ length: gpu }, (_, i) => i).join(', ');
    const gpuSetting = asRecord(s.resources).gpu === undefined ? 'is not set' : 'is 0';
    s.workers.forEach((raw, w) => {
      const worker = asRecord(raw);
      const base = ['services', name, 'workers', w];
      const who = `service \`${name}\`, worker ${w}`;
      if (gpu === 0) {
        for (const key of ['gpus', 'placement'] as const) {
          if (worker[key] === undefined) continue;
          out.push(
            ctx.at.diag(
              'gpus-on-cpu-service',
              [...base, key],
              `${who}: cannot have ${key}, the service runs on the CPU (resources.gpu ${gpuSetting}); set resources.gpu or remove ${key}`,
              { key: true },
            ),
          );
        }
        return;
      }
      const outOfRange = (g: number) =>
        `${who}: GPU ${g} is out of range (resources.gpu is ${gpu}; valid: ${valid})`;
      const gpus = Array.isArray(worker.gpus) ? worker.gpus.filter(isInt) : null;
      (Array.isArray(worker.gpus) ? worker.gpus : []).forEach((g, i) => {
        if (isInt(g) && g >= gpu) {
          out.push(ctx.at.diag('gpu-out-of-range', [...base, 'gpus', i], outOfRange(g)));
        }
      });
      for (const [model, g] of Object.entries(asRecord(worker.placement))) {
        const where = [...base, 'placement', model];
        if (!models.includes(model)) {
          out.push(
            ctx.at.diag(
              'placement-unknown-model',
              where,
              `${who}: placement names model \`${model}\`, which this service does not load (its models: ${listOf(models)})`,
              { key: true },
            ),
          );
        } else if (isInt(g) && g >= gpu) {
          out.push(ctx.at.diag('gpu-out-of-range', where, outOfRange(g)));
        } else if (isInt(g) && gpus !== null && !gpus.includes(g)) {
          out.push(
            ctx.at.diag(
              'placement-gpu-not-in-worker',
              where,
              `${who}: model \`${model}\` is placed on GPU ${g}, which is not among the worker's gpus (valid: ${gpus.filter((x) => x < gpu).join(', ') || 'none'})`,
            ),
          );
        }
      }
    });
  }
  return out;
};

const gpuTypeNeedsGpus: Check = (ctx) =>
  services(ctx)
    .filter(([, s]) => gpuCount(s) === 0 && asRecord(s.resources).gpu_type !== undefined)
    .map(([name]) =>
      ctx.at.diag(
        'gpu-type-without-gpus',
        ['services', name, 'resources', 'gpu_type'],
        `service \`${name}\` sets gpu_type but no GPUs (resources.gpu is 0 or not set), so it runs on the CPU and gpu_type is ignored`,
        { key: true, severity: 'warning' },
      ),
    );

const idleGpus: Check = (ctx) =>
  services(ctx)
    .filter(([, s]) => isInt(s.workers) && (gpuCount(s) ?? 0) > (s.workers as number))
    .map(([name, s]) =>
      ctx.at.diag(
        'idle-gpus',
        ['services', name, 'workers'],
        `service \`${name}\` has ${gpuCount(s)} GPUs but only ${s.workers} worker(s): GPUs ${s.workers} to ${(gpuCount(s) ?? 1) - 1} stay idle`,
        { severity: 'warning' },
      ),
    );

/** `scaling`: min_replicas <= max_replicas, and a target_in_flight that a pod can reach. */
const scalingBounds: Check = (ctx) => {
  const out: Diagnostic[] = [];
  for (const [name, s] of services(ctx)) {
    const scaling = asRecord(s.scaling);
    const min = scaling.min_replicas ?? DEFAULTS.minReplicas;
    const max = scaling.max_replicas;
    if (isInt(min) && isInt(max) && min > max) {
      out.push(
        ctx.at.diag(
          'scaling-min-above-max',
          ['services', name, 'scaling', 'min_replicas'],
          `service \`${name}\`: scaling.min_replicas (${min}) is above scaling.max_replicas (${max}); the autoscaler needs min_replicas <= max_replicas`,
        ),
      );
    }
    const target = scaling.target_in_flight;
    const limit = asRecord(s.traffic).max_concurrency ?? DEFAULTS.maxConcurrency;
    if (isInt(target) && isInt(limit) && target > limit) {
      out.push(
        ctx.at.diag(
          'scaling-target-unreachable',
          ['services', name, 'scaling', 'target_in_flight'],
          `service \`${name}\`: scaling.target_in_flight (${target}) is above traffic.max_concurrency (${limit}), so a pod never holds that many requests and the autoscaler never adds pods; lower target_in_flight or raise max_concurrency`,
        ),
      );
    }
  }
  return out;
};

const CHECKS: readonly Check[] = [
  modelFiles,
  batchingNeedsDynamicBatch,
  nonTensorValues,
  serviceModelsDeclared,
  modelServedOnce,
  unusedModels,
  workerPlacement,
  gpuTypeNeedsGpus,
  idleGpus,
  scalingBounds,
  checkPipelines,
];

export function runChecks(ctx: CheckContext): Diagnostic[] {
  const derived: Derived = { ...ctx, unknownReferences: unknownReferences(ctx) };
  return CHECKS.flatMap((check) => check(derived));
}
