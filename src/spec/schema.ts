/**
 * The JSON Schema file is the single source for editors and ajv. This module loads it and
 * compiles it once, with the editor-only keywords registered so strict mode stays on.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import ajvErrors from 'ajv-errors';

/** Absolute path of schema/bentofile.schema.json in this package. */
export const SCHEMA_PATH = fileURLToPath(
  new URL('../../../schema/bentofile.schema.json', import.meta.url),
);

export function schemaText(): string {
  return readFileSync(SCHEMA_PATH, 'utf8');
}

let compiled: ValidateFunction | undefined;

/** The compiled validator (allErrors, strict, verbose, with `errorMessage` from ajv-errors). */
export function schemaValidator(): ValidateFunction {
  if (compiled) return compiled;
  // verbose: errors carry their schema, whose `properties` give "did you mean" and "valid: …".
  const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, verbose: true });
  // yaml-language-server and VS Code read these; ajv only needs to know they are annotations.
  for (const keyword of ['markdownDescription', 'defaultSnippets', 'deprecationMessage']) {
    ajv.addKeyword({ keyword, metaSchema: {} });
  }
  // `x-messages`: our wording per failed keyword, for schemas with subschemas. A string
  // `errorMessage` there would hide the subschemas' errors (ajv-errors) and override the unknown-key
  // and missing-key messages in editors, and an object one reaches editors as a non-string message.
  ajv.addKeyword({
    keyword: 'x-messages',
    metaSchema: { type: 'object', additionalProperties: { type: 'string' } },
  });
  ajvErrors.default(ajv);
  compiled = ajv.compile(JSON.parse(schemaText()) as object);
  return compiled;
}

export type SchemaError = ErrorObject;
