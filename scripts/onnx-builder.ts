// A small, typed ONNX model builder on top of the protobufjs classes in `onnx-proto`, and the
// model-making functions for the committed fixtures and the benchmark. Everything here is
// deterministic: weights come from a seeded PRNG and nothing time- or host-dependent is written,
// so building the same model twice yields byte-identical files.
import { endianness } from 'node:os';
// onnx-proto is CommonJS (`module.exports = { onnx }`) with no named-export hints Node can detect,
// so under NodeNext ESM only the default import is reliable.
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

export type TensorProto = onnxProto.onnx.ITensorProto;
export type ValueInfoProto = onnxProto.onnx.IValueInfoProto;
export type NodeProto = onnxProto.onnx.INodeProto;
export type GraphProto = onnxProto.onnx.IGraphProto;
export type AttributeProto = onnxProto.onnx.IAttributeProto;

/** A dimension: a fixed size, or a symbolic name such as 'batch' (a dynamic dimension). */
export type Dim = number | string;

/** Element types, spelled as onnxruntime's `Tensor.Type` so tests can compare them directly. */
export type ElemType =
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

const DT = onnx.TensorProto.DataType;

/** ONNX `TensorProto.DataType` codes for each element type. */
export const ONNX_DATA_TYPE: Readonly<Record<ElemType, number>> = {
  float32: DT.FLOAT,
  float64: DT.DOUBLE,
  float16: DT.FLOAT16,
  int8: DT.INT8,
  int16: DT.INT16,
  int32: DT.INT32,
  int64: DT.INT64,
  uint8: DT.UINT8,
  uint16: DT.UINT16,
  uint32: DT.UINT32,
  uint64: DT.UINT64,
  bool: DT.BOOL,
  string: DT.STRING,
};

export const DEFAULT_OPSET = 17;
export const IR_VERSION = 8;
const PRODUCER = 'bento-run/scripts/onnx-builder';

// ---------------------------------------------------------------------------------------------
// Deterministic weights
// ---------------------------------------------------------------------------------------------

/** mulberry32: a tiny 32-bit seeded PRNG; returns floats in [0, 1). Same seed, same sequence. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` float32 values drawn uniformly from [-limit, limit). */
export function uniform(rng: () => number, n: number, limit: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (rng() * 2 - 1) * limit;
  return out;
}

/** Glorot/Xavier-uniform limit: keeps activations in a sane range through deep chains. */
export function glorotLimit(fanIn: number, fanOut: number): number {
  return Math.sqrt(6 / (fanIn + fanOut));
}

// ---------------------------------------------------------------------------------------------
// Tensors, value infos, nodes, graphs
// ---------------------------------------------------------------------------------------------

const LITTLE_ENDIAN = endianness() === 'LE';

type NumericArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

/** ONNX raw_data is little-endian; on little-endian hosts the array's own bytes already are. */
function littleEndianBytes(data: NumericArray): Uint8Array {
  const view = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (LITTLE_ENDIAN || data.BYTES_PER_ELEMENT === 1) return view;
  const out = new Uint8Array(view.length);
  const w = data.BYTES_PER_ELEMENT;
  for (let i = 0; i < view.length; i += w) {
    for (let j = 0; j < w; j++) out[i + j] = view[i + w - 1 - j]!;
  }
  return out;
}

function checkCount(name: string, dims: readonly number[], count: number): void {
  const expected = dims.reduce((a, b) => a * b, 1);
  if (expected !== count) {
    throw new Error(
      `tensor ${name}: dims [${dims.join(', ')}] need ${expected} values, got ${count}`,
    );
  }
}

/** A tensor whose values are stored as raw little-endian bytes (any numeric element type). */
export function rawTensor(
  name: string,
  type: Exclude<ElemType, 'string'>,
  dims: readonly number[],
  data: NumericArray,
): TensorProto {
  checkCount(name, dims, data.length);
  return {
    name,
    dataType: ONNX_DATA_TYPE[type],
    dims: [...dims],
    rawData: littleEndianBytes(data),
  };
}

/** A float32 tensor (weights, biases, constants). */
export function floatTensor(
  name: string,
  dims: readonly number[],
  values: Float32Array | readonly number[],
): TensorProto {
  const data = values instanceof Float32Array ? values : Float32Array.from(values);
  return rawTensor(name, 'float32', dims, data);
}

/** An int64 tensor (shapes, axes). */
export function int64Tensor(
  name: string,
  dims: readonly number[],
  values: readonly (number | bigint)[],
): TensorProto {
  return rawTensor(
    name,
    'int64',
    dims,
    BigInt64Array.from(values, (v) => BigInt(v)),
  );
}

