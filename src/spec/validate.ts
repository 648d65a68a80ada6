/**
 * A parsed spec -> a complete, readonly `Spec`, or a `SpecError` carrying every problem at once:
 * YAML problems, schema problems (ajv against the one schema file), then the cross-reference
 * checks in checks.ts. Positions point at the offending node: the key for an unknown key, the
 * value for a wrong value, and for a missing key the key that names the incomplete mapping.
 */
import { isAbsolute, resolve } from 'node:path';
import { SpecError } from '../errors.js';
import { runChecks } from './checks.js';
import { compareDiagnostics, type Diagnostic } from './diagnostics.js';
import { asRecord, isRecord, type Locator, locator, suggest } from './locator.js';
import { type OnnxReadResult, readOnnxInfo } from './onnx-info.js';
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
  const onnx = parsed.fatal || opts.checkFiles === false ? new Map() : readModelFiles(parsed);
  const diagnostics = [
    ...parsed.diagnostics,
    ...(parsed.fatal ? [] : contentDiagnostics(parsed, onnx)),
  ];
  const sorted = dedupe(diagnostics).sort(compareDiagnostics);
  if (sorted.some((d) => d.severity === 'error')) throw new SpecError(sorted);
  const spec = resolveSpec(parsed, parsed.value as BentoFile, (name) => {
    const r = onnx.get(name);
    return r?.ok ? r.sizeBytes : 0;
  });
  return { spec, warnings: sorted };
}

/** Model name -> what its file holds. Many models may share one file: each is read once. */
function readModelFiles(parsed: ParsedSpec): Map<string, OnnxReadResult> {
  const byFile = new Map<string, OnnxReadResult>();
  const byModel = new Map<string, OnnxReadResult>();
  for (const [name, model] of Object.entries(asRecord(asRecord(parsed.value).models))) {
    const path = asRecord(model).path;
    if (typeof path !== 'string' || path === '') continue;
    const file = resolve(parsed.dir, path);
    const result = byFile.get(file) ?? readOnnxInfo(file);
    byFile.set(file, result);
    byModel.set(name, result);
  }
  return byModel;
}

/** The problems of a document that YAML could read: its shape, the schema, the checks. */
function contentDiagnostics(
  parsed: ParsedSpec,
  onnx: ReadonlyMap<string, OnnxReadResult>,
): Diagnostic[] {
  const at = locator(parsed);
  const v = parsed.value;
  if (v === null || v === undefined) {
    return [at.diag('empty-file', [], 'the spec is empty: it needs version, models and services')];
  }
  if (!isRecord(v)) {
    const got = Array.isArray(v) ? 'a list' : `a ${typeof v}`;
    const message = `the spec must be a mapping with version, models and services, not ${got}`;
    return [at.diag('not-a-mapping', [], message)];
  }
  const validate = schemaValidator();
  const schema = validate(v) ? [] : schemaDiagnostics(validate.errors ?? [], v, at);
  return [...schema, ...runChecks({ value: v, at, onnx, dir: parsed.dir })];
}

/** A JSON pointer -> path segments; a segment is a number only where it indexes a list. */
function pointerToPath(pointer: string, root: unknown): PathSegment[] {
  const out: PathSegment[] = [];
  let v = root;
  for (const raw of pointer === '' ? [] : pointer.slice(1).split('/')) {
    const s = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    const segment = Array.isArray(v) ? Number(s) : s;
    out.push(segment);
    v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[segment] : undefined;
  }
  return out;
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
  if (Array.isArray(v)) return v.length === 0 ? 'an empty list' : 'a list';
  if (typeof v === 'object') return Object.keys(v).length === 0 ? 'an empty mapping' : 'a mapping';
  if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
  if (typeof v === 'number' && !Number.isInteger(v)) return `the number ${v}`;
  return String(v);
}

