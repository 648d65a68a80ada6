/**
 * The Open Inference Protocol's gRPC encoding: a ModelInferRequest -> the core's InferRequest,
 * checked against the model's signature with the same checks as REST, and the runtime's
 * tensors -> a ModelInferResponse with the outputs in raw_output_contents, as Triton answers
 * (tritonclient reads numeric outputs only there); Triton's statistics as their message.
 */
import {
  invalid as bad,
  checkComplete,
  checkInput,
  checkOutput,
  checkShape,
  type InferRequest,
} from '../../core/request.js';
import type { ModelStats } from '../../core/stats.js';
import { fromContents } from '../../grpc/contents.js';
import type { InferInputTensor, ModelInferRequest, ModelInferResponse } from '../../grpc/proto.js';
import type { ModelInfo } from '../../runtime/types.js';
import { decodeBinaryTensor, encodeBinaryTensor } from '../../tensor/binary.js';
import { elementCount, ORT_TO_PROTOCOL, type ProtocolDatatype } from '../../tensor/datatypes.js';
import type { WireTensor } from '../../tensor/types.js';

/** int64 dimensions arrive as decimal strings: numbers, then the shared shape check. */
function shapeOf(name: string, shape: readonly string[]): number[] {
  return checkShape(
    name,
    shape.map((d) => Number(d)),
  );
}

function hasContents(t: InferInputTensor): boolean {
  const c = t.contents;
  return c !== null && Object.values(c).some((v) => Array.isArray(v) && v.length > 0);
}

function decodeInput(
  t: InferInputTensor,
  i: number,
  model: ModelInfo,
  raw: Buffer | undefined,
): WireTensor {
  const name = t.name;
  if (name === '') throw bad(`inputs[${i}].name must be set`);
  const dims = shapeOf(name, t.shape);
  const { type } = checkInput(model, name, t.datatype, dims);
  const datatype = t.datatype as ProtocolDatatype;
  if (raw !== undefined) {
    if (hasContents(t)) {
      throw bad(
        `input \`${name}\`: both contents and raw_input_contents[${i}] are set; send one of them`,
      );
    }
    try {
      return { type, dims, data: decodeBinaryTensor(type, dims, raw) };
    } catch (e) {
      throw bad(`input \`${name}\`: raw_input_contents[${i}] ${(e as Error).message}`);
    }
  }
  const count = elementCount(dims);
  if (!hasContents(t)) {
    // An empty tensor needs no data, in whatever field (FP16 has none).
    if (count === 0) return { type, dims, data: decodeBinaryTensor(type, dims, Buffer.alloc(0)) };
    if (t.contents === null) {
      throw bad(`input \`${name}\`: no data: set contents or raw_input_contents`);
    }
  }
  try {
    return { type, dims, data: fromContents(datatype, count, t.contents!) };
  } catch (e) {
    throw bad(`input \`${name}\`: ${(e as Error).message}`);
  }
}

/**
 * Checks a ModelInferRequest against the model. Raw contents are all or nothing, one entry per
 * input in order, as Triton requires: a raw entry for some inputs only is ambiguous.
 */
export function decodeInferRequest(msg: ModelInferRequest, model: ModelInfo): InferRequest {
  if (msg.inputs.length === 0) throw bad('`inputs` must be a non-empty list');
  const raw = msg.raw_input_contents;
  if (raw.length > 0 && raw.length !== msg.inputs.length) {
    throw bad(
      `raw_input_contents has ${raw.length} entries for ${msg.inputs.length} inputs: with raw contents, every input needs one, in the order of inputs`,
    );
  }
  const inputs: Record<string, WireTensor> = {};
  for (const [i, t] of msg.inputs.entries()) {
    if (t.name in inputs) throw bad(`input \`${t.name}\` is given twice`);
    inputs[t.name] = decodeInput(t, i, model, raw.length > 0 ? raw[i] : undefined);
  }
  checkComplete(model, inputs);
  const outputs = msg.outputs.map((o, i) => checkOutput(model, o.name, `outputs[${i}]`));
  return { id: msg.id === '' ? undefined : msg.id, inputs, outputs };
}

/** Every output's bytes in raw_output_contents, its datatype and shape in outputs[]. */
export function encodeInferResponse(
  model: Pick<ModelInfo, 'name' | 'version'>,
  id: string | undefined,
  outputs: Readonly<Record<string, WireTensor>>,
): ModelInferResponse {
  const tensors = Object.entries(outputs);
  return {
    model_name: model.name,
    model_version: model.version,
    id: id ?? '',
    outputs: tensors.map(([name, t]) => ({
      name,
      datatype: ORT_TO_PROTOCOL[t.type],
      shape: t.dims,
    })),
    raw_output_contents: tensors.map(([, t]) => encodeBinaryTensor(t)),
  };
}

/** uint64 counters go out as decimal strings, so that no value is cut to 53 bits. */
const u64 = (n: number) => String(Math.max(0, Math.round(n)));
const duration = (d: { count: number; ns: number }) => ({ count: u64(d.count), ns: u64(d.ns) });

export function statisticsMessage(stats: readonly ModelStats[]) {
  return {
    model_stats: stats.map((s) => ({
      name: s.name,
      version: s.version,
      last_inference: u64(s.last_inference),
      inference_count: u64(s.inference_count),
      execution_count: u64(s.execution_count),
      inference_stats: Object.fromEntries(
        Object.entries(s.inference_stats).map(([k, d]) => [k, duration(d)]),
      ),
      batch_stats: s.batch_stats.map((b) => ({
        batch_size: u64(b.batch_size),
        compute_input: duration(b.compute_input),
        compute_infer: duration(b.compute_infer),
        compute_output: duration(b.compute_output),
      })),
    })),
  };
}
