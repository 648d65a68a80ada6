export type { Diagnostic, Severity } from './diagnostics.js';
export { diagnosticToJson, formatDiagnostic } from './diagnostics.js';
export type { ParsedSpec } from './parse.js';
export { parseSpec, readSpecFile } from './parse.js';
export { SCHEMA_PATH, schemaText } from './schema.js';
export type * from './types.js';
export { DEFAULTS } from './types.js';
export type { ValidateOptions, ValidationResult } from './validate.js';
export { loadSpec, validateSpec } from './validate.js';