/** `(got …)`, with the fix when a number was quoted: `port: "3000"` reads as a string. */
function got(v: unknown, wantsNumber: boolean): string {
  const quoted =
    wantsNumber && typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v));
  return `(got ${describeValue(v)}${quoted ? `; write ${v.trim()} without quotes` : ''})`;
}

interface SchemaNode {
  properties?: Record<string, unknown>;
  type?: string | string[];
  examples?: unknown[];
  'x-messages'?: Record<string, string>;
}

/** The keys a mapping may have, for "did you mean" and "valid: …". */
function allowedKeys(schema: unknown): string[] {
  return Object.keys((schema as SchemaNode | undefined)?.properties ?? {});
}

/** The errors an `errorMessage` replaces, or the error itself: their params say what failed. */
function causes(e: SchemaError): SchemaError[] {
  const inner =
    e.keyword === 'errorMessage' ? (e.params as { errors?: SchemaError[] }).errors : undefined;
  return inner?.length ? inner : [e];
}

/** What the items of a list are, by the list's key, for messages about one item. */
const ITEM_NOUNS: Record<string, string> = { models: 'model', gpus: 'GPU' };

const RANGE_WORDS: Record<string, string> = {
  '>=': 'at least',
  '<=': 'at most',
  '>': 'greater than',
  '<': 'less than',
};

/**
 * ajv errors -> diagnostics at the YAML nodes. A node with a wrong type gets that error only
 * (its range or pattern errors would repeat it), and a missing key that an unknown sibling key
 * is a near miss of is not reported twice (`modles:` means `models:` is missing).
 */
