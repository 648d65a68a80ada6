/**
 * A parsed spec -> a complete, readonly `Spec`, or a `SpecError` carrying every problem at once:
 * YAML problems, schema problems (ajv against the one schema file), then the cross-reference
 * checks in checks.ts. Positions point at the offending node: the key for an unknown key, the
 * value for a wrong value, and for a missing key the key that names the incomplete mapping.
 */
import { isAbsolute, resolve } from 'node:path';
import { SpecError } from '../errors.js';
import { runChecks, serviceModels } from './checks.js';
import { compareDiagnostics, type Diagnostic } from './diagnostics.js';
import { asRecord, isRecord, locator } from './locator.js';
import { type OnnxInfo, type OnnxReadResult, readOnnxInfo } from './onnx-info.js';
import { collectPositions, type ParsedSpec, readSpecFile } from './parse.js';
import { resolvePipelines } from './pipelines.js';
import { schemaValidator } from './schema.js';
import { schemaDiagnostics } from './schema-diagnostics.js';
import {
  type AuthSpec,
  type BentoFile,
  type BentoFileModel,
  type BentoFileService,
  type BentoFileWorker,
  DEFAULTS,
  type ModelSpec,
  type ServiceSpec,
  type Spec,
  type VolumeSpec,
  type WorkerSpec,
} from './types.js';

type BentoFileAuth = NonNullable<NonNullable<BentoFile['server']>['auth']>;

export interface ValidateOptions {
  /**
   * Check that model files exist and are ONNX models (default true). `bento-run k8s` may turn it
   * off when models live in a volume that only the cluster has.
   */
  readonly checkFiles?: boolean;
  /**
   * `serve --service`: only these services' models need their files; the other models' files
   * are neither read nor checked, since they are not loaded (a KServe pod holds only its own
   * services' models). Absent or empty: every model's.
   */
  readonly services?: readonly string[];
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
  const onnx =
    parsed.fatal || opts.checkFiles === false
      ? new Map()
      : readModelFiles(parsed, servicesModels(parsed, opts.services ?? []));
  const diagnostics = [
    ...parsed.diagnostics,
    ...(parsed.fatal ? [] : contentDiagnostics(parsed, onnx)),
  ];
  const sorted = dedupe(diagnostics).sort(compareDiagnostics);
  if (sorted.some((d) => d.severity === 'error')) throw new SpecError(sorted);
  const read = (name: string) => {
    const r = onnx.get(name);
    return r?.ok ? r : undefined;
  };
  const spec = resolveSpec(
    parsed,
    parsed.value as BentoFile,
    (name) => read(name)?.sizeBytes ?? 0,
    (name) => read(name)?.info,
  );
  return { spec, warnings: sorted };
}

/** The models the named services serve; null (every model) when none is named. */
function servicesModels(parsed: ParsedSpec, services: readonly string[]): Set<string> | null {
  if (services.length === 0) return null;
  const declared = asRecord(asRecord(parsed.value).services);
  return new Set(services.flatMap((name) => serviceModels(asRecord(declared[name]))));
}

/**
 * Model name -> what its file holds, for the models in `only` (every model when null). Many
 * models may share one file: each is read once.
 */
function readModelFiles(
  parsed: ParsedSpec,
  only: ReadonlySet<string> | null,
): Map<string, OnnxReadResult> {
  const byFile = new Map<string, OnnxReadResult>();
  const byModel = new Map<string, OnnxReadResult>();
  for (const [name, model] of Object.entries(asRecord(asRecord(parsed.value).models))) {
    if (only && !only.has(name)) continue;
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
  infoOf: (model: string) => OnnxInfo | undefined,
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
    pipelines: resolvePipelines(file, infoOf),
    server: {
      host: file.server?.host ?? DEFAULTS.host,
      port: file.server?.port ?? DEFAULTS.port,
      maxBodyMb: file.server?.max_body_mb ?? DEFAULTS.maxBodyMb,
      grpcPort:
        file.server?.grpc_port === false ? null : (file.server?.grpc_port ?? DEFAULTS.grpcPort),
      drainTimeoutS: file.server?.drain_timeout_s ?? DEFAULTS.drainTimeoutS,
      tls: file.server?.tls
        ? {
            cert: resolve(parsed.dir, file.server.tls.cert),
            key: resolve(parsed.dir, file.server.tls.key),
          }
        : null,
      auth: resolveAuth(file.server?.auth, parsed.dir),
      ui: file.server?.ui ?? DEFAULTS.ui,
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
      ...(s.memory_arena === undefined ? {} : { memoryArena: s.memory_arena }),
      ...(s.memory_pattern === undefined ? {} : { memoryPattern: s.memory_pattern }),
      ...(s.arena_extend_strategy === undefined
        ? {}
        : { arenaExtendStrategy: s.arena_extend_strategy }),
    },
    storageUri: m.storage_uri ?? null,
    volume: m.volume === undefined ? null : resolveVolume(m.volume),
  };
}

/** `claim` or `claim/folder/` -> the claim and the folder without slashes at its ends. */
function resolveVolume(volume: string): VolumeSpec {
  const slash = volume.indexOf('/');
  const subPath = slash < 0 ? '' : volume.slice(slash + 1).replace(/\/+$/, '');
  return { claim: slash < 0 ? volume : volume.slice(0, slash), subPath: subPath || null };
}

function resolveAuth(auth: BentoFileAuth | undefined, dir: string): AuthSpec | null {
  if (auth === undefined) return null;
  return 'tokens_env' in auth
    ? { tokensEnv: auth.tokens_env }
    : { tokensFile: resolve(dir, auth.tokens_file) };
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
    scaling: s.scaling
      ? {
          minReplicas: s.scaling.min_replicas ?? DEFAULTS.minReplicas,
          maxReplicas: s.scaling.max_replicas,
          targetInFlight: s.scaling.target_in_flight ?? null,
        }
      : null,
  };
}
