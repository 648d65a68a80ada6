/**
 * The Open Inference Protocol's REST encoding (KServe v2 JSON, with Triton's binary tensor
 * extension): a request body -> the core's InferRequest, checked against the model's
 * signature, and the runtime's tensors -> a response body. Every problem with a request is an
 * INVALID_ARGUMENT error raised here or in the core's checks, before anything reaches a worker.
 */
import {
  invalid as bad,
  checkComplete,
  checkInput,
  checkOutput,
  checkShape,
  type InferRequest,
} from '../core/request.js';
import type { ModelInfo } from '../runtime/types.js';
import { decodeBinaryTensor, encodeBinaryTensor } from '../tensor/binary.js';
import { elementCount, ORT_TO_PROTOCOL, type ProtocolDatatype } from '../tensor/datatypes.js';
import { flattenData, jsonDataText, toTensorData } from '../tensor/json.js';
import { type LiftedBody, liftedList, liftedTensorData } from '../tensor/json-lists.js';
import type { TensorSignature, WireTensor } from '../tensor/types.js';
import { isRecord } from '../util/records.js';

/** A decoded REST request, as plain data (it may come back from a decoder thread). */
export interface RestInferRequest extends InferRequest {
  /** Outputs whose own `parameters.binary_data` says how they go back. */
  readonly binaryByName: readonly (readonly [string, boolean])[];
  /** The request's `parameters.binary_data_output`: every other output as binary data. */
  readonly binaryAll: boolean;
}