/** A string tensor: ONNX stores strings in string_data, never in raw_data. */
export function stringTensor(
  name: string,
  dims: readonly number[],
  values: readonly string[],
): TensorProto {
  checkCount(name, dims, values.length);
  const encoder = new TextEncoder();
  return {
    name,
    dataType: ONNX_DATA_TYPE.string,
    dims: [...dims],
    stringData: values.map((s) => encoder.encode(s)),
  };
}

/** A graph input/output description; string dims become symbolic (dynamic) dimensions. */
export function valueInfo(name: string, type: ElemType, dims: readonly Dim[]): ValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ONNX_DATA_TYPE[type],
        shape: {
          dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })),
        },
      },
    },
  };
}

/** Attribute values are tagged, because a JS number alone cannot say whether it is INT or FLOAT. */
export type AttrValue =
  | { int: number }
  | { float: number }
  | { ints: readonly number[] }
  | { floats: readonly number[] }
  | { string: string }
  | { tensor: TensorProto };

const AT = onnx.AttributeProto.AttributeType;

export function attribute(name: string, value: AttrValue): AttributeProto {
  if ('int' in value) return { name, type: AT.INT, i: value.int };
  if ('float' in value) return { name, type: AT.FLOAT, f: value.float };
  if ('ints' in value) return { name, type: AT.INTS, ints: [...value.ints] };
  if ('floats' in value) return { name, type: AT.FLOATS, floats: [...value.floats] };
  if ('string' in value)
    return { name, type: AT.STRING, s: new TextEncoder().encode(value.string) };
  return { name, type: AT.TENSOR, t: value.tensor };
}

export function node(
  opType: string,
  inputs: readonly string[],
  outputs: readonly string[],
  attrs: Readonly<Record<string, AttrValue>> = {},
  name = '',
): NodeProto {
  return {
    name,
    opType,
    input: [...inputs],
    output: [...outputs],
    attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
  };
}

/**
 * Collects inputs, outputs, initializers and nodes; intermediate tensors and nodes get
 * sequential names (`relu_3`), so the same sequence of calls always yields the same graph.
 */
export class GraphBuilder {
  private readonly inputs: ValueInfoProto[] = [];
  private readonly outputs: ValueInfoProto[] = [];
  private readonly initializers: TensorProto[] = [];
  private readonly nodes: NodeProto[] = [];
  private counter = 0;

  constructor(private readonly name: string) {}

  input(name: string, type: ElemType, dims: readonly Dim[]): string {
    this.inputs.push(valueInfo(name, type, dims));
    return name;
  }

  output(name: string, type: ElemType, dims: readonly Dim[]): string {
    this.outputs.push(valueInfo(name, type, dims));
    return name;
  }

  initializer(tensor: TensorProto): string {
    if (!tensor.name) throw new Error('initializer needs a name');
    this.initializers.push(tensor);
    return tensor.name;
  }

  float(name: string, dims: readonly number[], values: Float32Array | readonly number[]): string {
    return this.initializer(floatTensor(name, dims, values));
  }

  int64(name: string, dims: readonly number[], values: readonly (number | bigint)[]): string {
    return this.initializer(int64Tensor(name, dims, values));
  }

  /** Adds a single-output node and returns its output name (`output` if given). */
  op(
    opType: string,
    inputs: readonly string[],
    attrs: Readonly<Record<string, AttrValue>> = {},
    output?: string,
  ): string {
    const id = this.counter++;
    const out = output ?? `${opType.toLowerCase()}_${id}`;
    this.nodes.push(node(opType, inputs, [out], attrs, `${opType}_${id}`));
    return out;
  }

  build(): GraphProto {
    return {
      name: this.name,
      input: this.inputs,
      output: this.outputs,
      initializer: this.initializers,
      node: this.nodes,
    };
  }
}

/** Serializes a graph into an ONNX model (IR version 8, default domain at `opset`). */
export function encodeModel(graph: GraphProto, opset = DEFAULT_OPSET): Uint8Array {
  const model: onnxProto.onnx.IModelProto = {
    irVersion: IR_VERSION,
    producerName: PRODUCER,
    opsetImport: [{ domain: '', version: opset }],
    graph,
  };
  const buf = onnx.ModelProto.encode(model).finish();
  // protobufjs returns a Node Buffer, possibly a slice of a shared pool; hand out a plain,
  // exactly sized Uint8Array so callers never see (or keep alive) neighbouring bytes.
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength).slice();
}

