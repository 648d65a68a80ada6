/**
 * The Open Inference Protocol (KServe v2 REST) on the wire: a JSON infer request -> validated
 * tensors for the runtime, and the runtime's tensors -> a JSON response. Every problem with a
 * request is an INVALID_ARGUMENT error raised here, before anything reaches a worker.
 */
import { HttpError } from '../errors.js';
import type { OrtType, TensorData, TensorSignature, WireTensor } from '../runtime/messages.js';
import type { ModelInfo } from '../runtime/pool.js';
import {
  elementCount,
  floatToHalf,
  halfToFloat,
  isProtocolDatatype,
  ORT_TO_PROTOCOL,
  PROTOCOL_TO_ORT,
  type ProtocolDatatype,
  TYPED_ARRAY,
  toJsonValues,
} from '../runtime/tensor.js';
import { decodeBinaryTensor, encodeBinaryTensor } from './binary.js';

export interface InferRequest {
  readonly id: string | undefined;
  readonly inputs: Record<string, WireTensor>;
  /** Output names asked for; empty means all. */
  readonly outputs: string[];
  readonly parameters: Readonly<Record<string, unknown>>;
  /** Whether an output goes back as binary data (the binary tensor extension). */
  readonly binaryOutput: (name: string) => boolean;
}

export interface ResponseTensor {
  readonly name: string;
  readonly datatype: ProtocolDatatype;
  readonly shape: readonly number[];
  readonly data?: unknown[];
  readonly parameters?: { readonly binary_data_size: number };
}

/** A response: the JSON header, and the binary tensor bytes that follow it (maybe none). */
export interface EncodedResponse {
  readonly json: string;
  readonly binary: readonly Buffer[];
}

function bad(message: string): HttpError {
  return new HttpError('BENTO_ERR_HTTP_BAD_REQUEST', 'INVALID_ARGUMENT', message);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

const INT_RANGES: Partial<Record<OrtType, readonly [number, number]>> = {
  int8: [-128, 127],
  int16: [-32768, 32767],
  int32: [-2147483648, 2147483647],
  uint8: [0, 255],
  uint16: [0, 65535],
  uint32: [0, 4294967295],
};

/**
 * Flattens nested `data` (row-major), as the protocol allows both forms. Nested data must
 * follow the shape exactly: `[[1, 2], [3, 4, 5, 6, 7, 8]]` is not a [2, 4] tensor.
 */
function flatten(data: unknown[], dims: readonly number[], name: string): unknown[] {
  if (!data.some(Array.isArray)) return data;
  const out: unknown[] = [];
  const walk = (v: unknown, depth: number, at: string) => {
    if (depth === dims.length) {
      if (Array.isArray(v))
        throw bad(
          `input \`${name}\`: data${at} is nested deeper than the shape [${dims.join(', ')}]`,
        );
      out.push(v);
      return;
    }
    if (!Array.isArray(v) || v.length !== dims[depth]) {
      const got = Array.isArray(v) ? `${v.length} items` : 'a single value';
      throw bad(
        `input \`${name}\`: data${at} has ${got}, shape [${dims.join(', ')}] needs ${dims[depth]} at dimension ${depth}`,
      );
    }
    for (const [i, x] of v.entries()) walk(x, depth + 1, `${at}[${i}]`);
  };
  walk(data, 0, '');
  return out;
}

/** JSON values -> the typed array for `type`, checking every element. */
export function toTensorData(type: OrtType, values: unknown[], name: string): TensorData {
  const fail = (i: number, want: string) =>
    bad(`input \`${name}\`: data[${i}] is ${JSON.stringify(values[i])}, expected ${want}`);
  if (type === 'string') {
    for (let i = 0; i < values.length; i++)
      if (typeof values[i] !== 'string') throw fail(i, 'a string');
    return values as string[];
  }
  const out = new TYPED_ARRAY[type](values.length);
  if (type === 'bool') {
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (typeof v !== 'boolean') throw fail(i, 'true or false');
      out[i] = v ? 1 : 0;
    }
  } else if (type === 'int64' || type === 'uint64') {
    const [lo, hi] = type === 'int64' ? [-(2n ** 63n), 2n ** 63n - 1n] : [0n, 2n ** 64n - 1n];
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      // Integers beyond 2^53 lose precision as JSON numbers; numeric strings carry them exactly.
      const ok =
        (typeof v === 'number' && Number.isInteger(v)) ||
        (typeof v === 'string' && /^-?\d+$/.test(v));
      if (!ok) throw fail(i, 'an integer');
      const b = BigInt(v as number | string);
      if (b < lo || b > hi) throw fail(i, `an integer in ${type} range`);
      out[i] = b;
    }
  } else if (type === 'float32' || type === 'float64' || type === 'float16') {
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (typeof v !== 'number') throw fail(i, 'a number');
      out[i] = type === 'float16' ? floatToHalf(v) : v;
    }
  } else {
    const [lo, hi] = INT_RANGES[type]!;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) {
        throw fail(i, `an integer from ${lo} to ${hi} (${ORT_TO_PROTOCOL[type]})`);
      }
      out[i] = v;
    }
  }
  return out as TensorData;
}

