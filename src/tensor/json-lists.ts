/**
 * Large JSON tensors without JSON.parse's array: the flat number lists of `inputs[i].data` are
 * read straight from the body's bytes into a Float64Array, and the rest of the body (small) is
 * parsed as usual, with each lifted list replaced by a marker string. JSON.parse would build a
 * JavaScript array of every element first (a [1,3,224,224] FP32 input as JSON took 16-22 ms,
 * most of it there, plus the garbage collector's share).
 *
 * The values are the ones JSON.parse gives, bit for bit: a number of at most 15 significant
 * digits and a small exponent is exact by construction (Clinger's fast path: one correctly
 * rounded operation on exact operands); a longer one is read approximately (within a few units
 * in the last place of a double) and its list is marked inexact. For FP32, an approximate value
 * is used only when it is far enough from a rounding boundary of float32 that the correctly
 * rounded double would round to the same float32; any other list is parsed again from its own
 * bytes by JSON.parse. Anything that is not a plain flat list of JSON numbers (nesting, NaN,
 * strings, a malformed number) is left in the text for JSON.parse and its usual errors.
 */
import { randomBytes } from 'node:crypto';
import { toTensorData } from './json.js';
import type { OrtType, TensorData } from './types.js';

/** A number list lifted out of the body: its values and where its text was. */
export interface LiftedList {
  readonly values: Float64Array;
  /** Every value is the correctly rounded double JSON.parse gives. */
  readonly exact: boolean;
  /** The list's bytes in `source` (the body), `[` to `]`. */
  readonly source: Buffer;
  readonly start: number;
  readonly end: number;
}

export interface LiftedBody {
  /** The body's JSON with each lifted list replaced by `"<marker><index>"`. */
  readonly json: string;
  readonly lists: readonly LiftedList[];
  readonly marker: string;
}

/** Bodies from this size on have their lists lifted; smaller ones gain nothing. */
export const LIFT_MIN_BYTES = 4096;
/** Lists shorter than this (in bytes) stay in the text. */
const LIST_MIN_BYTES = 256;

/** Unguessable by a client, so that no string it sends is taken for a lifted list. */
const MARKER = `bento-list-${randomBytes(12).toString('hex')}-`;

/** The most relative error of an approximately read value (see readNumber). */
const RELATIVE_ERROR = 2 ** -48;

const POW10 = Float64Array.from({ length: 23 }, (_, i) => 10 ** i);

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN_SQUARE = 0x5b;
const CLOSE_SQUARE = 0x5d;
const OPEN_CURLY = 0x7b;
const CLOSE_CURLY = 0x7d;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;

const isSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

function skipSpace(b: Uint8Array, i: number): number {
  while (i < b.length && isSpace(b[i]!)) i++;
  return i;
}

/** Whether b[from, to) holds exactly the ASCII text `word`. */
function bytesAre(b: Uint8Array, from: number, to: number, word: string): boolean {
  if (to - from !== word.length) return false;
  for (let k = 0; k < word.length; k++) if (b[from + k] !== word.charCodeAt(k)) return false;
  return true;
}

/** The index just past the string that opens at `i` (a quote), or -1 when it never closes. */
function skipString(b: Uint8Array, i: number): number {
  for (let j = i + 1; j < b.length; j++) {
    const c = b[j]!;
    if (c === BACKSLASH) j++;
    else if (c === QUOTE) return j + 1;
  }
  return -1;
}

/** Read state of scanList, shared to avoid allocating per number. */
interface NumberOut {
  value: number;
  next: number;
  exact: boolean;
}

/**
 * Reads one JSON number at `i` (RFC 8259's grammar exactly); false when there is none, so the
 * list is left for JSON.parse.
 */
