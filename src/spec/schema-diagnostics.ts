/**
 * ajv's errors against the schema -> diagnostics at the YAML nodes, in the user's words: the
 * key for an unknown key (with "did you mean"), the value for a wrong value (with what it got),
 * and for a missing key the key that names the incomplete mapping. One small function per
 * keyword family; `schemaDiagnostics` picks which errors to report and dispatches.
 */
import type { Diagnostic } from './diagnostics.js';
import { type Locator, suggest } from './locator.js';
import type { PathSegment } from './parse.js';
import type { SchemaError } from './schema.js';

/** A JSON pointer -> path segments; a segment is a number only where it indexes a list. */
function pointerToPath(pointer: string, root: unknown): PathSegment[] {
  const out: PathSegment[] = [];
  let v = root;
  for (const raw of pointer === '' ? [] : pointer.slice(1).split('/')) {
    const s = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    const segment = Array.isArray(v) ? Number(s) : s;
    out.push(segment);
    v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[segment] : undefined;
  }
  return out;
}

function valueAt(root: unknown, path: readonly PathSegment[]): unknown {
  let v = root;
  for (const s of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[s];
  }
  return v;
}

const TYPE_NAMES: Record<string, string> = {
  object: 'a mapping',
  array: 'a list',
  integer: 'an integer',
  number: 'a number',
  string: 'a string',
  boolean: 'true or false',
  null: 'null',
};

function describeValue(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return v.length === 0 ? 'an empty list' : 'a list';
  if (typeof v === 'object') return Object.keys(v).length === 0 ? 'an empty mapping' : 'a mapping';
  if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
  if (typeof v === 'number' && !Number.isInteger(v)) return `the number ${v}`;
  return String(v);
}

/** `(got …)`, with the fix when a number was quoted: `port: "3000"` reads as a string. */
function got(v: unknown, wantsNumber: boolean): string {
  const quoted =
    wantsNumber && typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v));
  return `(got ${describeValue(v)}${quoted ? `; write ${v.trim()} without quotes` : ''})`;
}

interface SchemaNode {
  properties?: Record<string, unknown>;
  type?: string | string[];
  examples?: unknown[];
  'x-messages'?: Record<string, string>;
}

/** The keys a mapping may have, for "did you mean" and "valid: …". */
function allowedKeys(schema: unknown): string[] {
  return Object.keys((schema as SchemaNode | undefined)?.properties ?? {});
}

/** The errors an `errorMessage` replaces, or the error itself: their params say what failed. */
function causes(e: SchemaError): SchemaError[] {
  const inner =
    e.keyword === 'errorMessage' ? (e.params as { errors?: SchemaError[] }).errors : undefined;
  return inner?.length ? inner : [e];
}

/** What the items of a list are, by the list's key, for messages about one item. */
const ITEM_NOUNS: Record<string, string> = { models: 'model', gpus: 'GPU' };

const RANGE_WORDS: Record<string, string> = {
  '>=': 'at least',
  '<=': 'at most',
  '>': 'greater than',
  '<': 'less than',
};

/** `; did you mean …?`, or nothing. */
const meant = (best: string | undefined) => (best ? `; did you mean \`${best}\`?` : '');

/** A value close to `value` that fits the pattern: the same in lowercase, or a near example. */
function patternFix(value: string, e: SchemaError, schema: SchemaNode | undefined) {
  const { pattern } = e.params as { pattern: string };
  const lower = value.toLowerCase();
  if (lower !== value && new RegExp(pattern, 'u').test(lower)) return lower;
  const examples = (schema?.examples ?? []).filter((x): x is string => typeof x === 'string');
  return suggest(value, examples);
}

/** ajv's own wording, for the keywords that have no `errorMessage` in the schema. */
function defaultMessage(e: SchemaError): string {
  const { limit } = e.params as { limit?: number };
  if (/^min(Items|Length|Properties)$/.test(e.keyword) && limit === 1) return 'must not be empty';
  return (e.message ?? 'is invalid').replace('must NOT', 'must not');
}

/** One ajv error, with what every keyword's message needs to know about it. */
interface Failure {
  readonly e: SchemaError;
  /** The error itself, or the first one its `errorMessage` replaces. */
  readonly cause: SchemaError;
  readonly path: PathSegment[];
  readonly value: unknown;
  readonly schema: SchemaNode | undefined;
  /** The schema's own wording for this failure, if it has one. */
  readonly custom: string | undefined;
  readonly wanted: string[];
  readonly at: Locator;
}

const additionalProperty = (e: SchemaError) =>
  String((e.params as { additionalProperty: string }).additionalProperty);

function unknownKey({ e, path, at }: Failure): Diagnostic {
  const key = additionalProperty(e);
  const keys = allowedKeys(e.parentSchema);
  const best = suggest(key, keys);
  const hint = best ? meant(best) : ` (valid: ${keys.join(', ')})`;
  return at.diag('unknown-key', [...path, key], `unknown key \`${key}\`${hint}`, {
    key: true,
    ...(best ? { suggestion: best } : {}),
  });
}

function duplicateItem({ cause, path, value, at }: Failure): Diagnostic {
  // ajv reports the first repeat: items i < j are equal; j is the one to remove.
  const { i, j } = cause.params as { i: number; j: number };
  const item: unknown = Array.isArray(value) ? value[j] : undefined;
  const noun = ITEM_NOUNS[String(path[path.length - 1])] ?? 'item';
  const shown = typeof item === 'string' ? `\`${item}\`` : JSON.stringify(item);
  return at.diag(
    'duplicate-item',
    [...path, j],
    `${noun} ${shown} is listed twice (items ${i} and ${j}); remove one`,
  );
}

