/**
 * A parsed spec -> a complete, readonly `Spec`, or a `SpecError` carrying every problem at once:
 * YAML problems, schema problems (ajv against the one schema file), then the cross-reference
 * checks in checks.ts. Positions point at the offending node: the key for an unknown key, the
 * value for a wrong value, the mapping for a missing key.
 */
import { isAbsolute, resolve } from 'node:path';
import { SpecError } from '../errors.js';
import { runChecks } from './checks.js';
import { compareDiagnostics, type Diagnostic } from './diagnostics.js';
import { readOnnxInfo, type OnnxReadResult } from './onnx-info.js';
import { asRecord, type Locator, locator, suggest } from './locator.js';
import { collectPositions, type ParsedSpec, type PathSegment, readSpecFile } from './parse.js';
import { type SchemaError, schemaValidator } from './schema.js';
import {
  type BentoFile,
  type BentoFileModel,
  type BentoFileService,
  type BentoFileWorker,
  DEFAULTS,
  type ModelSpec,
  type ServiceSpec,
  type Spec,
  type WorkerSpec,
} from './types.js';

export interface ValidateOptions {
  /**
   * Check that model files exist and are ONNX models (default true). `bento-run k8s` may turn it
   * off when models live in a volume that only the cluster has.
   */
  readonly checkFiles?: boolean;
}

export interface ValidationResult {
  readonly spec: Spec;
  /** Warnings only; errors throw. */
  readonly warnings: readonly Diagnostic[];
}

/** Reads, parses and validates a spec file. Throws SpecError with every problem. */
export function loadSpec(file: string, opts: ValidateOptions = {}): ValidationResult {
  return validateSpec(readSpecFile(file), opts);
}

export function validateSpec(parsed: ParsedSpec, opts: ValidateOptions = {}): ValidationResult {
  const diagnostics: Diagnostic[] = [...parsed.diagnostics];
  const at = locator(parsed);
  const onnx = new Map<string, OnnxReadResult>();
  if (!parsed.fatal) {
    const v = parsed.value;
    if (v === null || v === undefined) {
      diagnostics.push(
        at.diag('empty-file', [], 'the spec is empty: it needs version, models and services'),
      );
    } else if (typeof v !== 'object' || Array.isArray(v)) {
      const got = Array.isArray(v) ? 'a list' : `a ${typeof v}`;
      diagnostics.push(
        at.diag(
          'not-a-mapping',
          [],
          `the spec must be a mapping with version, models and services, not ${got}`,
        ),
      );
    } else {
      const validate = schemaValidator();
      if (!validate(v)) diagnostics.push(...schemaDiagnostics(validate.errors ?? [], v, at));
      if (opts.checkFiles !== false) {
        for (const [name, model] of Object.entries(asRecord((v as BentoFile).models))) {
          const path = asRecord(model).path;
          if (typeof path === 'string' && path !== '') {
            onnx.set(name, readOnnxInfo(resolve(parsed.dir, path)));
          }
        }
      }
      diagnostics.push(...runChecks({ value: v as Record<string, unknown>, at, onnx }));
    }
  }
  const sorted = dedupe(diagnostics).sort(compareDiagnostics);
  const errors = sorted.filter((d) => d.severity === 'error');
  if (errors.length > 0) throw new SpecError(sorted);
  const spec = resolveSpec(parsed, parsed.value as BentoFile, (name) => {
    const r = onnx.get(name);
    return r?.ok ? r.sizeBytes : 0;
  });
  return { spec, warnings: sorted };
}

