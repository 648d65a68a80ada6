/**
 * `bento-run/client/grpc`: the typed client over gRPC (Triton's GRPCInferenceService, from the
 * project's proto/inference.proto). Typed arrays in, typed arrays out, the same shapes as the
 * REST client's; it works against bento-run, Triton and any other Open Inference Protocol gRPC
 * server. Tensors go out as raw_input_contents unless asked for typed contents, and come back
 * from raw_output_contents or, from servers that answer so, typed contents.
 */
import {
  ChannelCredentials,
  type Client,
  Metadata,
  type ServiceError,
  status,
} from '@grpc/grpc-js';
import {
  BentoClientError,
  type ClientTensor,
  datatypeOf,
  fromInput,
  type InferInput,
  type InferResponse,
  type ModelMetadata,
  type ServerMetadata,
  type TensorMetadata,
} from './client.js';
import { fromContents, toContents } from './grpc/contents.js';
import {
  type InferOutputTensor,
  inferenceService,
  type ModelInferResponse,
  type ModelMetadataResponse,
} from './grpc/proto.js';
import { decodeBinaryTensor, encodeBinaryTensor } from './tensor/binary.js';
import {
  elementCount,
  isProtocolDatatype,
  PROTOCOL_TO_ORT,
  type ProtocolDatatype,
} from './tensor/datatypes.js';
import type { TensorData } from './tensor/types.js';

export interface GrpcClientOptions {
  /** Sent as `authorization: Bearer TOKEN` on every call (server.auth). */
  readonly token?: string;
  /** TLS: true to verify against the system's roots, or the CA (PEM) to verify against. */
  readonly tls?: boolean | { readonly ca: Buffer | string };
  /** Largest message sent or received (default 64 MiB, bento-run's server.max_body_mb). */
  readonly maxMessageBytes?: number;
}

export interface GrpcInferOptions {
  readonly id?: string;
  /** Output names to return; every tensor output when absent. */
  readonly outputs?: readonly string[];
  /** 'raw' (default): raw_input_contents, every datatype; 'typed': contents (not FP16). */
  readonly contents?: 'raw' | 'typed';
  /** The call's deadline, in milliseconds from now. */
  readonly timeoutMs?: number;
}

/** gRPC status codes -> the HTTP statuses the REST client reports for the same errors. */
const HTTP_STATUS: Partial<Record<status, number>> = {
  [status.INVALID_ARGUMENT]: 400,
  [status.UNAUTHENTICATED]: 401,
  [status.NOT_FOUND]: 404,
  [status.RESOURCE_EXHAUSTED]: 413,
  [status.UNIMPLEMENTED]: 501,
  [status.UNAVAILABLE]: 503,
  [status.DEADLINE_EXCEEDED]: 504,
};

/** A failed call: `status` as REST would say it, `grpcCode` the gRPC status code. */
export class BentoGrpcClientError extends BentoClientError {
  constructor(
    readonly grpcCode: status,
    message: string,
    code: string,
  ) {
    super(HTTP_STATUS[grpcCode] ?? 500, message, code);
    this.name = 'BentoGrpcClientError';
  }
}

function clientError(e: ServiceError): BentoGrpcClientError {
  const code = e.metadata?.get('bento-error-code')[0]?.toString() ?? 'BENTO_ERR_CLIENT_GRPC';
  return new BentoGrpcClientError(e.code, `gRPC ${status[e.code]}: ${e.details}`, code);
}

type Unary = (
  request: unknown,
  metadata: Metadata,
  options: { deadline?: number },
  callback: (e: ServiceError | null, response: unknown) => void,
) => void;

const shapeOf = (shape: readonly (string | number)[]) => shape.map(Number);

function tensorMetadata(t: {
  name: string;
  datatype: string;
  shape: readonly (string | number)[];
}) {
  return { name: t.name, datatype: t.datatype as ProtocolDatatype, shape: shapeOf(t.shape) };
}

function outputTensor(o: InferOutputTensor, raw: Buffer | undefined): ClientTensor {
  if (!isProtocolDatatype(o.datatype)) {
    throw new BentoClientError(200, `output ${o.name}: unknown datatype ${o.datatype}`);
  }
  const shape = shapeOf(o.shape);
  const type = PROTOCOL_TO_ORT[o.datatype];
  let data: TensorData;
  try {
    data =
      raw !== undefined
        ? decodeBinaryTensor(type, shape, raw)
        : o.contents
          ? fromContents(o.datatype, elementCount(shape), o.contents)
          : decodeBinaryTensor(type, shape, Buffer.alloc(0));
  } catch (e) {
    throw new BentoClientError(200, `output ${o.name}: ${(e as Error).message}`);
  }
  return { datatype: o.datatype, shape, data };
}

export class BentoGrpcClient {
  private readonly client: Client;
  private readonly token: string | undefined;