/** Parses an encoded model; handy for tests that inspect what was written. */
export function decodeModel(bytes: Uint8Array): onnxProto.onnx.ModelProto {
  return onnx.ModelProto.decode(bytes);
}

// ---------------------------------------------------------------------------------------------
// Dense layers shared by the classifier and MLPs (exported so tests can recompute outputs in JS)
// ---------------------------------------------------------------------------------------------

/** One dense layer: `y = x @ w + b`, `w` row-major [inDim, outDim]. */
export interface DenseLayer {
  readonly inDim: number;
  readonly outDim: number;
  readonly w: Float32Array;
  readonly b: Float32Array;
}

/** Seeded dense layers for the given widths, e.g. [4, 16, 3] gives 4->16 and 16->3. */
export function denseLayers(widths: readonly number[], seed: number): DenseLayer[] {
  const rng = mulberry32(seed);
  const layers: DenseLayer[] = [];
  for (let i = 0; i + 1 < widths.length; i++) {
    const inDim = widths[i]!;
    const outDim = widths[i + 1]!;
    const w = uniform(rng, inDim * outDim, glorotLimit(inDim, outDim));
    // Small non-zero biases so a wrong bias wiring shows up in tests.
    const b = uniform(rng, outDim, 0.1);
    layers.push({ inDim, outDim, w, b });
  }
  return layers;
}

// ---------------------------------------------------------------------------------------------
// Models
// ---------------------------------------------------------------------------------------------

export interface ClassifierOptions {
  /** Batch dimension: symbolic (dynamic) by default; a number fixes it. */
  batch?: Dim;
  seed?: number;
}

export const CLASSIFIER_SEED = 42;
export const CLASSIFIER_WIDTHS = [4, 16, 3] as const;

/**
 * The quickstart model, an iris-like classifier: `input` float32 [batch, 4] -> Gemm(4->16) ->
 * Relu -> Gemm(16->3) -> Softmax(axis=-1) -> `probabilities` float32 [batch, 3].
 */
export function makeClassifier(options: ClassifierOptions = {}): Uint8Array {
  const batch = options.batch ?? 'batch';
  const [l1, l2] = denseLayers(CLASSIFIER_WIDTHS, options.seed ?? CLASSIFIER_SEED) as [
    DenseLayer,
    DenseLayer,
  ];
  const g = new GraphBuilder('classifier');
  const x = g.input('input', 'float32', [batch, 4]);
  g.output('probabilities', 'float32', [batch, 3]);
  const w1 = g.float('fc1.weight', [4, 16], l1.w);
  const b1 = g.float('fc1.bias', [16], l1.b);
  const w2 = g.float('fc2.weight', [16, 3], l2.w);
  const b2 = g.float('fc2.bias', [3], l2.b);
  const h = g.op('Relu', [g.op('Gemm', [x, w1, b1])]);
  const logits = g.op('Gemm', [h, w2, b2]);
  g.op('Softmax', [logits], { axis: { int: -1 } }, 'probabilities');
  return encodeModel(g.build());
}

/** The classifier with a fixed batch of 1, for testing that batching such models is refused. */
export function makeFixedBatch(): Uint8Array {
  return makeClassifier({ batch: 1 });
}

export interface MlpOptions {
  inputs: number;
  hidden: number;
  /** Number of hidden layers (each `hidden` wide); the model has `layers + 1` MatMuls. */
  layers: number;
  outputs: number;
  seed: number;
  inputName?: string;
  outputName?: string;
}

/** The widths of an MLP, e.g. {inputs 16, hidden 4096, layers 2, outputs 16} -> [16, 4096, 4096, 16]. */
export function mlpWidths(
  o: Pick<MlpOptions, 'inputs' | 'hidden' | 'layers' | 'outputs'>,
): number[] {
  return [o.inputs, ...Array.from({ length: o.layers }, () => o.hidden), o.outputs];
}

/**
 * `input` float32 [batch, inputs] -> (MatMul, Add, Relu) x layers -> MatMul, Add ->
 * `output` float32 [batch, outputs]; the last layer has no activation.
 */
export function makeMlp(options: MlpOptions): Uint8Array {
  const inputName = options.inputName ?? 'input';
  const outputName = options.outputName ?? 'output';
  const layers = denseLayers(mlpWidths(options), options.seed);
  const g = new GraphBuilder('mlp');
  let h = g.input(inputName, 'float32', ['batch', options.inputs]);
  g.output(outputName, 'float32', ['batch', options.outputs]);
  layers.forEach((l, i) => {
    const last = i === layers.length - 1;
    const w = g.float(`fc${i + 1}.weight`, [l.inDim, l.outDim], l.w);
    const b = g.float(`fc${i + 1}.bias`, [l.outDim], l.b);
    const y = g.op('Add', [g.op('MatMul', [h, w]), b], {}, last ? outputName : undefined);
    h = last ? y : g.op('Relu', [y]);
  });
  return encodeModel(g.build());
}

