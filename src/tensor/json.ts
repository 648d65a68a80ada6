/**
 * Tensors in the Open Inference Protocol's JSON: `data` lists <-> typed arrays. JSON carries NaN,
 * Infinity and -Infinity as bare tokens, as Triton's JSON does, both ways.
 */
import { InferenceError } from '../errors.js';
import { floatToHalf, halfToFloat, ORT_TO_PROTOCOL, TYPED_ARRAY } from './datatypes.js';
import type { OrtType, TensorData } from './types.js';

function bad(message: string): InferenceError {
  return new InferenceError('BENTO_ERR_INFER_INVALID', message);
}

/** At most `max` characters of a value, for messages that must not echo a whole request. */
export function excerpt(value: unknown, max = 40): string {
  const text = typeof value === 'string' ? JSON.stringify(value) : String(JSON.stringify(value));
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`;
}

const INT_RANGES: Partial<Record<OrtType, readonly [number, number]>> = {
  int8: [-128, 127],
  int16: [-32768, 32767],
  int32: [-2147483648, 2147483647],
  uint8: [0, 255],
  uint16: [0, 65535],
  uint32: [0, 4294967295],
};

const INT64_RANGE = {
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
} as const;

/** The longest decimal string an INT64/UINT64 element can be ("-9223372036854775808"). */
export const MAX_INT64_DIGITS = 20;

/** Bare NaN / Infinity tokens, which JSON.parse refuses, become these strings first. */
const NON_FINITE: Readonly<Record<string, number>> = {
  NaN: Number.NaN,
  Infinity: Number.POSITIVE_INFINITY,
  '-Infinity': Number.NEGATIVE_INFINITY,
};

/**
 * JSON.parse, accepting Triton's bare `NaN`, `Infinity` and `-Infinity` tokens (outside strings)
 * as the strings "NaN", "Infinity", "-Infinity", which float tensors read as those values.
 * The rewrite runs only when plain JSON.parse fails, so ordinary requests pay nothing.
 */
export function parseJsonWithNonFinite(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (first) {
    if (!/NaN|Infinity/.test(text)) throw first;
    return JSON.parse(quoteNonFinite(text));
  }
}

function quoteNonFinite(text: string): string {
  let out = '';
  let from = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) {
      inString = true;
      continue;
    }
    for (const token of ['-Infinity', 'Infinity', 'NaN']) {
      if (text.startsWith(token, i)) {
        out += `${text.slice(from, i)}"${token}"`;
        i += token.length - 1;
        from = i + 1;
        break;
      }
    }
  }
  return out + text.slice(from);
}

/**
 * Flattens nested `data` (row-major), as the protocol allows both forms. Nested data must
 * follow the shape exactly: `[[1, 2], [3, 4, 5, 6, 7, 8]]` is not a [2, 4] tensor.
 */
export function flattenData(data: unknown[], dims: readonly number[], name: string): unknown[] {
  if (!data.some(Array.isArray)) return data;
  const out: unknown[] = [];
  const walk = (v: unknown, depth: number, at: string) => {
    if (depth === dims.length) {
      if (Array.isArray(v))
        throw bad(
          `input \`${name}\`: data${at} is nested deeper than the shape [${dims.join(', ')}]`,
        );
      out.push(v);
      return;
    }
    if (!Array.isArray(v) || v.length !== dims[depth]) {
      const got = Array.isArray(v) ? `${v.length} items` : 'a single value';
      throw bad(
        `input \`${name}\`: data${at} has ${got}, shape [${dims.join(', ')}] needs ${dims[depth]} at dimension ${depth}`,
      );
    }
    for (const [i, x] of v.entries()) walk(x, depth + 1, `${at}[${i}]`);
  };
  walk(data, 0, '');
  return out;
}

