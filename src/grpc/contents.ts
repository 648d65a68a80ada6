/**
 * A tensor's typed `contents` (InferTensorContents) <-> the typed arrays bento-run computes
 * with. Raw contents need no module of their own: they are the binary tensor extension's bytes
 * (src/tensor/binary.ts). Problems are plain Errors; the caller names the tensor.
 */
import { PROTOCOL_TO_ORT, type ProtocolDatatype, TYPED_ARRAY } from '../tensor/datatypes.js';
import type { TensorData } from '../tensor/types.js';
import { CONTENTS_FIELD, type InferTensorContents } from './proto.js';

const FIELDS = Object.keys({
  bool_contents: 0,
  int_contents: 0,
  int64_contents: 0,
  uint_contents: 0,
  uint64_contents: 0,
  fp32_contents: 0,
  fp64_contents: 0,
  bytes_contents: 0,
} satisfies Record<keyof InferTensorContents, 0>) as (keyof InferTensorContents)[];

/** int_contents and uint_contents are 32 bits wide: narrower types must fit. */
const RANGE: Partial<Record<ProtocolDatatype, readonly [number, number]>> = {
  INT8: [-128, 127],
  INT16: [-32768, 32767],
  UINT8: [0, 255],
  UINT16: [0, 65535],
};

/** The field `datatype` travels in; an error for FP16, or for values in another field. */
function contentsField(
  datatype: ProtocolDatatype,
  contents: InferTensorContents,
): keyof InferTensorContents {
  const field = CONTENTS_FIELD[datatype];
  if (field === null) {
    throw new Error(
      'FP16 has no typed contents field in the protocol: send its half-precision bytes in raw_input_contents',
    );
  }
  const other = FIELDS.find((f) => f !== field && contents[f].length > 0);
  if (other !== undefined) {
    throw new Error(`datatype ${datatype} travels in contents.${field}, not contents.${other}`);
  }
  return field;
}

/** `count` elements of `datatype` from typed contents, as the typed array the worker takes. */
export function fromContents(
  datatype: ProtocolDatatype,
  count: number,
  contents: InferTensorContents,
): TensorData {
  const field = contentsField(datatype, contents);
  const values = contents[field];
  if (values.length !== count) {
    throw new Error(`the shape needs ${count} elements, contents.${field} has ${values.length}`);
  }
  const type = PROTOCOL_TO_ORT[datatype];
  if (type === 'string') return (values as readonly Buffer[]).map((b) => b.toString('utf8'));
  if (type === 'int64' || type === 'uint64') {
    const out = new TYPED_ARRAY[type](count);
    const ints = values as readonly string[];
    for (let i = 0; i < count; i++) out[i] = BigInt(ints[i]!);
    return out;
  }
  if (type === 'bool') return Uint8Array.from(values as readonly boolean[], (b) => (b ? 1 : 0));
  const range = RANGE[datatype];
  if (range) {
    const nums = values as readonly number[];
    const i = nums.findIndex((v) => v < range[0] || v > range[1]);
    if (i >= 0) {
      throw new Error(
        `element ${i} of contents.${field} is ${nums[i]}, out of range for ${datatype} (${range[0]} to ${range[1]})`,
      );
    }
  }
  return (TYPED_ARRAY[type] as Float64ArrayConstructor).from(values as readonly number[]);
}

/** Typed contents for sending a tensor (FP16 cannot be, unless empty: send it raw). */
export function toContents(
  datatype: ProtocolDatatype,
  data: TensorData,
): Partial<Record<keyof InferTensorContents, unknown[]>> {
  const field = CONTENTS_FIELD[datatype];
  if (field === null) {
    if (data.length === 0) return {};
    throw new Error('FP16 has no typed contents field in the protocol: send it raw');
  }
  const values: unknown[] =
    datatype === 'BOOL'
      ? Array.from(data as Uint8Array, (v) => v !== 0)
      : datatype === 'INT64' || datatype === 'UINT64'
        ? Array.from(data as BigInt64Array, String)
        : datatype === 'BYTES'
          ? (data as string[]).map((s) => Buffer.from(s, 'utf8'))
          : Array.from(data as Float64Array);
  return { [field]: values };
}
