/**
 * `bento-run/client`: a small typed client for the Open Inference Protocol on undici. Typed
 * arrays in, typed arrays out; it works against bento-run and any other v2 REST server.
 */
import { Pool } from 'undici';
import {
  decodeBinaryTensor,
  encodeBinaryTensor,
  HEADER_LENGTH,
  splitBody,
} from './tensor/binary.js';
import {
  floatToHalf,
  isProtocolDatatype,
  PROTOCOL_TO_ORT,
  type ProtocolDatatype,
  TYPED_ARRAY,
} from './tensor/datatypes.js';
import { parseJsonWithNonFinite, toJsonValues } from './tensor/json.js';
import type { OrtType, TensorData } from './tensor/types.js';

export type { ProtocolDatatype } from './tensor/datatypes.js';

export interface ClientTensor {
  readonly datatype: ProtocolDatatype;
  readonly shape: readonly number[];
  /** FP16 travels as raw half bits in a Uint16Array; BOOL as a Uint8Array of 0/1. */
  readonly data: TensorData;
}

export interface InferInput {
  readonly data: TensorData | readonly number[] | readonly boolean[];
  readonly shape: readonly number[];
  /** Inferred from the typed array when absent (Uint16Array means UINT16; say FP16 for half). */
  readonly datatype?: ProtocolDatatype;
}

export interface InferOptions {
  /** Send and receive tensors as raw bytes (the binary tensor data extension). */
  readonly binary?: boolean;
  readonly id?: string;
  /** Output names to return; all when absent. */
  readonly outputs?: readonly string[];
  readonly parameters?: Readonly<Record<string, unknown>>;
}

export interface InferResponse {
  readonly modelName: string;
  readonly id: string | undefined;
  readonly outputs: Readonly<Record<string, ClientTensor>>;
}

export interface TensorMetadata {
  readonly name: string;
  readonly datatype: ProtocolDatatype;
  readonly shape: readonly number[];
}

export interface ModelMetadata {
  readonly name: string;
  readonly versions?: readonly string[];
  readonly platform: string;
  readonly inputs: readonly TensorMetadata[];
  readonly outputs: readonly TensorMetadata[];
}

export interface ServerMetadata {
  readonly name: string;
  readonly version: string;
  readonly extensions: readonly string[];
}

export class BentoClientError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** The server's BENTO_ERR_ code, or BENTO_ERR_CLIENT_HTTP when its answer had none. */
    readonly code = 'BENTO_ERR_CLIENT_HTTP',
  ) {
    super(message);
    this.name = 'BentoClientError';
  }
}

const NON_FINITE: Readonly<Record<string, number>> = {
  NaN: Number.NaN,
  Infinity: Number.POSITIVE_INFINITY,
  '-Infinity': Number.NEGATIVE_INFINITY,
};

/** The datatype input data travels as, from its typed array (plain numbers: FP32). */
export function datatypeOf(data: InferInput['data']): ProtocolDatatype {
  if (data instanceof Float32Array) return 'FP32';
  if (data instanceof Float64Array) return 'FP64';
  if (data instanceof Int8Array) return 'INT8';
  if (data instanceof Int16Array) return 'INT16';
  if (data instanceof Int32Array) return 'INT32';
  if (data instanceof BigInt64Array) return 'INT64';
  if (data instanceof Uint8Array) return 'UINT8';
  if (data instanceof Uint16Array) return 'UINT16';
  if (data instanceof Uint32Array) return 'UINT32';
  if (data instanceof BigUint64Array) return 'UINT64';
  const first = (data as readonly unknown[])[0];
  if (typeof first === 'string') return 'BYTES';
  if (typeof first === 'boolean') return 'BOOL';
  return 'FP32';
}

/** JSON `data` -> the typed array for the datatype. */
export function fromJsonData(datatype: ProtocolDatatype, values: readonly unknown[]): TensorData {
  const type: OrtType = PROTOCOL_TO_ORT[datatype];
  if (type === 'string') return values.map(String);
  const out = new TYPED_ARRAY[type](values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (type === 'int64' || type === 'uint64') out[i] = BigInt(v as number | string);
    else if (type === 'bool') out[i] = v ? 1 : 0;
    else if (typeof v === 'string' && v in NON_FINITE)
      out[i] = type === 'float16' ? floatToHalf(NON_FINITE[v]!) : NON_FINITE[v]!;
    else if (type === 'float16') out[i] = floatToHalf(v as number);
    else out[i] = v as number;
  }
  return out as TensorData;
}

function parseJson<T>(status: number, bytes: Buffer): T {
  const text = bytes.toString('utf8');
  let parsed: unknown;
  try {
    parsed = parseJsonWithNonFinite(text);
  } catch {
    throw new BentoClientError(status, `HTTP ${status}: ${text.slice(0, 200)}`);
  }
  if (status >= 400) {
    const { error, code } = parsed as { error?: string; code?: string };
    throw new BentoClientError(status, `HTTP ${status}: ${error ?? text}`, code);
  }
  return parsed as T;
}

