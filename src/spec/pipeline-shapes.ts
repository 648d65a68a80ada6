/**
 * Datatypes and dimensions along a pipeline's edges. A dimension is a size, a name, or unknown.
 * Names are scoped: a model's dynamic dimension names (ONNX dim_param) are one scope per step,
 * so `batch` in the inputs and outputs of one step is one size, and a pipeline input's names are
 * one scope for the whole pipeline. Every edge says its two ends are equal: names that meet
 * become one, and a name that meets a size gets it, so sizes travel through the steps and two
 * sizes that meet and differ are a conflict, however many names lie between them.
 */
import type { ProtocolDatatype } from '../tensor/datatypes.js';
import type { PipelineDim } from './types.js';

/** The Open Inference Protocol's datatypes, as the schema lists them. */
export const PROTOCOL_DATATYPES: readonly ProtocolDatatype[] = [
  'BOOL',
  'UINT8',
  'UINT16',
  'UINT32',
  'UINT64',
  'INT8',
  'INT16',
  'INT32',
  'INT64',
  'FP16',
  'FP32',
  'FP64',
  'BYTES',
];

/** ONNX element type (as onnx-info names it) -> the protocol's datatype. */
const FROM_ONNX: Readonly<Record<string, ProtocolDatatype>> = {
  float: 'FP32',
  double: 'FP64',
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

/** The protocol datatype of an ONNX element type; null for one it has none for (bfloat16). */
export function protocolDatatype(elementType: string): ProtocolDatatype | null {
  return FROM_ONNX[elementType] ?? null;
}

/** How messages name an element type: the protocol's name, else ONNX's; null when unknown. */
export function datatypeName(elementType: string): string | null {
  return elementType === 'unknown' ? null : (FROM_ONNX[elementType] ?? elementType);
}

/** One dimension: a size, a (scoped) name, or null when nothing is known about it. */
export type Term =
  | { readonly kind: 'size'; readonly size: number }
  | { readonly kind: 'name'; readonly id: string; readonly name: string }
  | null;

/** A size a dimension is known to have; `why` says how, null when it is written so. */
export interface KnownSize {
  readonly size: number;
  readonly why: string | null;
}

export interface Dimensions {
  /** A model's dims in a step's scope (ONNX: a number, a dim_param name, or null). */
  modelTerms(step: string, dims: readonly (number | string | null)[]): Term[];
  /** A pipeline input's declared shape: sizes, -1 for any, names in the pipeline's scope. */
  pipelineTerms(shape: readonly PipelineDim[]): Term[];
  /** What is known of a term's size. */
  sizeOf(t: Term): KnownSize | null;
  /**
   * Says `a` and `b` are one size, `edge` naming where (`input x of step s`); returns the two
   * known sizes when they differ, and changes nothing then.
   */
  unify(a: Term, b: Term, edge: string): [KnownSize, KnownSize] | null;
  /** A term as a resolved shape shows it: its size, a name (the pipeline's first), or -1. */
  shown(t: Term): PipelineDim;
}

export function createDimensions(): Dimensions {
  const parent = new Map<string, string>();
  /** Root -> the size of its names. */
  const sizes = new Map<string, KnownSize>();
  /** Root -> a pipeline input's name among its names, which clients know. */
  const pipelineNames = new Map<string, string>();
  const find = (id: string): string => {
    let root = id;
    for (let p = parent.get(root); p !== undefined && p !== root; p = parent.get(root)) root = p;
    if (root !== id) parent.set(id, root);
    return root;
  };
  const sizeOf = (t: Term): KnownSize | null =>
    t === null
      ? null
      : t.kind === 'size'
        ? { size: t.size, why: null }
        : (sizes.get(find(t.id)) ?? null);
  const name = (id: string, shown: string): Term => ({ kind: 'name', id, name: shown });
  return {
    modelTerms: (step, dims) =>
      dims.map((d) =>
        typeof d === 'string'
          ? name(`step:${step}:${d}`, d)
          : d !== null && d >= 0
            ? { kind: 'size', size: d }
            : null,
      ),
    pipelineTerms: (shape) =>
      shape.map((d) => {
        if (typeof d === 'number') return d >= 0 ? { kind: 'size', size: d } : null;
        const id = `pipeline:${d}`;
        pipelineNames.set(find(id), pipelineNames.get(find(id)) ?? d);
        return name(id, d);
      }),
    sizeOf,
    unify(a, b, edge) {
      if (a === null || b === null) return null;
      const ka = sizeOf(a);
      const kb = sizeOf(b);
      if (ka && kb && ka.size !== kb.size) return [ka, kb];
      if (a.kind === 'size' && b.kind === 'size') return null;
      if (a.kind === 'name' && b.kind === 'name') {
        const ra = find(a.id);
        const rb = find(b.id);
        if (ra === rb) return null;
        parent.set(rb, ra);
        const size = sizes.get(ra) ?? sizes.get(rb);
        if (size) sizes.set(ra, size);
        const pipelineName = pipelineNames.get(ra) ?? pipelineNames.get(rb);
        if (pipelineName !== undefined) pipelineNames.set(ra, pipelineName);
        return null;
      }
      // One name, one size: the name takes the size unless it already has it.
      const [n, known] = a.kind === 'name' ? [a, kb] : [b as Extract<Term, { kind: 'name' }>, ka];
      if (known && !sizes.has(find(n.id))) {
        sizes.set(find(n.id), {
          size: known.size,
          why: `\`${n.name}\` is ${known.size} at ${edge}`,
        });
      }
      return null;
    },
    shown(t) {
      const known = sizeOf(t);
      if (known) return known.size;
      if (t === null || t.kind === 'size') return -1;
      return pipelineNames.get(find(t.id)) ?? t.name;
    },
  };
}
