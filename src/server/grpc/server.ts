/**
 * The gRPC frontend (server.grpc_port): Triton's GRPCInferenceService over the same inference
 * core as REST, so admission, batching, timeouts, metrics and statistics are the same. Each
 * handler decodes, asks the core, and encodes; errors become statuses in status.ts alone.
 */
import { readFileSync } from 'node:fs';
import {
  type handleUnaryCall,
  type Metadata,
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import type { Call, InferenceCore } from '../../core/inference.js';
import { modelConfig } from '../../core/triton.js';
import { BentoError, HttpError, InferenceError } from '../../errors.js';
import {
  inferenceServiceDefinition,
  type ModelInferRequest,
  type ModelInferResponse,
  type ModelRequest,
  type RepositoryIndexRequest,
} from '../../grpc/proto.js';
import type { Logger } from '../../log.js';
import type { ModelInfo } from '../../runtime/types.js';
import { DEFAULTS } from '../../spec/types.js';
import { type Authenticator, unauthenticated } from '../auth.js';
import { EXTENSIONS } from '../handlers.js';
import { statusFor } from '../reply.js';
import { modelMetadata } from '../rest-codec.js';
import { decodeInferRequest, encodeInferResponse, statisticsMessage } from './codec.js';
import { grpcErrorFor } from './status.js';

export interface GrpcServerOptions {
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** Largest message received or sent (server.max_body_mb); larger: RESOURCE_EXHAUSTED. */
  readonly maxMessageBytes: number;
  readonly log: Logger;
  /** bento-run's version, in ServerMetadata. */
  readonly version: string;
  /** With server.auth: every RPC but ServerLive, ServerReady and ModelReady needs a token. */
  readonly auth?: Authenticator | null;
  /** PEM files: serve gRPC over TLS. */
  readonly tls?: { readonly cert: string; readonly key: string } | null;
}

export interface RunningGrpcServer {
  readonly port: number;
  /** host:port, as a gRPC client dials it. */
  readonly address: string;
  /**
   * Stops accepting calls and lets those in flight finish; resolves true when they all did, or
   * false when `timeoutS` passed first and the rest were cut.
   */
  drain(timeoutS?: number): Promise<boolean>;
  /** Ends every call and connection now. */
  close(): void;
}

/** A call ended by its client (cancelled, or its deadline passed) before it was answered. */
class CallEnded extends Error {
  constructor(readonly status: number) {
    super('the client ended the call');
  }
}

/**
 * Rejects when the client cancels or its deadline passes (grpc-js answers DEADLINE_EXCEEDED
 * itself): nothing waits for a result no one will read, nor runs work queued for it. `done`
 * stops listening.
 */
function clientGone(call: ServerUnaryCall<unknown, unknown>): {
  gone: Promise<never>;
  done: () => void;
} {
  let timer: NodeJS.Timeout | undefined;
  let onCancel = () => {};
  const deadline = call.getDeadline();
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  const gone = new Promise<never>((_, reject) => {
    // Past its deadline, the call counts as a timeout (504); cancelled before, as 499.
    onCancel = () => reject(new CallEnded(Date.now() >= at - 5 ? 504 : 499));
    call.once('cancelled', onCancel);
    if (Number.isFinite(at)) {
      timer = setTimeout(() => reject(new CallEnded(504)), Math.max(0, at - Date.now()));
    }
    if (call.cancelled) onCancel();
  });
  gone.catch(() => undefined);
  return {
    gone,
    done: () => {
      clearTimeout(timer);
      call.off('cancelled', onCancel);
    },
  };
}

function firstValue(metadata: Metadata, key: string): string | undefined {
  const v = metadata.get(key)[0];
  return v === undefined ? undefined : v.toString();
}

/** The model named, at the version asked for ('' is the one served). */
function modelAt(core: InferenceCore, name: string, version: string): ModelInfo {
  const m = core.model(name);
  if (version !== '' && version !== m.version) {
    throw new InferenceError(
      'BENTO_ERR_INFER_MODEL_NOT_FOUND',
      `model \`${m.name}\` has no version ${version.slice(0, 20)} (served: ${m.version})`,
    );
  }
  return m;
}

async function modelInfer(
  core: InferenceCore,
  call: ServerUnaryCall<ModelInferRequest, ModelInferResponse>,
): Promise<ModelInferResponse> {
  const msg = call.request;
  let c: Call;
  try {
    modelAt(core, msg.model_name, msg.model_version);
    c = core.begin(msg.model_name);
  } catch (e) {
    core.metrics.requests.inc({ model: msg.model_name, status: String(statusFor(e)) });
    throw e;
  }
  const client = clientGone(call);
  // Its work leaves the queues now, not when its turn comes: the slot frees for the next call.
  client.gone.catch((e: unknown) => c.cancel(e));
  let status = 200;
  let encodeMs = 0;
  try {
    const decodeStart = performance.now();
    const request = decodeInferRequest(msg, c.model);
    const result = await Promise.race([
      c.run(request, performance.now() - decodeStart),
      client.gone,
    ]);
    const encodeStart = performance.now();
    const response = encodeInferResponse(c.model, request.id, result.outputs);
    encodeMs = performance.now() - encodeStart;
    return response;
  } catch (e) {
    status = e instanceof CallEnded ? e.status : statusFor(e);
    throw e;
  } finally {
    client.done();
    c.end(status, encodeMs);
  }
}

/** As REST's POST /v2/repository/index: models and pipelines. */
function repositoryIndex(core: InferenceCore, req: RepositoryIndexRequest) {
  const models = core.repositoryIndex();
  return { models: req.ready ? models.filter((m) => m.state === 'READY') : models };
}

const notYet = (what: string) => () => {
  throw new HttpError(
    'BENTO_ERR_HTTP_NOT_IMPLEMENTED',
    `${what} is not supported yet: restart bento-run with the changed spec`,
  );
};

/** A decoded request (its shape is the .proto's) -> the response message. */
type Handler = (call: ServerUnaryCall<unknown, unknown>) => unknown;

const requestOf = <T>(call: ServerUnaryCall<unknown, unknown>) => call.request as T;

function handlers(core: InferenceCore, opts: GrpcServerOptions): Record<string, Handler> {
  const model = (call: ServerUnaryCall<unknown, unknown>) => {
    const req = requestOf<ModelRequest>(call);
    return modelAt(core, req.name, req.version);
  };
  return {
    ServerMetadata: () => ({ name: 'bento-run', version: opts.version, extensions: EXTENSIONS }),
    // The REST answers are the protobuf JSON form of the same messages: field for field.
    ModelMetadata: (call) => modelMetadata(model(call)),
    ModelInfer: (call) =>
      modelInfer(core, call as ServerUnaryCall<ModelInferRequest, ModelInferResponse>),
    ModelConfig: (call) => ({ config: modelConfig(core.runtime.plan, model(call)) }),
    ModelStatistics: (call) =>
      statisticsMessage(
        core.stats.snapshot(
          requestOf<ModelRequest>(call).name === '' ? undefined : model(call).name,
        ),
      ),
    RepositoryIndex: (call) => repositoryIndex(core, requestOf<RepositoryIndexRequest>(call)),
    RepositoryModelLoad: notYet('model load'),
    RepositoryModelUnload: notYet('model unload'),
  };
}

/** The health RPCs, which answer without a token (as REST's health routes do). */
function openHandlers(core: InferenceCore): Record<string, Handler> {
  return {
    ServerLive: () => ({ live: true }),
    ServerReady: () => ({ ready: core.ready() }),
    // An unknown model or version is not ready, not an error: Triton answers so, and
    // tritonclient's is_model_ready() then returns False rather than raising.
    ModelReady: (call) => {
      const req = requestOf<ModelRequest>(call);
      try {
        return { ready: core.modelReady(modelAt(core, req.name, req.version).name) };
      } catch (e) {
        if (e instanceof BentoError && e.kind === 'NOT_FOUND') return { ready: false };
        throw e;
      }
    },
  };
}

function implementation(
  core: InferenceCore,
  opts: GrpcServerOptions,
): UntypedServiceImplementation {
  const unary =
    (name: string, fn: Handler, open: boolean): handleUnaryCall<unknown, unknown> =>
    (call, callback) => {
      if (!open && opts.auth && !opts.auth(firstValue(call.metadata, 'authorization'))) {
        callback(grpcErrorFor(unauthenticated()));
        return;
      }
      Promise.resolve()
        .then(() => fn(call))
        .then(
          (response) => callback(null, response),
          (e: unknown) => {
            if (e instanceof CallEnded) return; // answered by grpc-js already
            const status = statusFor(e);
            if (status >= 500 && status !== 503 && status !== 504)
              opts.log.error(`gRPC ${name}: ${(e as Error).stack ?? e}`);
            callback(grpcErrorFor(e));
          },
        );
    };
  const out: UntypedServiceImplementation = {};
  for (const [name, fn] of Object.entries(openHandlers(core))) out[name] = unary(name, fn, true);
  for (const [name, fn] of Object.entries(handlers(core, opts))) out[name] = unary(name, fn, false);
  return out;
}

const hostPort = (host: string, port: number) =>
  `${host.includes(':') ? `[${host}]` : host}:${port}`;

/** Serves the gRPC API on `opts.host:opts.port`; resolves once it listens. */
export async function startGrpcServer(
  core: InferenceCore,
  opts: GrpcServerOptions,
): Promise<RunningGrpcServer> {
  const server = new Server({
    'grpc.max_receive_message_length': opts.maxMessageBytes,
    'grpc.max_send_message_length': opts.maxMessageBytes,
  });
  server.addService(inferenceServiceDefinition(), implementation(core, opts));
  const credentials = opts.tls
    ? ServerCredentials.createSsl(
        null,
        [{ cert_chain: readFileSync(opts.tls.cert), private_key: readFileSync(opts.tls.key) }],
        false,
      )
    : ServerCredentials.createInsecure();
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(hostPort(opts.host, opts.port), credentials, (err, bound) =>
      err ? reject(err) : resolve(bound),
    );
  });
  return {
    port,
    address: hostPort(opts.host, port),
    drain(timeoutS = DEFAULTS.drainTimeoutS) {
      return new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve(false);
        }, timeoutS * 1000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve(true);
        });
      });
    },
    close: () => server.forceShutdown(),
  };
}