/** Input data as the typed array its datatype travels in (FP16 as half bits, BOOL as bytes). */
export function fromInput(datatype: ProtocolDatatype, data: InferInput['data']): TensorData {
  // By the datatype, not the first value: INT64 and UINT64 may be given as numeric strings.
  if (datatype === 'BYTES') return data as string[];
  if (ArrayBuffer.isView(data)) return data as TensorData;
  return fromJsonData(datatype, data as readonly unknown[]);
}

export class BentoClient {
  private readonly pool: Pool;

  constructor(
    readonly baseUrl: string,
    opts: { connections?: number } = {},
  ) {
    this.pool = new Pool(baseUrl, { connections: opts.connections ?? 16 });
  }

  private async request(
    method: 'GET' | 'POST',
    path: string,
    body?: string | Buffer,
    headers: Record<string, string> = { 'content-type': 'application/json' },
  ) {
    const res = await this.pool.request({
      method,
      path,
      ...(body === undefined ? {} : { body, headers }),
    });
    const bytes = Buffer.from(await res.body.arrayBuffer());
    return { status: res.statusCode, headers: res.headers, bytes };
  }

  private async json<T>(method: 'GET' | 'POST', path: string, body?: string): Promise<T> {
    const { status, bytes } = await this.request(method, path, body);
    return parseJson<T>(status, bytes);
  }

  /**
   * Runs a model. With `binary: true`, tensors travel as raw bytes after a JSON header (the
   * binary tensor data extension, as NVIDIA's tritonclient sends them), both ways.
   */
  async infer(
    model: string,
    inputs: Readonly<Record<string, InferInput>>,
    opts: InferOptions = {},
  ): Promise<InferResponse> {
    const chunks: Buffer[] = [];
    const body = {
      ...(opts.id === undefined ? {} : { id: opts.id }),
      inputs: Object.entries(inputs).map(([name, t]) => {
        const datatype = t.datatype ?? datatypeOf(t.data);
        if (!opts.binary)
          return {
            name,
            shape: t.shape,
            datatype,
            data: toJsonValues(PROTOCOL_TO_ORT[datatype], t.data),
          };
        const bytes = encodeBinaryTensor({
          type: PROTOCOL_TO_ORT[datatype],
          dims: t.shape,
          data: fromInput(datatype, t.data),
        });
        chunks.push(bytes);
        return { name, shape: t.shape, datatype, parameters: { binary_data_size: bytes.length } };
      }),
      ...(opts.outputs ? { outputs: opts.outputs.map((name) => ({ name })) } : {}),
      parameters: { ...opts.parameters, ...(opts.binary ? { binary_data_output: true } : {}) },
    };
    const path = `/v2/models/${encodeURIComponent(model)}/infer`;
    const header = JSON.stringify(body);
    const { status, headers, bytes } = opts.binary
      ? await this.request('POST', path, Buffer.concat([Buffer.from(header), ...chunks]), {
          'content-type': 'application/octet-stream',
          [HEADER_LENGTH]: String(Buffer.byteLength(header)),
        })
      : await this.request('POST', path, header);
    const { json, binary } = splitBody(bytes, headers[HEADER_LENGTH]);
    const res = parseJson<{
      model_name: string;
      id?: string;
      outputs: {
        name: string;
        datatype: string;
        shape: number[];
        data?: unknown[];
        parameters?: { binary_data_size?: number };
      }[];
    }>(status, json);
    const outputs: Record<string, ClientTensor> = {};
    let offset = 0;
    for (const o of res.outputs) {
      if (!isProtocolDatatype(o.datatype))
        throw new BentoClientError(200, `unknown datatype ${o.datatype}`);
      const size = o.parameters?.binary_data_size;
      let data: TensorData;
      if (size !== undefined && binary) {
        data = decodeBinaryTensor(
          PROTOCOL_TO_ORT[o.datatype],
          o.shape,
          binary.subarray(offset, offset + size),
        );
        offset += size;
      } else {
        data = fromJsonData(o.datatype, o.data ?? []);
      }
      outputs[o.name] = { datatype: o.datatype, shape: o.shape, data };
    }
    return { modelName: res.model_name, id: res.id, outputs };
  }

  metadata(): Promise<ServerMetadata>;
  metadata(model: string): Promise<ModelMetadata>;
  metadata(model?: string): Promise<ServerMetadata | ModelMetadata> {
    return this.json(
      'GET',
      model === undefined ? '/v2' : `/v2/models/${encodeURIComponent(model)}`,
    );
  }

  /** Server readiness, or one model's. */
  async ready(model?: string): Promise<boolean> {
    const path =
      model === undefined ? '/v2/health/ready' : `/v2/models/${encodeURIComponent(model)}/ready`;
    const { status } = await this.request('GET', path);
    return status === 200;
  }

  async live(): Promise<boolean> {
    return (await this.request('GET', '/v2/health/live')).status === 200;
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