function int64Data(type: 'int64' | 'uint64', values: unknown[], name: string): TensorData {
  const out = new TYPED_ARRAY[type](values.length);
  const [lo, hi] = INT64_RANGE[type];
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    const fail = (want: string) =>
      bad(`input \`${name}\`: data[${i}] is ${excerpt(v)}, expected ${want}`);
    if (typeof v === 'number') {
      if (!Number.isInteger(v)) throw fail('an integer');
      // A JSON number beyond 2^53 has already lost digits: refuse it rather than round.
      if (!Number.isSafeInteger(v))
        throw fail(
          `an integer from -(2^53-1) to 2^53-1 as a JSON number; send larger ${ORT_TO_PROTOCOL[type]} values as decimal strings ("9007199254740993")`,
        );
      out[i] = BigInt(v);
      continue;
    }
    if (typeof v !== 'string' || v.length > MAX_INT64_DIGITS || !/^-?\d+$/.test(v))
      throw fail(
        `an integer (a number, or a decimal string of at most ${MAX_INT64_DIGITS} characters)`,
      );
    const b = BigInt(v);
    if (b < lo || b > hi) throw fail(`an integer in ${type} range`);
    out[i] = b;
  }
  return out as TensorData;
}

function floatData(type: 'float32' | 'float64' | 'float16', values: unknown[], name: string) {
  const out = new TYPED_ARRAY[type](values.length);
  for (let i = 0; i < values.length; i++) {
    let v = values[i];
    if (typeof v === 'string' && v in NON_FINITE) v = NON_FINITE[v];
    if (typeof v !== 'number')
      throw bad(
        `input \`${name}\`: data[${i}] is ${excerpt(values[i])}, expected a number (or NaN, Infinity, -Infinity)`,
      );
    out[i] = type === 'float16' ? floatToHalf(v) : v;
  }
  return out as TensorData;
}

/** JSON values -> the typed array for `type`, checking every element. */
export function toTensorData(type: OrtType, values: unknown[], name: string): TensorData {
  const fail = (i: number, want: string) =>
    bad(`input \`${name}\`: data[${i}] is ${excerpt(values[i])}, expected ${want}`);
  if (type === 'string') {
    for (let i = 0; i < values.length; i++)
      if (typeof values[i] !== 'string') throw fail(i, 'a string');
    return values as string[];
  }
  if (type === 'int64' || type === 'uint64') return int64Data(type, values, name);
  if (type === 'float32' || type === 'float64' || type === 'float16')
    return floatData(type, values, name);
  const out = new TYPED_ARRAY[type](values.length);
  if (type === 'bool') {
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (typeof v !== 'boolean') throw fail(i, 'true or false');
      out[i] = v ? 1 : 0;
    }
    return out as TensorData;
  }
  const [lo, hi] = INT_RANGES[type]!;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) {
      throw fail(i, `an integer from ${lo} to ${hi} (${ORT_TO_PROTOCOL[type]})`);
    }
    out[i] = v;
  }
  return out as TensorData;
}

/**
 * Tensor data -> the text of a JSON `data` list (flat, row-major): BOOL as true/false, FP16 as
 * numbers, floats with bare NaN/Infinity/-Infinity tokens, INT64/UINT64 beyond 2^53 as decimal
 * strings (a JSON number cannot hold them exactly). Typed arrays' own join() prints numbers as
 * JSON does, and non-finite values as the tokens Triton uses.
 */
export function jsonDataText(type: OrtType, data: TensorData): string {
  if (Array.isArray(data)) return JSON.stringify(data);
  if (type === 'bool') return `[${Array.from(data as Uint8Array, (v) => v !== 0).join(',')}]`;
  if (type === 'float16') return `[${Array.from(data as Uint16Array, halfToFloat).join(',')}]`;
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    return JSON.stringify(toJsonValues(type, data));
  }
  return `[${(data as Float32Array).join(',')}]`;
}

/** Tensor data -> plain JSON values (non-finite floats stay numbers: NaN, ±Infinity). */
export function toJsonValues(type: OrtType, data: TensorData | readonly unknown[]): unknown[] {
  if (Array.isArray(data)) return data;
  if (type === 'bool') return Array.from(data as Uint8Array, (v) => v !== 0);
  if (type === 'float16' && data instanceof Uint16Array) return Array.from(data, halfToFloat);
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    return Array.from(data, (v: bigint) =>
      v <= 9007199254740991n && v >= -9007199254740991n ? Number(v) : v.toString(),
    );
  }
  return Array.from(data as ArrayLike<number>);
}