function readNumber(b: Uint8Array, i: number, out: NumberOut): boolean {
  // Past the end, b[i] is undefined and every comparison below is false.
  let c = b[i]!;
  const negative = c === MINUS;
  if (negative) c = b[++i]!;
  if (!(c >= ZERO && c <= NINE)) return false;
  let mantissa = 0;
  let digits = 0;
  let scale = 0;
  // Digits gather in `chunk` (integer arithmetic, at most 9 digits) and fold into the mantissa
  // 9 at a time: exact up to 15 digits; past that the mantissa is read approximately (below).
  // The integer and fraction loops repeat the fold on purpose: one loop with a flag for the
  // fraction measured 7-30% slower on this hot path.
  let chunk = 0;
  let inChunk = 0;
  if (c === ZERO) c = b[++i]!;
  else {
    do {
      chunk = chunk * 10 + (c - ZERO);
      if (++inChunk === 9) {
        mantissa = mantissa * 1e9 + chunk;
        chunk = 0;
        inChunk = 0;
      }
      digits++;
      c = b[++i]!;
    } while (c >= ZERO && c <= NINE);
  }
  if (c === DOT) {
    c = b[++i]!;
    if (!(c >= ZERO && c <= NINE)) return false;
    // Zeros before the first significant digit only move the decimal point.
    if (digits === 0) {
      while (c === ZERO) {
        scale--;
        c = b[++i]!;
      }
    }
    while (c >= ZERO && c <= NINE) {
      chunk = chunk * 10 + (c - ZERO);
      if (++inChunk === 9) {
        mantissa = mantissa * 1e9 + chunk;
        chunk = 0;
        inChunk = 0;
      }
      digits++;
      scale--;
      c = b[++i]!;
    }
  }
  mantissa = mantissa * POW10[inChunk]! + chunk;
  if (c === 0x65 || c === 0x45) {
    c = b[++i]!;
    const expNegative = c === MINUS;
    if (c === PLUS || c === MINUS) c = b[++i]!;
    if (!(c >= ZERO && c <= NINE)) return false;
    let e = 0;
    do {
      if (e < 100000) e = e * 10 + (c - ZERO);
      c = b[++i]!;
    } while (c >= ZERO && c <= NINE);
    scale += expNegative ? -e : e;
  }
  let value: number;
  let exact = true;
  if (mantissa === 0) value = 0;
  else if (digits <= 15 && scale >= -22 && scale <= 22) {
    value = scale >= 0 ? mantissa * POW10[scale]! : mantissa / POW10[-scale]!;
  } else {
    // Up to 19 digits (at most two folds, each rounding twice) and a power of ten applied in exact
    // steps of at most 10^22 (one rounding each): within RELATIVE_ERROR of the true value.
    if (digits > 19 || scale < -330 || scale > 330) return false;
    exact = false;
    value = mantissa;
    let s = scale;
    for (; s > 22; s -= 22) value *= POW10[22]!;
    for (; s < -22; s += 22) value /= POW10[22]!;
    value = s >= 0 ? value * POW10[s]! : value / POW10[-s]!;
    if (!Number.isFinite(value) || value === 0) return false;
  }
  out.value = negative ? -value : value;
  out.next = i;
  out.exact = exact;
  return true;
}

/** The list `[ n, n, ... ]` opening at `i`, or null when it is anything else. */
function scanList(b: Buffer, i: number, out: NumberOut): LiftedList | null {
  const start = i;
  // At most one number per two bytes ("1,").
  let values = new Float64Array(64);
  let count = 0;
  let exact = true;
  i = skipSpace(b, i + 1);
  if (b[i] === CLOSE_SQUARE) return null;
  for (;;) {
    if (!readNumber(b, i, out)) return null;
    if (count === values.length) {
      const most = ((b.length - start) >> 1) + 1;
      const grown = new Float64Array(Math.max(count + 1, Math.min(count * 4, most)));
      grown.set(values);
      values = grown;
    }
    values[count++] = out.value;
    exact &&= out.exact;
    i = skipSpace(b, out.next);
    const c = b[i];
    if (c === COMMA) i = skipSpace(b, i + 1);
    else if (c === CLOSE_SQUARE) break;
    else return null;
  }
  return { values: values.subarray(0, count), exact, source: b, start, end: i + 1 };
}

/**
 * Datatypes whose long-digit values would be parsed twice (exact doubles are needed, or text):
 * their lists stay with JSON.parse when the datatype comes before the data.
 */
const KEEP_PARSED = new Set(['FP64', 'FP16', 'BF16', 'BYTES', 'BOOL']);

/** The scan is inside an element of the body's `inputs` list: root object, list, object. */
const inInputs = (kinds: readonly number[], keys: readonly string[]) =>
  kinds[0] === 1 && kinds[1] === 2 && keys[1] === 'inputs' && kinds[2] === 1;

/**
 * The body with its long `inputs[i].data` number lists lifted out, or null when it has none
 * (then it is parsed as it is).
 */