export interface CnnOptions {
  /** Output channels of each 3x3 Conv+Relu layer. */
  channels?: readonly number[];
  /** Input height and width. */
  size?: number;
  inChannels?: number;
  classes?: number;
  seed?: number;
}

/** One 3x3 convolution (stride 1, padding 1): `w` is [outC, inC, 3, 3] row-major. */
export interface ConvLayer {
  readonly inC: number;
  readonly outC: number;
  readonly w: Float32Array;
  readonly b: Float32Array;
}

/** The CNN's resolved options and seeded weights (exported so tests can recompute outputs). */
export interface CnnParams {
  readonly size: number;
  readonly inChannels: number;
  readonly classes: number;
  readonly convs: readonly ConvLayer[];
  readonly fc: DenseLayer;
}

export function cnnParams(options: CnnOptions = {}): CnnParams {
  // Default: about 2.5 ms at batch 1 on one thread of a 2020s server core, ~0.5 MB of weights.
  const channels = options.channels ?? [32, 64, 64, 64, 64];
  const inChannels = options.inChannels ?? 3;
  const classes = options.classes ?? 10;
  const rng = mulberry32(options.seed ?? 7);
  const convs: ConvLayer[] = [];
  let inC = inChannels;
  for (const outC of channels) {
    const w = uniform(rng, outC * inC * 9, glorotLimit(inC * 9, outC * 9));
    convs.push({ inC, outC, w, b: uniform(rng, outC, 0.1) });
    inC = outC;
  }
  const fcW = uniform(rng, inC * classes, glorotLimit(inC, classes));
  const fc = { inDim: inC, outDim: classes, w: fcW, b: uniform(rng, classes, 0.1) };
  return { size: options.size ?? 32, inChannels, classes, convs, fc };
}

/**
 * A compute-heavy but small CNN: `input` float32 [batch, inChannels, size, size] ->
 * (Conv 3x3 pad 1, Relu) per entry of `channels` -> GlobalAveragePool -> Flatten -> Gemm ->
 * `logits` float32 [batch, classes]. Convolutions reuse few weights many times, so the file
 * stays small while inference costs milliseconds.
 */
export function makeCnn(options: CnnOptions = {}): Uint8Array {
  const p = cnnParams(options);
  const g = new GraphBuilder('cnn');
  let h = g.input('input', 'float32', ['batch', p.inChannels, p.size, p.size]);
  g.output('logits', 'float32', ['batch', p.classes]);
  p.convs.forEach((l, i) => {
    const w = g.float(`conv${i + 1}.weight`, [l.outC, l.inC, 3, 3], l.w);
    const b = g.float(`conv${i + 1}.bias`, [l.outC], l.b);
    const conv = g.op('Conv', [h, w, b], {
      kernel_shape: { ints: [3, 3] },
      pads: { ints: [1, 1, 1, 1] },
      strides: { ints: [1, 1] },
    });
    h = g.op('Relu', [conv]);
  });
  const pooled = g.op('Flatten', [g.op('GlobalAveragePool', [h])], { axis: { int: 1 } });
  const fcW = g.float('fc.weight', [p.fc.inDim, p.fc.outDim], p.fc.w);
  const fcB = g.float('fc.bias', [p.fc.outDim], p.fc.b);
  g.op('Gemm', [pooled, fcW, fcB], {}, 'logits');
  return encodeModel(g.build());
}

/** The constant added by the tiny model: exact in float32, so tests can compare exactly. */
export const TINY_CONSTANT: readonly number[] = [0.5, -1, 2, 0.25];

/** The cheapest useful model: `x` float32 [batch, 4] -> Add(x, c) -> `y` float32 [batch, 4]. */
export function makeTiny(): Uint8Array {
  const g = new GraphBuilder('tiny');
  const x = g.input('x', 'float32', ['batch', 4]);
  g.output('y', 'float32', ['batch', 4]);
  const c = g.float('c', [4], TINY_CONSTANT);
  g.op('Add', [x, c], {}, 'y');
  return encodeModel(g.build());
}