/** Whether an output goes back as binary data (the binary tensor extension). */
export function binaryOutput(
  request: Pick<RestInferRequest, 'binaryByName' | 'binaryAll'>,
  name: string,
): boolean {
  // Triton: an output's own `binary_data` wins over the request's `binary_data_output`.
  for (const [n, flag] of request.binaryByName) if (n === name) return flag;
  return request.binaryAll;
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

function checkCount(name: string, dims: readonly number[], count: number): void {
  const expected = elementCount(dims);
  if (count !== expected) {
    throw bad(
      `input \`${name}\`: shape [${dims.join(', ')}] needs ${expected} elements, data has ${count}`,
    );
  }
}

/** One input of the JSON body -> a tensor; `binary` and `offset` for the binary extension. */
function decodeInput(
  raw: unknown,
  i: number,
  model: ModelInfo,
  binary: Buffer | null,
  offset: number,
  lifted: LiftedBody | null,
): { name: string; tensor: WireTensor; used: number } {
  if (!isRecord(raw)) throw bad(`inputs[${i}] must be an object with name, shape, datatype, data`);
  const name = raw.name;
  if (typeof name !== 'string') throw bad(`inputs[${i}].name must be a string`);
  const dims = checkShape(name, raw.shape);
  const { type } = checkInput(model, name, raw.datatype, dims);
  const size = isRecord(raw.parameters) ? raw.parameters.binary_data_size : undefined;
  if (size !== undefined) {
    if (!Number.isSafeInteger(size) || (size as number) < 0) {
      throw bad(`input \`${name}\`: parameters.binary_data_size must be a non-negative integer`);
    }
    const n = size as number;
    if (!binary || offset + n > binary.length) {
      throw bad(
        `input \`${name}\`: binary_data_size is ${n} but only ${binary ? binary.length - offset : 0} binary bytes follow the JSON header (Inference-Header-Content-Length)`,
      );
    }
    try {
      const data = decodeBinaryTensor(type, dims, binary.subarray(offset, offset + n));
      return { name, tensor: { type, dims, data }, used: n };
    } catch (e) {
      throw bad(`input \`${name}\`: binary data ${(e as Error).message}`);
    }
  }
  const list = liftedList(lifted, raw.data);
  if (list) {
    checkCount(name, dims, list.values.length);
    return { name, tensor: { type, dims, data: liftedTensorData(type, list, name) }, used: 0 };
  }
  if (!Array.isArray(raw.data)) throw bad(`input \`${name}\`: data must be a list`);
  const values = flattenData(raw.data, dims, name);
  checkCount(name, dims, values.length);
  return { name, tensor: { type, dims, data: toTensorData(type, values, name) }, used: 0 };
}

/** Parses and checks an infer request body against the model's signature. */
export function parseInferRequest(
  body: unknown,
  model: ModelInfo,
  binary: Buffer | null = null,
  lifted: LiftedBody | null = null,
): RestInferRequest {
  if (!isRecord(body)) throw bad('the request body must be a JSON object with `inputs`');
  const { id, inputs, outputs, parameters } = body;
  if (id !== undefined && typeof id !== 'string') throw bad('`id` must be a string');
  if (parameters !== undefined && !isRecord(parameters))
    throw bad('`parameters` must be an object');
  if (!Array.isArray(inputs) || inputs.length === 0) throw bad('`inputs` must be a non-empty list');
  const tensors: Record<string, WireTensor> = {};
  let offset = 0;
  for (const [i, raw] of inputs.entries()) {
    const { name, tensor, used } = decodeInput(raw, i, model, binary, offset, lifted);
    if (name in tensors) throw bad(`input \`${name}\` is given twice`);
    tensors[name] = tensor;
    offset += used;
  }
  checkComplete(model, tensors);
  if (binary && offset !== binary.length) {
    throw bad(
      `${binary.length - offset} binary bytes follow the JSON header that no input claims (parameters.binary_data_size)`,
    );
  }
  const { names, binaryByName } = parseOutputs(outputs, model);
  return {
    id,
    inputs: tensors,
    outputs: names,
    binaryByName: [...binaryByName],
    binaryAll: isRecord(parameters) && parameters.binary_data_output === true,
  };
}

function parseOutputs(outputs: unknown, model: ModelInfo) {
  const binaryByName = new Map<string, boolean>();
  if (outputs === undefined) return { names: [], binaryByName };
  if (!Array.isArray(outputs)) throw bad('`outputs` must be a list of {"name": ...}');
  const names = outputs.map((o, i) => {
    const name = checkOutput(model, isRecord(o) ? o.name : undefined, `outputs[${i}]`);
    const flag = isRecord(o) && isRecord(o.parameters) ? o.parameters.binary_data : undefined;
    if (typeof flag === 'boolean') binaryByName.set(name, flag);
    return name;
  });
  return { names, binaryByName };
}

/** A response: the JSON header, and the binary tensor bytes that follow it (maybe none). */
export interface EncodedResponse {
  readonly json: string;
  readonly binary: readonly Buffer[];
}

/**
 * The response body: outputs as JSON `data` (written straight from the typed arrays, with
 * NaN and Infinity as bare tokens, as Triton writes them), or as binary bytes after the header.
 */
export function encodeInferResponse(
  model: Pick<ModelInfo, 'name' | 'version'>,
  request: Pick<RestInferRequest, 'id' | 'binaryByName' | 'binaryAll'>,
  outputs: Readonly<Record<string, WireTensor>>,
): EncodedResponse {
  const binary: Buffer[] = [];
  const tensors = Object.entries(outputs).map(([name, t]) => {
    const head = `{"name":${JSON.stringify(name)},"datatype":"${ORT_TO_PROTOCOL[t.type]}","shape":[${t.dims.join(',')}]`;
    if (!binaryOutput(request, name)) return `${head},"data":${jsonDataText(t.type, t.data)}}`;
    const bytes = encodeBinaryTensor(t);
    binary.push(bytes);
    return `${head},"parameters":{"binary_data_size":${bytes.length}}}`;
  });
  const id = request.id === undefined ? '' : `,"id":${JSON.stringify(request.id)}`;
  const json = `{"model_name":${JSON.stringify(model.name)},"model_version":${JSON.stringify(model.version)}${id},"outputs":[${tensors.join(',')}]}`;
  return { json, binary };
}

const signatureJson = (s: TensorSignature) => ({
  name: s.name,
  datatype: (s.type === 'unknown' ? 'BYTES' : ORT_TO_PROTOCOL[s.type]) as ProtocolDatatype,
  shape: s.shape,
});

/** `GET /v2/models/{model}`: tensor inputs and outputs only (a ZipMap output is no tensor). */
export function modelMetadata(model: ModelInfo) {
  return {
    name: model.name,
    versions: [model.version],
    platform: model.platform ?? 'onnxruntime_onnx',
    inputs: model.inputs.map(signatureJson),
    outputs: model.outputs.filter((o) => o.type !== 'unknown').map(signatureJson),
  };
}