  constructor(
    /** host:port, e.g. 127.0.0.1:8001. */
    readonly address: string,
    opts: GrpcClientOptions = {},
  ) {
    const tls = opts.tls;
    const credentials =
      tls === undefined || tls === false
        ? ChannelCredentials.createInsecure()
        : ChannelCredentials.createSsl(
            tls === true ? null : typeof tls.ca === 'string' ? Buffer.from(tls.ca) : tls.ca,
          );
    const max = opts.maxMessageBytes ?? 64 * 1024 * 1024;
    const Service = inferenceService();
    this.client = new Service(address, credentials, {
      'grpc.max_receive_message_length': max,
      'grpc.max_send_message_length': max,
    });
    this.token = opts.token;
  }

  private call<T>(method: string, request: unknown, timeoutMs?: number): Promise<T> {
    const metadata = new Metadata();
    if (this.token !== undefined) metadata.set('authorization', `Bearer ${this.token}`);
    const fn = (this.client as unknown as Record<string, Unary>)[method]!.bind(this.client);
    return new Promise<T>((resolve, reject) => {
      fn(
        request,
        metadata,
        timeoutMs === undefined ? {} : { deadline: Date.now() + timeoutMs },
        (e, response) => (e ? reject(clientError(e)) : resolve(response as T)),
      );
    });
  }

  /** Runs a model; tensors travel raw (every datatype, FP16 included) unless `contents: 'typed'`. */
  async infer(
    model: string,
    inputs: Readonly<Record<string, InferInput>>,
    opts: GrpcInferOptions = {},
  ): Promise<InferResponse> {
    const typed = opts.contents === 'typed';
    const raw: Buffer[] = [];
    const tensors = Object.entries(inputs).map(([name, t]) => {
      const datatype = t.datatype ?? datatypeOf(t.data);
      const data = fromInput(datatype, t.data);
      const head = { name, datatype, shape: t.shape };
      if (typed) return { ...head, contents: toContents(datatype, data) };
      raw.push(encodeBinaryTensor({ type: PROTOCOL_TO_ORT[datatype], dims: t.shape, data }));
      return head;
    });
    const res = await this.call<ModelInferResponse>(
      'ModelInfer',
      {
        model_name: model,
        id: opts.id ?? '',
        inputs: tensors,
        outputs: (opts.outputs ?? []).map((name) => ({ name })),
        raw_input_contents: raw,
      },
      opts.timeoutMs,
    );
    const outputs: Record<string, ClientTensor> = {};
    const rawOut = res.raw_output_contents.length === res.outputs.length;
    for (const [i, o] of res.outputs.entries()) {
      outputs[o.name] = outputTensor(o, rawOut ? res.raw_output_contents[i] : undefined);
    }
    return { modelName: res.model_name, id: res.id === '' ? undefined : res.id, outputs };
  }

  metadata(): Promise<ServerMetadata>;
  metadata(model: string): Promise<ModelMetadata>;
  async metadata(model?: string): Promise<ServerMetadata | ModelMetadata> {
    if (model === undefined) return this.call<ServerMetadata>('ServerMetadata', {});
    const m = await this.call<ModelMetadataResponse>('ModelMetadata', { name: model });
    return {
      name: m.name,
      versions: m.versions,
      platform: m.platform,
      inputs: m.inputs.map(tensorMetadata) as TensorMetadata[],
      outputs: m.outputs.map(tensorMetadata) as TensorMetadata[],
    };
  }

  /** Server readiness, or one model's (false for a model the server does not have). */
  async ready(model?: string): Promise<boolean> {
    if (model === undefined) return (await this.call<{ ready: boolean }>('ServerReady', {})).ready;
    try {
      return (await this.call<{ ready: boolean }>('ModelReady', { name: model })).ready;
    } catch (e) {
      if (e instanceof BentoGrpcClientError && e.grpcCode === status.NOT_FOUND) return false;
      throw e;
    }
  }

  async live(): Promise<boolean> {
    return (await this.call<{ live: boolean }>('ServerLive', {})).live;
  }

  /** Triton's model configuration, as the protobuf message (64-bit integers as strings). */
  async config(model: string): Promise<Record<string, unknown>> {
    return (await this.call<{ config: Record<string, unknown> }>('ModelConfig', { name: model }))
      .config;
  }

  /** Triton's statistics, of one model or every one (64-bit integers as strings). */
  async statistics(model?: string): Promise<Record<string, unknown>[]> {
    const r = await this.call<{ model_stats: Record<string, unknown>[] }>('ModelStatistics', {
      name: model ?? '',
    });
    return r.model_stats;
  }

  /** Every model served, with its version and state (READY, UNAVAILABLE). */
  async repositoryIndex(): Promise<
    { name: string; version: string; state: string; reason: string }[]
  > {
    return (
      await this.call<{
        models: { name: string; version: string; state: string; reason: string }[];
      }>('RepositoryIndex', {})
    ).models;
  }

  close(): void {
    this.client.close();
  }
}
