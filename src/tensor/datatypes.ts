/**
 * Tensor types across the three vocabularies bento-run speaks: the Open Inference Protocol's
 * datatypes (FP32, INT64, BYTES, ...), ONNX Runtime's tensor types, and typed arrays.
 */
import type { OrtType, TensorData, WireTensor } from './types.js';

export type ProtocolDatatype =
  | 'FP32'
  | 'FP64'
  | 'FP16'
  | 'INT8'
  | 'INT16'
  | 'INT32'
  | 'INT64'
  | 'UINT8'
  | 'UINT16'
  | 'UINT32'
  | 'UINT64'
  | 'BOOL'
  | 'BYTES';

export const ORT_TO_PROTOCOL: Readonly<Record<OrtType, ProtocolDatatype>> = {
  float32: 'FP32',
  float64: 'FP64',
  float16: 'FP16',
  int8: 'INT8',
  int16: 'INT16',
  int32: 'INT32',
  int64: 'INT64',
  uint8: 'UINT8',
  uint16: 'UINT16',
  uint32: 'UINT32',
  uint64: 'UINT64',
  bool: 'BOOL',
  string: 'BYTES',
};

export const PROTOCOL_TO_ORT: Readonly<Record<ProtocolDatatype, OrtType>> = Object.fromEntries(
  Object.entries(ORT_TO_PROTOCOL).map(([o, p]) => [p, o]),
) as Record<ProtocolDatatype, OrtType>;

export function isProtocolDatatype(s: unknown): s is ProtocolDatatype {
  return typeof s === 'string' && s in PROTOCOL_TO_ORT;
}

type NumericCtor =
  | Float32ArrayConstructor
  | Float64ArrayConstructor
  | Uint16ArrayConstructor
  | Int8ArrayConstructor
  | Int16ArrayConstructor
  | Int32ArrayConstructor
  | BigInt64ArrayConstructor
  | Uint8ArrayConstructor
  | Uint32ArrayConstructor
  | BigUint64ArrayConstructor;

/** The typed array that holds each numeric type (FP16 as raw half bits, BOOL as bytes). */
export const TYPED_ARRAY: Readonly<Record<Exclude<OrtType, 'string'>, NumericCtor>> = {
  float32: Float32Array,
  float64: Float64Array,
  float16: Uint16Array,
  int8: Int8Array,
  int16: Int16Array,
  int32: Int32Array,
  int64: BigInt64Array,
  uint8: Uint8Array,
  uint16: Uint16Array,
  uint32: Uint32Array,
  uint64: BigUint64Array,
  bool: Uint8Array,
};

/** Bytes per element; 0 for strings (variable length). */
export function elementSize(type: OrtType): number {
  return type === 'string' ? 0 : TYPED_ARRAY[type].BYTES_PER_ELEMENT;
}

export function elementCount(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/**
 * onnxruntime may hand float16 back as a Float16Array where the runtime has one; the wire and
 * the protocol carry raw half bits, so view the same bytes as Uint16Array.
 */
export function normaliseData(type: OrtType, data: unknown): TensorData {
  if (type === 'float16' && !(data instanceof Uint16Array) && ArrayBuffer.isView(data)) {
    return new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2);
  }
  return data as TensorData;
}

// ---- IEEE 754 half precision ------------------------------------------------------------
// Node 20 has no Float16Array or Math.f16round: convert by hand, rounding to nearest even.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function floatToHalf(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0); // NaN, Inf
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> Inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow -> signed zero
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // Rounding may carry into the exponent, up to Inf: that is the correct result.
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++;
  return sign | half;
}

export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/**
 * Adds to `out` each ArrayBuffer the tensors' bytes live in (once each), to hand them over to
 * another thread instead of copying them; returns `out`.
 */
export function addTensorBuffers(
  tensors: Readonly<Record<string, WireTensor>>,
  out: ArrayBuffer[],
): ArrayBuffer[] {
  for (const name in tensors) {
    const data = tensors[name]!.data;
    if (Array.isArray(data)) continue;
    const buffer = data.buffer as ArrayBuffer;
    if (!out.includes(buffer)) out.push(buffer);
  }
  return out;
}
