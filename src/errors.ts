/**
 * Every error bento-run raises, each with a stable `code`. Callers and tests match on the code,
 * never on the text. The core speaks in `kind`s; only the HTTP layer maps them to statuses.
 */
import type { Diagnostic } from './spec/diagnostics.js';

/** What went wrong, independent of transport. The HTTP layer maps these to statuses. */
export type ErrorKind =
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'UNAVAILABLE'
  | 'TIMEOUT'
  | 'TOO_LARGE'
  | 'UNAUTHENTICATED'
  | 'UNIMPLEMENTED'
  | 'INTERNAL';

/** Process exit codes fixed by DESIGN.md. */
export const EXIT_OK = 0;
export const EXIT_RUNTIME = 1;
export const EXIT_USAGE = 2;

export class BentoError extends Error {
  readonly code: string;
  readonly kind: ErrorKind;
  /** Exit code when this error ends the CLI. */
  readonly exitCode: number;
  /** A user error prints its message only; anything else may print a stack with --log-level debug. */
  readonly userError: boolean;

  constructor(
    code: string,
    message: string,
    opts: { kind?: ErrorKind; exitCode?: number; userError?: boolean; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'BentoError';
    this.code = code;
    this.kind = opts.kind ?? 'INTERNAL';
    this.exitCode = opts.exitCode ?? EXIT_RUNTIME;
    this.userError = opts.userError ?? true;
  }
}

/** The spec is invalid: carries every problem found, sorted by position. */
export class SpecError extends BentoError {
  readonly diagnostics: readonly Diagnostic[];
  constructor(diagnostics: readonly Diagnostic[]) {
    const n = diagnostics.length;
    super('BENTO_ERR_SPEC_INVALID', `invalid spec: ${n} problem${n === 1 ? '' : 's'}`, {
      kind: 'INVALID_ARGUMENT',
      exitCode: EXIT_USAGE,
    });
    this.name = 'SpecError';
    this.diagnostics = diagnostics;
  }
}

/** The command line itself is wrong (unknown command or option, missing argument). */
export class UsageError extends BentoError {
  constructor(message: string) {
    super('BENTO_ERR_USAGE', message, { kind: 'INVALID_ARGUMENT', exitCode: EXIT_USAGE });
    this.name = 'UsageError';
  }
}

export type PlanErrorCode =
  | 'BENTO_ERR_PLAN_TOO_FEW_GPUS'
  | 'BENTO_ERR_PLAN_GPU_TYPE'
  | 'BENTO_ERR_PLAN_GPU_MEMORY'
  | 'BENTO_ERR_PLAN_DISCOVERY'
  | 'BENTO_ERR_PLAN_UNKNOWN_SERVICE';

/** The spec is valid but cannot be placed on the detected hardware. Exit 2 like a bad spec. */
export class PlanError extends BentoError {
  readonly diagnostics: readonly Diagnostic[];
  constructor(code: PlanErrorCode, diagnostics: readonly Diagnostic[]) {
    super(code, diagnostics.map((d) => d.message).join('\n'), {
      kind: 'INVALID_ARGUMENT',
      exitCode: EXIT_USAGE,
    });
    this.name = 'PlanError';
    this.diagnostics = diagnostics;
  }
}

export type RuntimeErrorCode =
  | 'BENTO_ERR_RUNTIME_MODEL_LOAD'
  | 'BENTO_ERR_RUNTIME_CUDA_PROVIDER'
  /** A worker thread died (crash, exit) while it held the request, or none is left. */
  | 'BENTO_ERR_RUNTIME_WORKER_DIED'
  /** onnxruntime refused the request's input (a kernel rejected a value): 400. */
  | 'BENTO_ERR_RUNTIME_INFERENCE'
  /** onnxruntime failed for a reason of its own (memory, device): 500. */
  | 'BENTO_ERR_RUNTIME_INFERENCE_FAILED'
  | 'BENTO_ERR_RUNTIME_LISTEN'
  /** server.auth names tokens that cannot be read, or none. */
  | 'BENTO_ERR_RUNTIME_AUTH';

export class RuntimeError extends BentoError {
  constructor(
    code: RuntimeErrorCode,
    message: string,
    opts: { kind?: ErrorKind; cause?: unknown } = {},
  ) {
    super(code, message, { kind: opts.kind ?? 'INTERNAL', exitCode: EXIT_RUNTIME, ...opts });
    this.name = 'RuntimeError';
  }
}

export type InferenceErrorCode =
  /** The request does not fit the model: unknown tensor, wrong shape, datatype or value. */
  | 'BENTO_ERR_INFER_INVALID'
  | 'BENTO_ERR_INFER_MODEL_NOT_FOUND'
  /** The service is at traffic.max_concurrency. */
  | 'BENTO_ERR_INFER_OVERLOADED'
  /** No worker holding the model is ready, or the server is draining. */
  | 'BENTO_ERR_INFER_NOT_READY'
  /** traffic.timeout_s passed, body reading included. */
  | 'BENTO_ERR_INFER_TIMEOUT'
  /** The request or message is larger than server.max_body_mb. */
  | 'BENTO_ERR_INFER_TOO_LARGE'
  | 'BENTO_ERR_INFER_UNAUTHENTICATED';

const INFERENCE_KINDS: Readonly<Record<InferenceErrorCode, ErrorKind>> = {
  BENTO_ERR_INFER_INVALID: 'INVALID_ARGUMENT',
  BENTO_ERR_INFER_MODEL_NOT_FOUND: 'NOT_FOUND',
  BENTO_ERR_INFER_OVERLOADED: 'UNAVAILABLE',
  BENTO_ERR_INFER_NOT_READY: 'UNAVAILABLE',
  BENTO_ERR_INFER_TIMEOUT: 'TIMEOUT',
  BENTO_ERR_INFER_TOO_LARGE: 'TOO_LARGE',
  BENTO_ERR_INFER_UNAUTHENTICATED: 'UNAUTHENTICATED',
};

/** A request the inference core refuses, whichever frontend (REST, gRPC) it came through. */
export class InferenceError extends BentoError {
  constructor(code: InferenceErrorCode, message: string) {
    super(code, message, { kind: INFERENCE_KINDS[code] });
    this.name = 'InferenceError';
  }
}

export type HttpErrorCode =
  /** Not the protocol's HTTP: a malformed URL, bad framing, what Node's parser refuses. */
  | 'BENTO_ERR_HTTP_BAD_REQUEST'
  | 'BENTO_ERR_HTTP_NOT_FOUND'
  | 'BENTO_ERR_HTTP_METHOD'
  | 'BENTO_ERR_HTTP_MEDIA_TYPE'
  | 'BENTO_ERR_HTTP_HEADERS_TOO_LARGE'
  /** A route of the protocol bento-run does not serve (yet). */
  | 'BENTO_ERR_HTTP_NOT_IMPLEMENTED';

const HTTP_KINDS: Readonly<Record<HttpErrorCode, ErrorKind>> = {
  BENTO_ERR_HTTP_BAD_REQUEST: 'INVALID_ARGUMENT',
  BENTO_ERR_HTTP_NOT_FOUND: 'NOT_FOUND',
  BENTO_ERR_HTTP_METHOD: 'INVALID_ARGUMENT',
  BENTO_ERR_HTTP_MEDIA_TYPE: 'INVALID_ARGUMENT',
  BENTO_ERR_HTTP_HEADERS_TOO_LARGE: 'TOO_LARGE',
  BENTO_ERR_HTTP_NOT_IMPLEMENTED: 'UNIMPLEMENTED',
};

/** A problem with the HTTP exchange itself, before the inference core sees a request. */
export class HttpError extends BentoError {
  constructor(code: HttpErrorCode, message: string) {
    super(code, message, { kind: HTTP_KINDS[code] });
    this.name = 'HttpError';
  }
}

export type K8sErrorCode =
  | 'BENTO_ERR_K8S_NAME'
  | 'BENTO_ERR_K8S_GPU_TYPE'
  | 'BENTO_ERR_K8S_MODEL_OUTSIDE_FOLDER'
  /** Two different model files would be one path in a container. */
  | 'BENTO_ERR_K8S_MODEL_PATH'
  /** KServe: a model without a storage URI, or a service whose models need several. */
  | 'BENTO_ERR_K8S_STORAGE'
  /** `scaling` that the autoscaler cannot follow (CPU utilisation without a CPU request). */
  | 'BENTO_ERR_K8S_SCALING'
  | 'BENTO_ERR_K8S_UNKNOWN_SERVICE'
  | 'BENTO_ERR_K8S_OPTION'
  | 'BENTO_ERR_K8S_OUTPUT';

/** One reason `bento-run k8s` or `bento-run dockerfile` cannot generate its output. */
export interface K8sProblem {
  readonly code: K8sErrorCode;
  readonly message: string;
}

/**
 * The spec is valid but cannot become Kubernetes objects or a Dockerfile as asked (a name that is
 * no DNS label, a GPU type without a node label, a bad flag). Carries every problem at once; its
 * `code` is the first one's. Exit 2 like a bad spec, except an output that cannot be written.
 */
export class K8sError extends BentoError {
  readonly problems: readonly K8sProblem[];
  constructor(problems: readonly K8sProblem[], opts: { heading?: string; exitCode?: number } = {}) {
    const first = problems[0] ?? { code: 'BENTO_ERR_K8S_OPTION', message: 'unknown problem' };
    const message =
      opts.heading === undefined
        ? problems.map((p) => p.message).join('\n')
        : [opts.heading, ...problems.map((p) => `  ${p.message}`)].join('\n');
    super(first.code, message, {
      kind: 'INVALID_ARGUMENT',
      exitCode: opts.exitCode ?? EXIT_USAGE,
    });
    this.name = 'K8sError';
    this.problems = problems;
  }
}

export type InitErrorCode =
  | 'BENTO_ERR_INIT_NOT_ONNX'
  | 'BENTO_ERR_INIT_EXISTS'
  | 'BENTO_ERR_INIT_OUTPUT';

/**
 * `bento-run init` cannot write its spec: a model file that is not ONNX or an output that
 * exists (exit 2, like a bad argument), or an output that cannot be written (exit 1).
 */
export class InitError extends BentoError {
  constructor(code: InitErrorCode, message: string, opts: { cause?: unknown } = {}) {
    super(code, message, {
      kind: code === 'BENTO_ERR_INIT_OUTPUT' ? 'INTERNAL' : 'INVALID_ARGUMENT',
      exitCode: code === 'BENTO_ERR_INIT_OUTPUT' ? EXIT_RUNTIME : EXIT_USAGE,
      ...(opts.cause === undefined ? {} : { cause: opts.cause }),
    });
    this.name = 'InitError';
  }
}