function wrongType({ e, path, value, custom, wanted, at }: Failure): Diagnostic {
  const names = wanted.map((t) => TYPE_NAMES[t] ?? t).join(' or ');
  const keys = allowedKeys(e.parentSchema);
  const what = custom ?? `must be ${names}${keys.length ? ` with keys ${keys.join(', ')}` : ''}`;
  const wantsNumber = wanted.some((t) => t === 'integer' || t === 'number');
  return at.diag('wrong-type', path, `${what} ${got(value, wantsNumber)}`);
}

function notInEnum({ e, path, value, custom, at }: Failure): Diagnostic {
  const allowed = causes(e).flatMap(
    (inner) => (inner.params as { allowedValues?: unknown[] }).allowedValues ?? [],
  );
  const names = allowed.filter((a): a is string => typeof a === 'string');
  const best = typeof value === 'string' ? suggest(value, names) : undefined;
  const quotedNumber = allowed.some((a) => typeof a === 'number');
  const what = custom ?? `must be one of ${allowed.join(', ')}`;
  return at.diag(
    'invalid-value',
    path,
    `${what} ${got(value, quotedNumber)}${meant(best)}`,
    best ? { suggestion: best } : {},
  );
}

function outOfRange({ cause, path, value, custom, at }: Failure): Diagnostic {
  const { comparison, limit } = cause.params as { comparison: string; limit: number };
  const what = custom ?? `must be ${RANGE_WORDS[comparison] ?? comparison} ${limit}`;
  return at.diag('out-of-range', path, `${what} ${got(value, false)}`);
}

function patternMismatch({ cause, path, value, schema, custom, at }: Failure): Diagnostic {
  const what = custom ?? defaultMessage(cause);
  const best = typeof value === 'string' ? patternFix(value, cause, schema) : undefined;
  return at.diag(
    'invalid-value',
    path,
    `${what} ${got(value, false)}${meant(best)}`,
    best ? { suggestion: best } : {},
  );
}

/** A mapping key that is no valid name (a model, service or pipeline name). */
function invalidName({ e, cause, path, schema, custom, at }: Failure): Diagnostic {
  const name = e.propertyName!;
  const what = custom ?? `is not a valid name (${defaultMessage(cause)})`;
  const best = cause.keyword === 'pattern' ? patternFix(name, cause, schema) : undefined;
  return at.diag('invalid-name', [...path, name], `\`${name}\` ${what}${meant(best)}`, {
    key: true,
    ...(best ? { suggestion: best } : {}),
  });
}

const BY_KEYWORD: Readonly<Record<string, (f: Failure) => Diagnostic>> = {
  additionalProperties: unknownKey,
  uniqueItems: duplicateItem,
  type: wrongType,
  enum: notInEnum,
  minimum: outOfRange,
  maximum: outOfRange,
  exclusiveMinimum: outOfRange,
  exclusiveMaximum: outOfRange,
  pattern: patternMismatch,
};

function otherFailure({ cause, path, value, custom, at }: Failure): Diagnostic {
  return at.diag('invalid-value', path, `${custom ?? defaultMessage(cause)} ${got(value, false)}`);
}

/** Missing keys that an unknown sibling key is a near miss of: `modles:` means `models:`. */
function misspeltKeys(errors: readonly SchemaError[]): Set<string> {
  const misspelt = new Set<string>();
  for (const e of errors) {
    if (e.keyword !== 'additionalProperties') continue;
    const best = suggest(additionalProperty(e), allowedKeys(e.parentSchema));
    if (best) misspelt.add(`${e.instancePath}/${best}`);
  }
  return misspelt;
}

/**
 * ajv errors -> diagnostics at the YAML nodes. A node with a wrong type gets that error only
 * (its range or pattern errors would repeat it), and a missing key that an unknown sibling key
 * is a near miss of is not reported twice (`modles:` means `models:` is missing).
 */
export function schemaDiagnostics(
  errors: readonly SchemaError[],
  root: unknown,
  at: Locator,
): Diagnostic[] {
  const wrongTypes = new Set(
    errors.filter((e) => causes(e)[0]?.keyword === 'type').map((e) => e.instancePath),
  );
  const misspelt = misspeltKeys(errors);
  const out: Diagnostic[] = [];
  for (const e of errors) {
    // The errorMessage of a name's schema says what is wrong; the propertyNames error adds nothing.
    if (e.keyword === 'propertyNames') continue;
    const cause = causes(e)[0] ?? e;
    if (cause.keyword !== 'type' && wrongTypes.has(e.instancePath)) continue;
    const path = pointerToPath(e.instancePath, root);
    const schema = e.parentSchema as SchemaNode | undefined;
    const failure: Failure = {
      e,
      cause,
      path,
      value: valueAt(root, path),
      schema,
      custom: e.keyword === 'errorMessage' ? e.message : schema?.['x-messages']?.[cause.keyword],
      wanted: ([] as string[]).concat(schema?.type ?? []),
      at,
    };
    if (e.propertyName !== undefined) {
      out.push(invalidName(failure));
    } else if (cause.keyword === 'required') {
      const key = String((e.params as { missingProperty: string }).missingProperty);
      // At the key that names the incomplete mapping: that is the line the user looks for.
      if (!misspelt.has(`${e.instancePath}/${key}`)) {
        out.push(at.diag('missing-key', path, `missing required key \`${key}\``, { key: true }));
      }
    } else {
      out.push((BY_KEYWORD[cause.keyword] ?? otherFailure)(failure));
    }
  }
  return out;
}
