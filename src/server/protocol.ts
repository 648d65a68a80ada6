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
} from '../runtime/tensor.js';

export interface InferRequest {
  readonly id: string | undefined;
  readonly inputs: Record<string, WireTensor>;
  /** Output names asked for; empty means all. */
  readonly outputs: string[];
  readonly parameters: Readonly<Record<string, unknown>>;
}

export interface ResponseTensor {
  readonly name: string;
  readonly datatype: ProtocolDatatype;
  readonly shape: readonly number[];
  readonly data: unknown[];
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

/** Flattens nested `data` arrays (row-major), as the protocol allows both forms. */
function flatten(data: unknown[]): unknown[] {
  if (!data.some(Array.isArray)) return data;
  const out: unknown[] = [];
  const walk = (v: unknown[]) => {
    for (const x of v) Array.isArray(x) ? walk(x) : out.push(x);
  };
  walk(data);
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
export function parseInferRequest(body: unknown, model: ModelInfo): InferRequest {
  if (!isRecord(body)) throw bad('the request body must be a JSON object with `inputs`');
  const { id, inputs, outputs, parameters } = body;
  if (id !== undefined && typeof id !== 'string') throw bad('`id` must be a string');
  if (parameters !== undefined && !isRecord(parameters))
    throw bad('`parameters` must be an object');
  if (!Array.isArray(inputs) || inputs.length === 0) throw bad('`inputs` must be a non-empty list');
  const byName = new Map(model.inputs.map((s) => [s.name, s]));
  const tensors: Record<string, WireTensor> = {};
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
    if (!Array.isArray(raw.data)) throw bad(`input \`${name}\`: data must be a list`);
    const values = flatten(raw.data);
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
  return {
    id,
    inputs: tensors,
    outputs: parseOutputs(outputs, model),
    parameters: parameters ?? {},
  };
}

function parseOutputs(outputs: unknown, model: ModelInfo): string[] {
  if (outputs === undefined) return [];
  if (!Array.isArray(outputs)) throw bad('`outputs` must be a list of {"name": ...}');
  const known = new Set(model.outputs.map((o) => o.name));
  return outputs.map((o, i) => {
    const name = isRecord(o) ? o.name : undefined;
    if (typeof name !== 'string') throw bad(`outputs[${i}].name must be a string`);
    if (!known.has(name)) {
      throw bad(
        `unknown output \`${name}\` for model \`${model.name}\` (outputs: ${[...known].join(', ')})`,
      );
    }
    return name;
  });
}

/** A runtime tensor -> JSON `data` (flat, row-major). */
export function toJsonData(t: WireTensor): unknown[] {
  const d = t.data;
  if (Array.isArray(d)) return d;
  if (t.type === 'bool') return Array.from(d as Uint8Array, (v) => v !== 0);
  if (t.type === 'float16') return Array.from(d as Uint16Array, halfToFloat);
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) {
    // Beyond 2^53 a JSON number cannot hold the value exactly; send those as strings.
    return Array.from(d, (v: bigint) =>
      v <= 9007199254740991n && v >= -9007199254740991n ? Number(v) : v.toString(),
    );
  }
  return Array.from(d as Float32Array);
}

export function toResponseTensors(outputs: Readonly<Record<string, WireTensor>>): ResponseTensor[] {
  return Object.entries(outputs).map(([name, t]) => ({
    name,
    datatype: ORT_TO_PROTOCOL[t.type],
    shape: t.dims,
    data: toJsonData(t),
  }));
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