function schemaDiagnostics(errors: readonly SchemaError[], root: unknown, at: Locator) {
  const wrongType = new Set(
    errors.filter((e) => causes(e)[0]?.keyword === 'type').map((e) => e.instancePath),
  );
  const misspelt = new Set<string>();
  for (const e of errors) {
    if (e.keyword !== 'additionalProperties') continue;
    const key = String((e.params as { additionalProperty: string }).additionalProperty);
    const best = suggest(key, allowedKeys(e.parentSchema));
    if (best) misspelt.add(`${e.instancePath}/${best}`);
  }
  const out: Diagnostic[] = [];
  for (const e of errors) {
    // The errorMessage of a name's schema says what is wrong; the propertyNames error adds nothing.
    if (e.keyword === 'propertyNames') continue;
    const cause = causes(e)[0] ?? e;
    const keyword = cause.keyword;
    if (keyword !== 'type' && wrongType.has(e.instancePath)) continue;
    const path = pointerToPath(e.instancePath, root);
    const schema = e.parentSchema as SchemaNode | undefined;
    const custom = e.keyword === 'errorMessage' ? e.message : schema?.['x-messages']?.[keyword];
    if (e.propertyName !== undefined) {
      const name = e.propertyName;
      const what = custom ?? `is not a valid name (${defaultMessage(cause)})`;
      const best = cause.keyword === 'pattern' ? patternFix(name, cause, schema) : undefined;
      out.push(
        at.diag('invalid-name', [...path, name], `\`${name}\` ${what}${meant(best)}`, {
          key: true,
          ...(best ? { suggestion: best } : {}),
        }),
      );
      continue;
    }
    const value = valueAt(root, path);
    const wanted = ([] as string[]).concat(schema?.type ?? []);
    const wantsNumber = wanted.some((t) => t === 'integer' || t === 'number');
    switch (keyword) {
      case 'additionalProperties': {
        const key = String((e.params as { additionalProperty: string }).additionalProperty);
        const keys = allowedKeys(e.parentSchema);
        const best = suggest(key, keys);
        const hint = best ? meant(best) : ` (valid: ${keys.join(', ')})`;
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
        if (misspelt.has(`${e.instancePath}/${key}`)) break;
        // At the key that names the incomplete mapping: that is the line the user looks for.
        out.push(at.diag('missing-key', path, `missing required key \`${key}\``, { key: true }));
        break;
      }
      case 'uniqueItems': {
        // ajv reports the first repeat: items i < j are equal; j is the one to remove.
        const { i, j } = cause.params as { i: number; j: number };
        const item: unknown = Array.isArray(value) ? value[j] : undefined;
        const noun = ITEM_NOUNS[String(path[path.length - 1])] ?? 'item';
        out.push(
          at.diag(
            'duplicate-item',
            [...path, j],
            `${noun} ${typeof item === 'string' ? `\`${item}\`` : JSON.stringify(item)} is listed twice (items ${i} and ${j}); remove one`,
          ),
        );
        break;
      }
      case 'type': {
        const names = wanted.map((t) => TYPE_NAMES[t] ?? t).join(' or ');
        const keys = allowedKeys(e.parentSchema);
        const what =
          custom ?? `must be ${names}${keys.length ? ` with keys ${keys.join(', ')}` : ''}`;
        out.push(at.diag('wrong-type', path, `${what} ${got(value, wantsNumber)}`));
        break;
      }
      case 'enum': {
        const allowed = causes(e).flatMap(
          (inner) => (inner.params as { allowedValues?: unknown[] }).allowedValues ?? [],
        );
        const names = allowed.filter((a): a is string => typeof a === 'string');
        const best = typeof value === 'string' ? suggest(value, names) : undefined;
        const quotedNumber = allowed.some((a) => typeof a === 'number');
        const what = custom ?? `must be one of ${allowed.join(', ')}`;
        out.push(
          at.diag(
            'invalid-value',
            path,
            `${what} ${got(value, quotedNumber)}${meant(best)}`,
            best ? { suggestion: best } : {},
          ),
        );
        break;
      }
      case 'minimum':
      case 'maximum':
      case 'exclusiveMinimum':
      case 'exclusiveMaximum': {
        const { comparison, limit } = cause.params as {
          comparison: string;
          limit: number;
        };
        const what = custom ?? `must be ${RANGE_WORDS[comparison] ?? comparison} ${limit}`;
        out.push(at.diag('out-of-range', path, `${what} ${got(value, false)}`));
        break;
      }
      case 'pattern': {
        const what = custom ?? defaultMessage(cause);
        const best = typeof value === 'string' ? patternFix(value, cause, schema) : undefined;
        out.push(
          at.diag(
            'invalid-value',
            path,
            `${what} ${got(value, false)}${meant(best)}`,
            best ? { suggestion: best } : {},
          ),
        );
        break;
      }
      default: {
        const what = custom ?? defaultMessage(cause);
        out.push(at.diag('invalid-value', path, `${what} ${got(value, false)}`));
      }
    }
  }
  return out;
}

/** `; did you mean …?`, or nothing. */
const meant = (best: string | undefined) => (best ? `; did you mean \`${best}\`?` : '');

/** A value close to `value` that fits the pattern: the same in lowercase, or a near example. */
function patternFix(value: string, e: SchemaError, schema: SchemaNode | undefined) {
  const { pattern } = e.params as { pattern: string };
  const lower = value.toLowerCase();
  if (lower !== value && new RegExp(pattern, 'u').test(lower)) return lower;
  const examples = (schema?.examples ?? []).filter((x): x is string => typeof x === 'string');
  return suggest(value, examples);
}

/** ajv's own wording, for the keywords that have no `errorMessage` in the schema. */
function defaultMessage(e: SchemaError): string {
  const { limit } = e.params as { limit?: number };
  if (/^min(Items|Length|Properties)$/.test(e.keyword) && limit === 1) return 'must not be empty';
  return (e.message ?? 'is invalid').replace('must NOT', 'must not');
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

function resolveSpec(parsed: ParsedSpec, file: BentoFile, sizeOf: (model: string) => number): Spec {
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
      maxBodyMb: file.server?.max_body_mb ?? DEFAULTS.maxBodyMb,
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
          policy: m.batching.policy ?? DEFAULTS.batchPolicy,
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
    const gpus =
      w.gpus ?? (placed.length ? [...new Set(placed)].sort((a, b) => a - b) : [index % gpu]);
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
