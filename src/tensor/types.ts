/**
 * The tensor vocabulary every part of bento-run shares: the server's codecs, the worker thread
 * and the client. Tensors travel as typed arrays whose buffers move between threads.
 */

/** ONNX Runtime's tensor element types, as `Tensor.type` names them. */
export type OrtType =
  | 'float32'
  | 'float64'
  | 'float16'
  | 'int8'
  | 'int16'
  | 'int32'
  | 'int64'
  | 'uint8'
  | 'uint16'
  | 'uint32'
  | 'uint64'
  | 'bool'
  | 'string';

export type TensorData =
  | Float32Array
  | Float64Array
  | Uint16Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Uint32Array
  | BigUint64Array
  | string[];

export interface WireTensor {
  readonly type: OrtType;
  readonly dims: readonly number[];
  readonly data: TensorData;
}

export interface TensorSignature {
  readonly name: string;
  readonly type: OrtType | 'unknown';
  /** Numbers for fixed dimensions, -1 for dynamic ones. */
  readonly shape: readonly number[];
}
