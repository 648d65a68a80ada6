/**
 * The request every frontend decodes into, and the checks that hold whatever the wire format:
 * tensor names, datatypes and shapes against the model's signature, before anything is
 * allocated for the tensor or reaches a worker.
 */
import { InferenceError } from '../errors.js';
import type { ModelInfo } from '../runtime/types.js';
import { ORT_TO_PROTOCOL, PROTOCOL_TO_ORT, type ProtocolDatatype } from '../tensor/datatypes.js';
import type { OrtType, TensorSignature, WireTensor } from '../tensor/types.js';

export interface InferRequest {
  readonly id: string | undefined;
  readonly inputs: Readonly<Record<string, WireTensor>>;
  /** Output names asked for; empty means every tensor output. */
  readonly outputs: readonly string[];
}

export function invalid(message: string): InferenceError {
  return new InferenceError('BENTO_ERR_INFER_INVALID', message);
}

/** The largest element count a tensor may declare (2^31: far beyond any body limit). */
const MAX_ELEMENTS = 2 ** 31;

/**
 * A shape as the client sent it: every dimension a non-negative safe integer, and their
 * product too (checked without multiplying past it: [0, 1e300] and [2^62, 0] are refused).
 */
export function checkShape(name: string, shape: unknown): number[] {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw invalid(
      `input \`${name}\`: shape must be a list of non-negative integers below 2^53 (got ${excerptShape(shape)})`,
    );
  }
  let count = 1;
  for (const d of shape as number[]) {
    if (d > MAX_ELEMENTS || count * d > MAX_ELEMENTS) {
      throw invalid(
        `input \`${name}\`: shape [${shape.join(', ')}] declares more than 2^31 elements`,
      );
    }
    count *= d;
  }
  return shape as number[];
}

function excerptShape(shape: unknown): string {
  const text = JSON.stringify(shape) ?? String(shape);
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}

/** The model's input `name`, with the datatype and shape checked against it. */
export function checkInput(
  model: ModelInfo,
  name: string,
  datatype: unknown,
  dims: readonly number[],
): { sig: TensorSignature; type: OrtType } {
  const sig = model.inputs.find((s) => s.name === name);
  if (!sig) {
    throw invalid(
      `unknown input \`${name.slice(0, 100)}\` for model \`${model.name}\` (inputs: ${model.inputs.map((s) => s.name).join(', ')})`,
    );
  }
  if (typeof datatype !== 'string' || !(datatype in PROTOCOL_TO_ORT)) {
    throw invalid(
      `input \`${name}\`: datatype ${excerptShape(datatype)} is not one of ${Object.keys(PROTOCOL_TO_ORT).join(', ')}`,
    );
  }
  const type = PROTOCOL_TO_ORT[datatype as ProtocolDatatype];
  if (sig.type !== 'unknown' && type !== sig.type) {
    throw invalid(
      `input \`${name}\`: datatype ${datatype} does not match the model's ${ORT_TO_PROTOCOL[sig.type]}`,
    );
  }
  if (sig.shape.length > 0 && dims.length !== sig.shape.length) {
    throw invalid(
      `input \`${name}\`: shape [${dims.join(', ')}] has ${dims.length} dimensions, the model expects ${sig.shape.length} ([${sig.shape.join(', ')}], -1 is any size)`,
    );
  }
  sig.shape.forEach((want, i) => {
    if (want >= 0 && dims[i] !== want) {
      throw invalid(
        `input \`${name}\`: dimension ${i} is ${dims[i]}, the model expects ${want} (shape [${sig.shape.join(', ')}], -1 is any size)`,
      );
    }
  });
  return { sig, type };
}

/** Every model input given exactly once. */
export function checkComplete(model: ModelInfo, inputs: Readonly<Record<string, unknown>>): void {
  const missing = model.inputs.filter((s) => !(s.name in inputs)).map((s) => s.name);
  if (missing.length > 0)
    throw invalid(
      `missing input${missing.length > 1 ? 's' : ''} ${missing.map((m) => `\`${m}\``).join(', ')}`,
    );
}

/** A requested output: a tensor output of the model. */
export function checkOutput(model: ModelInfo, name: unknown, at: string): string {
  if (typeof name !== 'string') throw invalid(`${at}.name must be a string`);
  const sig = model.outputs.find((o) => o.name === name);
  if (!sig) {
    throw invalid(
      `unknown output \`${name.slice(0, 100)}\` for model \`${model.name}\` (outputs: ${tensorOutputs(model).join(', ')})`,
    );
  }
  if (sig.type === 'unknown') {
    throw invalid(
      `output \`${name}\` of model \`${model.name}\` is not a tensor (a sequence or map, e.g. scikit-learn's ZipMap): the Open Inference Protocol carries tensors only; ask for ${tensorOutputs(model).join(', ') || 'no other output'} instead, or convert the model without ZipMap`,
    );
  }
  return name;
}

/** The outputs a request without an `outputs` list gets: every tensor output. */
export function tensorOutputs(model: ModelInfo): string[] {
  return model.outputs.filter((o) => o.type !== 'unknown').map((o) => o.name);
}

/** Batched models take at most max_batch_size rows a request, as Triton does. */
export function checkRows(model: ModelInfo, inputs: Readonly<Record<string, WireTensor>>): void {
  const max = model.maxBatchSize;
  if (max === 0) return;
  for (const [name, t] of Object.entries(inputs)) {
    const rows = t.dims[0] ?? 1;
    if (rows > max) {
      throw invalid(
        `input \`${name}\`: ${rows} rows (dimension 0) is more than model \`${model.name}\`'s batching.max_batch_size of ${max}; split the request`,
      );
    }
  }
}
