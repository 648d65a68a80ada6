/** `bento-run validate SPEC.yaml...`: every problem of every spec, at once. */
import { EXIT_OK, EXIT_USAGE, SpecError } from '../errors.js';
import { type Diagnostic, formatDiagnostic } from '../spec/diagnostics.js';
import { loadSpec } from '../spec/validate.js';
import { plural } from '../util/text.js';
import { printDiagnostics, requireFiles } from './common.js';
import type { CliIO, CommandDefinition, Options } from './types.js';

const USAGE = `bento-run validate SPEC.yaml... [--format text|json]

Checks each spec against the schema and the cross-reference rules, and that its
model files exist and are ONNX models. Prints every problem, one per line, as
  file:line:col: error: path: message
Exit 0 when every spec is valid (warnings allowed), 2 otherwise.`;

function validate(files: string[], opts: Options, io: CliIO): number {
  requireFiles(files, { name: 'validate', usage: USAGE });
  const json = opts.format === 'json';
  const all: Diagnostic[] = [];
  let failed = false;
  for (const file of files) {
    try {
      const { spec, warnings } = loadSpec(file);
      all.push(...warnings);
      if (!json) {
        for (const w of warnings) io.stderr(`${formatDiagnostic(w)}\n`);
        const workers = spec.services.reduce((n, s) => n + s.workers.length, 0);
        io.stdout(
          `${file}: ok (${plural(Object.keys(spec.models).length, 'model')}, ${plural(spec.services.length, 'service')}, ${plural(workers, 'worker')})\n`,
        );
      }
    } catch (e) {
      if (!(e instanceof SpecError)) throw e;
      failed = true;
      all.push(...e.diagnostics);
      if (!json) printDiagnostics(e.diagnostics, io, false);
    }
  }
  if (json) printDiagnostics(all, io, true);
  return failed ? EXIT_USAGE : EXIT_OK;
}

export const validateCommand: CommandDefinition = {
  summary: 'check specs; exit 0 if valid, 2 if not',
  usage: USAGE,
  options: ['format'],
  run: validate,
};