export function liftDataLists(body: Buffer): LiftedBody | null {
  if (body.length < LIFT_MIN_BYTES) return null;
  const lists: LiftedList[] = [];
  const parts: string[] = [];
  let copied = 0;
  // Containers open around the scan point: 1 object, 2 array; keys[d] is the key that opened it.
  const kinds: number[] = [];
  const keys: string[] = [];
  let key = '';
  // The current input's datatype, when it came before its data.
  let datatype = '';
  const out: NumberOut = { value: 0, next: 0, exact: true };
  for (let i = 0; i < body.length; ) {
    const c = body[i]!;
    if (c === QUOTE) {
      const end = skipString(body, i);
      if (end < 0) return null;
      const after = skipSpace(body, end);
      if (body[after] === COLON && kinds[kinds.length - 1] === 1) {
        key = bytesAre(body, i + 1, end - 1, 'data')
          ? 'data'
          : bytesAre(body, i + 1, end - 1, 'inputs')
            ? 'inputs'
            : bytesAre(body, i + 1, end - 1, 'datatype')
              ? 'datatype'
              : '';
        i = after + 1;
      } else {
        if (key === 'datatype' && kinds.length === 3)
          datatype = body.toString('latin1', i + 1, end - 1);
        i = end;
      }
      continue;
    }
    if (
      c === OPEN_SQUARE &&
      key === 'data' &&
      kinds.length === 3 &&
      inInputs(kinds, keys) &&
      !KEEP_PARSED.has(datatype)
    ) {
      const list = scanList(body, i, out);
      if (list && list.end - list.start >= LIST_MIN_BYTES) {
        parts.push(body.toString('utf8', copied, i), `"${MARKER}${lists.length}"`);
        lists.push(list);
        copied = list.end;
        i = list.end;
        key = '';
        continue;
      }
    }
    if (c === OPEN_CURLY || c === OPEN_SQUARE) {
      if (kinds.length === 2) datatype = '';
      kinds.push(c === OPEN_CURLY ? 1 : 2);
      keys.push(key);
      key = '';
    } else if (c === CLOSE_CURLY || c === CLOSE_SQUARE) {
      kinds.pop();
      keys.pop();
      key = '';
    } else if (c === COMMA) key = '';
    i++;
  }
  if (lists.length === 0) return null;
  parts.push(body.toString('utf8', copied));
  return { json: parts.join(''), lists, marker: MARKER };
}

/** The lifted list a `data` value stands for, if it is a marker of `lifted`. */
export function liftedList(lifted: LiftedBody | null, data: unknown): LiftedList | undefined {
  if (!lifted || typeof data !== 'string' || !data.startsWith(lifted.marker)) return undefined;
  return lifted.lists[Number(data.slice(lifted.marker.length))];
}

/** Half the float32 spacing for each biased exponent (0: subnormals, spaced like exponent 1). */
const HALF_ULP32 = Float64Array.from({ length: 256 }, (_, e) => 2 ** (Math.max(e, 1) - 151));

/**
 * The list as float32, each value the one JSON.parse's double rounds to; null when an
 * approximate value lies too close to a float32 rounding boundary to be sure (then the list is
 * parsed again exactly).
 */
function liftedFloat32(list: LiftedList): Float32Array | null {
  const v = list.values;
  const out = new Float32Array(v.length);
  out.set(v);
  if (list.exact) return out;
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < v.length; i++) {
    const x = v[i]!;
    const exp = (bits[i]! >>> 23) & 0xff;
    if (exp === 0xff) return null;
    // The approximate double is within 2^-48 of the true value, relatively; the true value
    // rounds to the same float32 if x is farther than that from the midpoint.
    if (Math.abs(x - out[i]!) > HALF_ULP32[exp]! - Math.abs(x) * RELATIVE_ERROR) return null;
  }
  return out;
}

/**
 * A lifted list as the tensor data of `type`: the values JSON.parse would have given, checked
 * as toTensorData checks them. A list that is not exact enough for `type` is parsed again from
 * its own bytes.
 */
export function liftedTensorData(type: OrtType, list: LiftedList, name: string): TensorData {
  if (type === 'float32') {
    const data = liftedFloat32(list);
    if (data) return data;
  } else if (list.exact) {
    if (type === 'float64') return list.values.slice();
    return toTensorData(type, list.values as unknown as unknown[], name);
  }
  const values = JSON.parse(list.source.toString('utf8', list.start, list.end)) as unknown[];
  return toTensorData(type, values, name);
}
