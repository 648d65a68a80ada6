/**
 * Reads an ONNX file's graph signature (input and output names, element types, dims) without
 * onnxruntime: the validator uses it to tell an ONNX model from another file and to check that
 * batching has a dynamic dimension 0.
 */
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

export interface OnnxTensorInfo {
  readonly name: string;
  /** ONNX element type name, e.g. `float`, `int64`, `string`; `unknown` when not a tensor. */
  readonly elementType: string;
  /** A number for a fixed dimension, a string for a named dynamic one, null for an unnamed one. */
  readonly dims: readonly (number | string | null)[] | null;
}

export interface OnnxInfo {
  readonly irVersion: number;
  readonly opsetVersion: number | null;
  readonly inputs: readonly OnnxTensorInfo[];
  readonly outputs: readonly OnnxTensorInfo[];
}

export type OnnxReadResult =
  | { readonly ok: true; readonly info: OnnxInfo; readonly sizeBytes: number }
  | { readonly ok: false; readonly reason: string; readonly missing?: boolean };

const ELEMENT_TYPES: Record<number, string> = {
  1: 'float',
  2: 'uint8',
  3: 'int8',
  4: 'uint16',
  5: 'int16',
  6: 'int32',
  7: 'int64',
  8: 'string',
  9: 'bool',
  10: 'float16',
  11: 'double',
  12: 'uint32',
  13: 'uint64',
  16: 'bfloat16',
};

/**
 * A protobuf ModelProto starts with field 1 (ir_version, varint: byte 0x08) or another small
 * field tag; text files start with printable characters that are not valid first tags for a
 * model. This cheap sniff avoids decoding megabytes of a file that is obviously something else.
 */
function looksLikeProtobuf(head: Buffer): boolean {
  if (head.length === 0) return false;
  const tag = head[0] ?? 0;
  const field = tag >> 3;
  const wire = tag & 7;
  // ModelProto fields 1..20; wire types varint (0) or length-delimited (2).
  return field >= 1 && field <= 20 && (wire === 0 || wire === 2);
}

export function readOnnxInfo(path: string): OnnxReadResult {
  let size: number;
  try {
    const st = statSync(path);
    if (st.isDirectory()) return { ok: false, reason: 'is a directory, not an ONNX file' };
    size = st.size;
  } catch {
    return { ok: false, reason: 'does not exist', missing: true };
  }
  if (size === 0) return { ok: false, reason: 'is empty, not an ONNX model' };
  const head = Buffer.alloc(16);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  if (!looksLikeProtobuf(head))
    return { ok: false, reason: 'is not an ONNX model (not a protobuf file)' };
  let model: InstanceType<typeof onnx.ModelProto>;
  try {
    model = onnx.ModelProto.decode(readFileSync(path));
  } catch (e) {
    return { ok: false, reason: `is not an ONNX model (${(e as Error).message})` };
  }
  const ir = Number(model.irVersion ?? 0);
  if (!model.graph || ir < 1) {
    return { ok: false, reason: 'is not an ONNX model (no ir_version or graph)' };
  }
  const initializers = new Set((model.graph.initializer ?? []).map((t) => t.name));
  const opset = (model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
  return {
    ok: true,
    sizeBytes: size,
    info: {
      irVersion: ir,
      opsetVersion: opset ? Number(opset.version) : null,
      // Old exporters list initializers among the inputs; they are not fed by requests.
      inputs: (model.graph.input ?? [])
        .filter((v) => !initializers.has(v.name ?? ''))
        .map(tensorInfo),
      outputs: (model.graph.output ?? []).map(tensorInfo),
    },
  };
}

function tensorInfo(v: onnxProto.onnx.IValueInfoProto): OnnxTensorInfo {
  const t = v.type?.tensorType;
  if (!t) return { name: v.name ?? '', elementType: 'unknown', dims: null };
  return {
    name: v.name ?? '',
    elementType: ELEMENT_TYPES[t.elemType ?? 0] ?? 'unknown',
    dims: t.shape
      ? (t.shape.dim ?? []).map((d) =>
          // Decoded messages own only the fields present in the file; defaults live on the prototype.
          d.dimParam ? d.dimParam : Object.hasOwn(d, 'dimValue') ? Number(d.dimValue) : null,
        )
      : null,
  };
}