function checkShape(name: string, shape: unknown, sig: TensorSignature): number[] {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw bad(`input \`${name}\`: shape must be a list of non-negative integers`);
  }
  const dims = shape as number[];
  if (sig.shape.length > 0 && dims.length !== sig.shape.length) {
    throw bad(
      `input \`${name}\`: shape [${dims.join(', ')}] has ${dims.length} dimensions, the model expects ${sig.shape.length} ([${sig.shape.join(', ')}], -1 is any size)`,
    );
  }
  sig.shape.forEach((want, i) => {
    if (want >= 0 && dims[i] !== want) {
      throw bad(
        `input \`${name}\`: dimension ${i} is ${dims[i]}, the model expects ${want} (shape [${sig.shape.join(', ')}], -1 is any size)`,
      );
    }
  });
  return dims;
}

/** Parses and checks an infer request body against the model's signature. */
export function parseInferRequest(
  body: unknown,
  model: ModelInfo,
  binary: Buffer | null = null,
): InferRequest {
  if (!isRecord(body)) throw bad('the request body must be a JSON object with `inputs`');
  const { id, inputs, outputs, parameters } = body;
  if (id !== undefined && typeof id !== 'string') throw bad('`id` must be a string');
  if (parameters !== undefined && !isRecord(parameters))
    throw bad('`parameters` must be an object');
  if (!Array.isArray(inputs) || inputs.length === 0) throw bad('`inputs` must be a non-empty list');
  const byName = new Map(model.inputs.map((s) => [s.name, s]));
  const tensors: Record<string, WireTensor> = {};
  let offset = 0;
  for (const [i, raw] of inputs.entries()) {
    if (!isRecord(raw))
      throw bad(`inputs[${i}] must be an object with name, shape, datatype, data`);
    const name = raw.name;
    if (typeof name !== 'string') throw bad(`inputs[${i}].name must be a string`);
    const sig = byName.get(name);
    if (!sig) {
      throw bad(
        `unknown input \`${name}\` for model \`${model.name}\` (inputs: ${model.inputs.map((s) => s.name).join(', ')})`,
      );
    }
    if (name in tensors) throw bad(`input \`${name}\` is given twice`);
    const datatype = raw.datatype;
    if (!isProtocolDatatype(datatype)) {
      throw bad(
        `input \`${name}\`: datatype ${JSON.stringify(datatype)} is not one of ${Object.keys(PROTOCOL_TO_ORT).join(', ')}`,
      );
    }
    const type = PROTOCOL_TO_ORT[datatype];
    if (sig.type !== 'unknown' && type !== sig.type) {
      throw bad(
        `input \`${name}\`: datatype ${datatype} does not match the model's ${ORT_TO_PROTOCOL[sig.type]}`,
      );
    }
    const dims = checkShape(name, raw.shape, sig);
    const size = isRecord(raw.parameters) ? raw.parameters.binary_data_size : undefined;
    if (size !== undefined) {
      if (!Number.isInteger(size) || (size as number) < 0) {
        throw bad(`input \`${name}\`: parameters.binary_data_size must be a non-negative integer`);
      }
      if (!binary || offset + (size as number) > binary.length) {
        throw bad(
          `input \`${name}\`: binary_data_size is ${size} but only ${binary ? binary.length - offset : 0} binary bytes follow the JSON header (Inference-Header-Content-Length)`,
        );
      }
      const bytes = binary.subarray(offset, offset + (size as number));
      offset += size as number;
      try {
        tensors[name] = { type, dims, data: decodeBinaryTensor(type, dims, bytes) };
      } catch (e) {
        throw bad(`input \`${name}\`: binary data ${(e as Error).message}`);
      }
      continue;
    }
    if (!Array.isArray(raw.data)) throw bad(`input \`${name}\`: data must be a list`);
    const values = flatten(raw.data, dims, name);
    const expected = elementCount(dims);
    if (values.length !== expected) {
      throw bad(
        `input \`${name}\`: shape [${dims.join(', ')}] needs ${expected} elements, data has ${values.length}`,
      );
    }
    tensors[name] = { type, dims, data: toTensorData(type, values, name) };
  }
  const missing = model.inputs.filter((s) => !(s.name in tensors)).map((s) => s.name);
  if (missing.length > 0)
    throw bad(
      `missing input${missing.length > 1 ? 's' : ''} ${missing.map((m) => `\`${m}\``).join(', ')}`,
    );
  if (binary && offset !== binary.length) {
    throw bad(
      `${binary.length - offset} binary bytes follow the JSON header that no input claims (parameters.binary_data_size)`,
    );
  }
  const all = isRecord(parameters) && parameters.binary_data_output === true;
  const { names, binaryByName } = parseOutputs(outputs, model);
  return {
    id,
    inputs: tensors,
    outputs: names,
    parameters: parameters ?? {},
    // Triton: an output's own `binary_data` wins over the request's `binary_data_output`.
    binaryOutput: (name) => binaryByName.get(name) ?? all,
  };
}

function parseOutputs(outputs: unknown, model: ModelInfo) {
  const binaryByName = new Map<string, boolean>();
  if (outputs === undefined) return { names: [], binaryByName };
  if (!Array.isArray(outputs)) throw bad('`outputs` must be a list of {"name": ...}');
  const known = new Set(model.outputs.map((o) => o.name));
  const names = outputs.map((o, i) => {
    const name = isRecord(o) ? o.name : undefined;
    if (typeof name !== 'string') throw bad(`outputs[${i}].name must be a string`);
    if (!known.has(name)) {
      throw bad(
        `unknown output \`${name}\` for model \`${model.name}\` (outputs: ${[...known].join(', ')})`,
      );
    }
    const flag = isRecord(o) && isRecord(o.parameters) ? o.parameters.binary_data : undefined;
    if (typeof flag === 'boolean') binaryByName.set(name, flag);
    return name;
  });
  return { names, binaryByName };
}