function pointerToPath(pointer: string): PathSegment[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

function valueAt(root: unknown, path: readonly PathSegment[]): unknown {
  let v = root;
  for (const s of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[s];
  }
  return v;
}

const TYPE_NAMES: Record<string, string> = {
  object: 'a mapping',
  array: 'a list',
  integer: 'an integer',
  number: 'a number',
  string: 'a string',
  boolean: 'true or false',
  null: 'null',
};

function describeValue(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
  if (typeof v === 'number' && !Number.isInteger(v)) return `the number ${v}`;
  return String(v);
}

/** Keys the schema allows at an object path, for "did you mean". */
function allowedKeys(e: SchemaError): string[] {
  const props = (e.parentSchema as { properties?: Record<string, unknown> } | undefined)
    ?.properties;
  return props ? Object.keys(props) : [];
}

function schemaDiagnostics(errors: readonly SchemaError[], root: unknown, at: Locator) {
  const out: Diagnostic[] = [];
  for (const e of errors) {
    const path = pointerToPath(e.instancePath);
    const value = valueAt(root, path);
    switch (e.keyword) {
      case 'additionalProperties': {
        const key = String((e.params as { additionalProperty: string }).additionalProperty);
        const keys = allowedKeys(e);
        const best = suggest(key, keys);
        const hint = best ? `; did you mean \`${best}\`?` : keys.length ? ` (valid: ${keys.join(', ')})` : '';
        out.push(
          at.diag('unknown-key', [...path, key], `unknown key \`${key}\`${hint}`, {
            key: true,
            ...(best ? { suggestion: best } : {}),
          }),
        );
        break;
      }
      case 'required': {
        const key = String((e.params as { missingProperty: string }).missingProperty);
        out.push(at.diag('missing-key', path, `missing required key \`${key}\``));
        break;
      }
      case 'propertyNames':
        // The errorMessage of the name's own schema says what is wrong; this one adds nothing.
        break;
      case 'errorMessage': {
        const inner = (e.params as { errors?: SchemaError[] }).errors ?? [];
        const propertyName = (inner[0] as { propertyName?: string } | undefined)?.propertyName;
        if (propertyName !== undefined) {
          out.push(
            at.diag('invalid-name', [...path, propertyName], `\`${propertyName}\`: ${e.message}`, {
              key: true,
            }),
          );
        } else {
          out.push(at.diag('invalid-value', path, `${e.message} (got ${describeValue(value)})`));
        }
        break;
      }
      case 'type': {
        const want = ([] as string[]).concat((e.params as { type: string | string[] }).type);
        const names = want.map((t) => TYPE_NAMES[t] ?? t).join(' or ');
        out.push(at.diag('wrong-type', path, `must be ${names} (got ${describeValue(value)})`));
        break;
      }
      case 'enum': {
        const allowed = (e.params as { allowedValues: unknown[] }).allowedValues;
        const best = typeof value === 'string' ? suggest(value, allowed.map(String)) : undefined;
        const hint = best ? `; did you mean \`${best}\`?` : '';
        out.push(
          at.diag(
            'invalid-value',
            path,
            `must be one of ${allowed.join(', ')} (got ${describeValue(value)})${hint}`,
            best ? { suggestion: best } : {},
          ),
        );
        break;
      }
      case 'minimum':
      case 'maximum':
      case 'exclusiveMinimum':
      case 'exclusiveMaximum': {
        const { comparison, limit } = e.params as { comparison: string; limit: number };
        out.push(
          at.diag('out-of-range', path, `must be ${comparison} ${limit} (got ${describeValue(value)})`),
        );
        break;
      }
      case 'uniqueItems': {
        const { i, j } = e.params as { i: number; j: number };
        const item = Array.isArray(value) ? value[i] : undefined;
        out.push(
          at.diag(
            'duplicate-item',
            [...path, i],
            `${JSON.stringify(item)} is listed twice (items ${j} and ${i})`,
          ),
        );
        break;
      }
      default:
        out.push(at.diag('invalid-value', path, `${e.message ?? 'is invalid'} (got ${describeValue(value)})`));
    }
  }
  return out;
}

function dedupe(ds: Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  return ds.filter((d) => {
    const k = `${d.line}:${d.column}:${d.path}:${d.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

// ---- normalisation: the valid BentoFile -> Spec, defaults filled --------------------------

function resolveSpec(
  parsed: ParsedSpec,
  file: BentoFile,
  sizeOf: (model: string) => number,
): Spec {
  const models: Record<string, ModelSpec> = {};
  for (const [name, m] of Object.entries(file.models)) {
    models[name] = resolveModel(name, m, parsed.dir, sizeOf(name));
  }
  return {
    file: parsed.file,
    dir: parsed.dir,
    version: 1,
    name: file.name ?? DEFAULTS.name,
    models,
    services: Object.entries(file.services).map(([name, s]) => resolveService(name, s)),
    server: {
      host: file.server?.host ?? DEFAULTS.host,
      port: file.server?.port ?? DEFAULTS.port,
    },
    positions: collectPositions(parsed),
  };
}

function resolveModel(name: string, m: BentoFileModel, dir: string, size: number): ModelSpec {
  const s = m.session ?? {};
  return {
    name,
    path: isAbsolute(m.path) ? m.path : resolve(dir, m.path),
    declaredPath: m.path,
    sizeBytes: size,
    batching: m.batching
      ? {
          maxBatchSize: m.batching.max_batch_size ?? DEFAULTS.maxBatchSize,
          maxLatencyMs: m.batching.max_latency_ms ?? DEFAULTS.maxLatencyMs,
        }
      : null,
    session: {
      ...(s.intra_op_threads ? { intraOpThreads: s.intra_op_threads } : {}),
      ...(s.inter_op_threads ? { interOpThreads: s.inter_op_threads } : {}),
      graphOptimization: s.graph_optimization ?? DEFAULTS.graphOptimization,
      executionMode: s.execution_mode ?? DEFAULTS.executionMode,
    },
  };
}

/**
 * Workers, normalised: `workers: N` -> N workers, worker i on local GPU i mod gpu with every
 * model there; a listed worker without `gpus` gets the GPUs its placement names, or i mod gpu;
 * a model without a placement goes on the worker's first GPU. Absent: one worker per GPU.
 */
export function resolveWorkers(s: BentoFileService): WorkerSpec[] {
  const gpu = s.resources?.gpu ?? 0;
  const listed =
    typeof s.workers === 'number'
      ? Array.from({ length: s.workers }, (): BentoFileWorker => ({}))
      : (s.workers ?? Array.from({ length: Math.max(1, gpu) }, (): BentoFileWorker => ({})));
  return listed.map((w, index) => {
    if (gpu === 0) return { index, gpus: [], placement: {} };
    const placed = Object.values(w.placement ?? {});
    const gpus = w.gpus ?? (placed.length ? [...new Set(placed)].sort((a, b) => a - b) : [index % gpu]);
    const placement: Record<string, number> = {};
    for (const model of s.models) placement[model] = w.placement?.[model] ?? gpus[0]!;
    return { index, gpus, placement };
  });
}

function resolveService(name: string, s: BentoFileService): ServiceSpec {
  const cpu = s.resources?.cpu;
  return {
    name,
    models: s.models,
    resources: {
      gpu: s.resources?.gpu ?? 0,
      gpuType: s.resources?.gpu_type ?? null,
      cpu: cpu === undefined ? null : String(cpu),
      memory: s.resources?.memory ?? null,
    },
    workers: resolveWorkers(s),
    traffic: {
      timeoutS: s.traffic?.timeout_s ?? DEFAULTS.timeoutS,
      maxConcurrency: s.traffic?.max_concurrency ?? DEFAULTS.maxConcurrency,
    },
  };
}

