/**
 * gRPC for tests: the frontend started on top of an in-process server's inference core, on an
 * ephemeral port, and a plain grpc-js client generated at run time from proto/inference.proto
 * (not bento-run's own client), so that the tests see the wire as any client would.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  ChannelCredentials,
  type Client,
  type ClientUnaryCall,
  type GrpcObject,
  loadPackageDefinition,
  Metadata,
  type ServiceClientConstructor,
  type ServiceError,
  status,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { createLogger } from '../../src/log.js';
import {
  type GrpcServerOptions,
  type RunningGrpcServer,
  startGrpcServer,
} from '../../src/server/grpc/server.js';
import { DEFAULT_MAX_BODY_BYTES } from '../../src/server/http.js';
import { type InProcessServer, ROOT } from './server.js';

export { status };

export const PROTO = join(ROOT, 'proto', 'inference.proto');

/** The gRPC frontend on `srv`'s core, at 127.0.0.1 and a free port. */
export function startGrpc(
  srv: InProcessServer,
  opts: Partial<GrpcServerOptions> = {},
): Promise<RunningGrpcServer> {
  return startGrpcServer(srv.server.core, {
    host: '127.0.0.1',
    port: 0,
    maxMessageBytes: DEFAULT_MAX_BODY_BYTES,
    version: 'test',
    log: createLogger({ level: 'error', write: () => {} }),
    ...opts,
  });
}

let Service: ServiceClientConstructor | undefined;

function service(): ServiceClientConstructor {
  Service ??= (
    loadPackageDefinition(
      loadSync(PROTO, {
        keepCase: true,
        longs: String,
        enums: String,
        defaults: true,
        oneofs: true,
      }),
    ).inference as GrpcObject
  ).GRPCInferenceService as ServiceClientConstructor;
  return Service;
}

export interface CallOptions {
  readonly token?: string;
  /** The call's deadline, ms from now. */
  readonly deadlineMs?: number;
}

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary decoded messages
export type Message = any;

/** A call in flight, which the client can cancel. */
export interface StartedCall {
  readonly response: Promise<Message>;
  cancel(): void;
}

export interface TestClient {
  call(method: string, request?: unknown, opts?: CallOptions): Promise<Message>;
  start(method: string, request?: unknown, opts?: CallOptions): StartedCall;
  close(): void;
}

type Unary = (
  request: unknown,
  metadata: Metadata,
  options: { deadline?: number },
  callback: (e: ServiceError | null, response: unknown) => void,
) => ClientUnaryCall;

export function connect(address: string, credentials = ChannelCredentials.createInsecure()) {
  const client: Client = new (service())(address, credentials, {
    'grpc.max_receive_message_length': 256 * 1024 * 1024,
    'grpc.max_send_message_length': 256 * 1024 * 1024,
  });
  const methods = client as unknown as Record<string, Unary>;
  const start = (method: string, request: unknown = {}, opts: CallOptions = {}) => {
    const metadata = new Metadata();
    if (opts.token !== undefined) metadata.set('authorization', `Bearer ${opts.token}`);
    const options = opts.deadlineMs === undefined ? {} : { deadline: Date.now() + opts.deadlineMs };
    let started: ClientUnaryCall | undefined;
    const response = new Promise<Message>((resolve, reject) => {
      started = methods[method]!.call(client, request, metadata, options, (e, r) =>
        e ? reject(e) : resolve(r),
      );
    });
    return { response, cancel: () => started!.cancel() };
  };
  return {
    call: (method: string, request?: unknown, opts?: CallOptions) =>
      start(method, request, opts).response,
    start,
    close: () => client.close(),
  } satisfies TestClient;
}

/** The call fails with `code`, and with `bentoCode` in its trailing metadata when given. */
export async function rejects(
  p: Promise<unknown>,
  code: status,
  bentoCode?: string,
  details?: RegExp,
): Promise<ServiceError> {
  try {
    await p;
  } catch (e) {
    const err = e as ServiceError;
    assert.equal(
      err.code,
      code,
      `expected ${status[code]}, got ${status[err.code]}: ${err.details}`,
    );
    if (bentoCode !== undefined)
      assert.equal(err.metadata.get('bento-error-code')[0], bentoCode, err.details);
    if (details) assert.match(err.details, details);
    return err;
  }
  assert.fail(`expected ${status[code]}, the call succeeded`);
}