/** The response body: outputs as JSON `data`, or as binary bytes after the JSON header. */
export function encodeInferResponse(
  model: string,
  request: Pick<InferRequest, 'id' | 'binaryOutput'>,
  outputs: Readonly<Record<string, WireTensor>>,
): EncodedResponse {
  const binary: Buffer[] = [];
  const tensors: ResponseTensor[] = Object.entries(outputs).map(([name, t]) => {
    const head = { name, datatype: ORT_TO_PROTOCOL[t.type], shape: t.dims };
    if (!request.binaryOutput(name)) return { ...head, data: toJsonValues(t.type, t.data) };
    const bytes = encodeBinaryTensor(t);
    binary.push(bytes);
    return { ...head, parameters: { binary_data_size: bytes.length } };
  });
  const json = JSON.stringify({
    model_name: model,
    model_version: '1',
    ...(request.id === undefined ? {} : { id: request.id }),
    outputs: tensors,
  });
  return { json, binary };
}

/** `GET /v2/models/{model}` */
export function modelMetadata(model: ModelInfo) {
  const sig = (s: TensorSignature) => ({
    name: s.name,
    datatype: s.type === 'unknown' ? 'BYTES' : ORT_TO_PROTOCOL[s.type],
    shape: s.shape,
  });
  return {
    name: model.name,
    versions: ['1'],
    platform: 'onnxruntime_onnx',
    inputs: model.inputs.map(sig),
    outputs: model.outputs.map(sig),
  };
}
