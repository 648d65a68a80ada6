/**
 * Cross-reference checks that a JSON Schema cannot express. Each is a small function from the
 * (schema-shaped, maybe partly invalid) document to diagnostics, defensive about shapes the
 * schema already reported.
 */
import type { Diagnostic } from './diagnostics.js';
import type { OnnxReadResult } from './onnx-info.js';
import { asRecord, type Locator, suggest } from './locator.js';

export interface CheckContext {
  readonly value: Record<string, unknown>;
  readonly at: Locator;
  /** Model name -> what reading its file gave (absent when files are not checked). */
  readonly onnx: ReadonlyMap<string, OnnxReadResult>;
}

type Check = (ctx: CheckContext) => Diagnostic[];

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

function services(ctx: CheckContext): [string, Record<string, unknown>][] {
  return Object.entries(asRecord(ctx.value.services)).map(([k, v]) => [k, asRecord(v)]);
}

function modelNames(ctx: CheckContext): string[] {
  return Object.keys(asRecord(ctx.value.models));
}

function serviceModels(s: Record<string, unknown>): string[] {
  return Array.isArray(s.models) ? s.models.filter((m): m is string => typeof m === 'string') : [];
}

function gpuCount(s: Record<string, unknown>): number | null {
  const gpu = asRecord(s.resources).gpu ?? 0;
  return isInt(gpu) && gpu >= 0 ? gpu : null;
}

const modelFiles: Check = ({ value, at, onnx }) => {
  const out: Diagnostic[] = [];
  for (const [name, result] of onnx) {
    if (result.ok) continue;
    const path = asRecord(asRecord(value.models)[name]).path;
    const where = ['models', name, 'path'];
    out.push(
      at.diag(
        result.missing ? 'model-not-found' : 'not-onnx',
        where,
        `model \`${name}\`: ${String(path)} ${result.reason} (paths are relative to the spec's folder)`,
      ),
    );
  }
  return out;
};

const batchingNeedsDynamicBatch: Check = ({ value, at, onnx }) => {
  const out: Diagnostic[] = [];
  for (const [name, raw] of Object.entries(asRecord(value.models))) {
    const result = onnx.get(name);
    if (asRecord(raw).batching === undefined || !result?.ok) continue;
    for (const [kind, tensors] of [
      ['input', result.info.inputs],
      ['output', result.info.outputs],
    ] as const) {
      for (const t of tensors) {
        const d0 = t.dims?.[0];
        if (t.dims && (t.dims.length === 0 || typeof d0 === 'number')) {
          const shape = `[${t.dims.map((d) => d ?? '?').join(', ')}]`;
          out.push(
            at.diag(
              'batching-fixed-batch',
              ['models', name, 'batching'],
              `model \`${name}\`: batching merges requests along dimension 0, but ${kind} \`${t.name}\` has shape ${shape}${t.dims.length === 0 ? ' (a scalar)' : ` with dimension 0 fixed at ${d0}`}; remove batching or export the model with a dynamic batch dimension`,
              { key: true },
            ),
          );
        }
      }
    }
  }
  return out;
};

const serviceModelsDeclared: Check = (ctx) => {
  const out: Diagnostic[] = [];
  const declared = modelNames(ctx);
  for (const [name, s] of services(ctx)) {
    if (!Array.isArray(s.models)) continue;
    s.models.forEach((m, i) => {
      if (typeof m !== 'string' || declared.includes(m)) return;
      const best = suggest(m, declared);
      const hint = best
        ? `; did you mean \`${best}\`?`
        : ` (declared models: ${declared.join(', ') || 'none'})`;
      out.push(
        ctx.at.diag(
          'unknown-model',
          ['services', name, 'models', i],
          `service \`${name}\` names model \`${m}\`, which is not declared under models${hint}`,
          best ? { suggestion: best } : {},
        ),
      );
    });
  }
  return out;
};

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
  const used = new Set(services(ctx).flatMap(([, s]) => serviceModels(s)));
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
    s.workers.forEach((raw, w) => {
      const worker = asRecord(raw);
      const base = ['services', name, 'workers', w];
      if (gpu === 0) {
        for (const key of ['gpus', 'placement'] as const) {
          if (worker[key] === undefined) continue;
          out.push(
            ctx.at.diag(
              'gpus-on-cpu-service',
              [...base, key],
              `service \`${name}\` is CPU-only (resources.gpu is 0), so worker ${w} cannot have ${key}; set resources.gpu or remove ${key}`,
              { key: true },
            ),
          );
        }
        return;
      }
      const gpus = Array.isArray(worker.gpus) ? worker.gpus.filter(isInt) : null;
      (Array.isArray(worker.gpus) ? worker.gpus : []).forEach((g, i) => {
        if (isInt(g) && g >= gpu) {
          out.push(
            ctx.at.diag(
              'gpu-out-of-range',
              [...base, 'gpus', i],
              `GPU ${g} is out of range (resources.gpu is ${gpu}; valid: ${valid})`,
            ),
          );
        }
      });
      for (const [model, g] of Object.entries(asRecord(worker.placement))) {
        const where = [...base, 'placement', model];
        if (!models.includes(model)) {
          out.push(
            ctx.at.diag(
              'placement-unknown-model',
              where,
              `model \`${model}\` is not loaded by service \`${name}\` (its models: ${models.join(', ') || 'none'})`,
              { key: true },
            ),
          );
        } else if (isInt(g) && g >= gpu) {
          out.push(
            ctx.at.diag(
              'gpu-out-of-range',
              where,
              `GPU ${g} is out of range (resources.gpu is ${gpu}; valid: ${valid})`,
            ),
          );
        } else if (isInt(g) && gpus !== null && !gpus.includes(g)) {
          out.push(
            ctx.at.diag(
              'placement-gpu-not-in-worker',
              where,
              `model \`${model}\` is placed on GPU ${g}, which is not among this worker's gpus [${gpus.join(', ')}]`,
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
        `service \`${name}\` sets gpu_type but resources.gpu is 0, so it runs on the CPU and gpu_type is ignored`,
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

const CHECKS: readonly Check[] = [
  modelFiles,
  batchingNeedsDynamicBatch,
  serviceModelsDeclared,
  modelServedOnce,
  unusedModels,
  workerPlacement,
  gpuTypeNeedsGpus,
  idleGpus,
];

export function runChecks(ctx: CheckContext): Diagnostic[] {
  return CHECKS.flatMap((check) => check(ctx));
}
