/**
 * The Open Inference Protocol's binary tensor data extension, as Triton implements it: the body
 * is a JSON header of `Inference-Header-Content-Length` bytes followed by raw little-endian
 * tensor bytes, in the order of the tensors whose `parameters.binary_data_size` says so.
 * BYTES elements are each a 4-byte little-endian length and the bytes. Printing and parsing
 * floats as text is most of a JSON request's cost; this removes it.
 */

import { elementCount, elementSize, TYPED_ARRAY } from './datatypes.js';
import type { OrtType, TensorData, WireTensor } from './types.js';

export const HEADER_LENGTH = 'inference-header-content-length';

/** Tensor bytes are little-endian on the wire; typed arrays use the host's order. */
const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Raw bytes -> a typed array that owns its (aligned) buffer, ready to transfer to a worker. */
export function decodeBinaryTensor(
  type: OrtType,
  dims: readonly number[],
  bytes: Uint8Array,
): TensorData {
  const count = elementCount(dims);
  if (type === 'string') {
    const out: string[] = [];
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let at = 0;
    while (at < bytes.byteLength) {
      if (at + 4 > bytes.byteLength) throw new Error('BYTES element length is cut short');
      const len = view.getUint32(at, true);
      at += 4;
      if (at + len > bytes.byteLength) throw new Error('BYTES element is cut short');
      out.push(Buffer.from(bytes.buffer, bytes.byteOffset + at, len).toString('utf8'));
      at += len;
    }
    if (out.length !== count)
      throw new Error(`holds ${out.length} BYTES elements, the shape needs ${count}`);
    return out;
  }
  const size = elementSize(type);
  if (bytes.byteLength !== count * size) {
    throw new Error(
      `has ${bytes.byteLength} bytes, the shape needs ${count} × ${size} = ${count * size}`,
    );
  }
  if (!HOST_IS_LITTLE_ENDIAN) throw new Error('binary tensors need a little-endian host');
  const out = new TYPED_ARRAY[type](count);
  new Uint8Array(out.buffer).set(bytes);
  return out as TensorData;
}

/** A tensor's bytes as they go on the wire: a view, not a copy, for numeric tensors. */
export function encodeBinaryTensor(t: WireTensor): Buffer {
  if (!Array.isArray(t.data)) {
    const d = t.data as Exclude<TensorData, string[]>;
    return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
  }
  const parts = (t.data as string[]).map((s) => Buffer.from(s, 'utf8'));
  const out = Buffer.allocUnsafe(parts.reduce((n, p) => n + 4 + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.writeUInt32LE(p.length, at);
    p.copy(out, at + 4);
    at += 4 + p.length;
  }
  return out;
}

/** Splits a request body into its JSON header and the binary part after it. */
export function splitBody(body: Buffer, headerLength: string | string[] | undefined) {
  if (headerLength === undefined) return { json: body, binary: null };
  const n = Number(Array.isArray(headerLength) ? headerLength[0] : headerLength);
  if (!Number.isInteger(n) || n < 0 || n > body.length) {
    throw new Error(
      `Inference-Header-Content-Length is ${headerLength}: it must be the JSON header's length in bytes, an integer from 0 to the body's ${body.length}`,
    );
  }
  return { json: body.subarray(0, n), binary: body.subarray(n) };
}