/** The types of the identity model, with the suffix of their input (`in_*`) and output (`out_*`). */
export const IDENTITY_TYPES: readonly { readonly suffix: string; readonly type: ElemType }[] = [
  { suffix: 'fp32', type: 'float32' },
  { suffix: 'fp64', type: 'float64' },
  { suffix: 'fp16', type: 'float16' },
  { suffix: 'int8', type: 'int8' },
  { suffix: 'int16', type: 'int16' },
  { suffix: 'int32', type: 'int32' },
  { suffix: 'int64', type: 'int64' },
  { suffix: 'uint8', type: 'uint8' },
  { suffix: 'uint16', type: 'uint16' },
  { suffix: 'uint32', type: 'uint32' },
  { suffix: 'uint64', type: 'uint64' },
  { suffix: 'bool', type: 'bool' },
  { suffix: 'bytes', type: 'string' },
];

/** One Identity per element type: `in_<suffix>` [batch, n] -> `out_<suffix>` [batch, n]. */
export function makeIdentityAllTypes(): Uint8Array {
  const g = new GraphBuilder('identity_all_types');
  for (const { suffix, type } of IDENTITY_TYPES) {
    const x = g.input(`in_${suffix}`, type, ['batch', 'n']);
    g.output(`out_${suffix}`, type, ['batch', 'n']);
    g.op('Identity', [x], {}, `out_${suffix}`);
  }
  return encodeModel(g.build());
}

export interface SlowOptions {
  /** Width of the input `x` and output `y`. */
  width?: number;
  /** Rows the input is broadcast to; the work per layer grows linearly with it. */
  rows?: number;
  /** Width of the hidden MatMuls. */
  hidden?: number;
  /**
   * Number of hidden [rows, hidden] x [hidden, hidden] MatMuls (they share one weight, so the
   * file size does not grow with it while the time grows linearly).
   */
  layers?: number;
  seed?: number;
}

/**
 * A model that is slow at batch 1 while its file stays small: `x` float32 [batch, width] is
 * broadcast (Expand) to [batch, rows, width] so the MatMuls below are real matrix products
 * rather than matrix-vector ones, then goes through `layers` MatMul+Tanh with one shared weight,
 * a mean over the rows and a last MatMul to `y` float32 [batch, width]. Tanh keeps values bounded
 * however deep the chain. Each row gets its own bias so the rows differ.
 */
export function makeSlow(options: SlowOptions = {}): Uint8Array {
  const width = options.width ?? 64;
  const rows = options.rows ?? 4096;
  const hidden = options.hidden ?? 128;
  // 36 layers: about 50 ms at batch 1 on one thread of a 2020s server core.
  const layers = options.layers ?? 36;
  const rng = mulberry32(options.seed ?? 99);
  const g = new GraphBuilder('slow');
  const x = g.input('x', 'float32', ['batch', width]);
  g.output('y', 'float32', ['batch', width]);
  const axes1 = g.int64('axes_1', [1], [1]);
  const expandShape = g.int64('expand_shape', [3], [1, rows, 1]);
  const wIn = g.float(
    'in.weight',
    [width, hidden],
    uniform(rng, width * hidden, glorotLimit(width, hidden)),
  );
  const rowBias = g.float('row.bias', [rows, 1], uniform(rng, rows, 1));
  // Variance-preserving scale (uniform(-a, a) has variance a^2/3 = 1/hidden) for the shared weight.
  const wHidden = g.float(
    'hidden.weight',
    [hidden, hidden],
    uniform(rng, hidden * hidden, Math.sqrt(3 / hidden)),
  );
  const wOut = g.float(
    'out.weight',
    [hidden, width],
    uniform(rng, hidden * width, glorotLimit(hidden, width)),
  );
  const broadcast = g.op('Expand', [g.op('Unsqueeze', [x, axes1]), expandShape]);
  let h = g.op('Tanh', [g.op('Add', [g.op('MatMul', [broadcast, wIn]), rowBias])]);
  for (let i = 0; i < layers; i++) h = g.op('Tanh', [g.op('MatMul', [h, wHidden])]);
  const mean = g.op('ReduceMean', [h], { axes: { ints: [1] }, keepdims: { int: 0 } });
  g.op('MatMul', [mean, wOut], {}, 'y');
  return encodeModel(g.build());
}

/** `a`, `b` float32 [batch, 3] -> `sum` = a + b and `product` = a * b, both float32 [batch, 3]. */
export function makeTwoInputs(): Uint8Array {
  const g = new GraphBuilder('two_inputs');
  const a = g.input('a', 'float32', ['batch', 3]);
  const b = g.input('b', 'float32', ['batch', 3]);
  g.output('sum', 'float32', ['batch', 3]);
  g.output('product', 'float32', ['batch', 3]);
  g.op('Add', [a, b], {}, 'sum');
  g.op('Mul', [a, b], {}, 'product');
  return encodeModel(g.build());
}
