/** Helpers the commands share: their spec-file arguments and how problems are printed. */
import { UsageError } from '../errors.js';
import { type Diagnostic, diagnosticToJson, formatDiagnostic } from '../spec/diagnostics.js';
import type { CliIO } from './types.js';

/** Diagnostics as `validate` prints them: one line each on stderr, or a JSON list on stdout. */
export function printDiagnostics(ds: readonly Diagnostic[], io: CliIO, json: boolean): void {
  if (json) io.stdout(`${JSON.stringify(ds.map(diagnosticToJson), null, 2)}\n`);
  else for (const d of ds) io.stderr(`${formatDiagnostic(d)}\n`);
}

/** The spec files a command was given: at least one, or exactly one with `one`. */
export function requireFiles(
  files: readonly string[],
  command: { readonly name: string; readonly usage: string },
  one = false,
): void {
  if (files.length === 0) {
    throw new UsageError(`\`${command.name}\` needs a spec file\n\nUsage: ${command.usage}\n`);
  }
  if (one && files.length > 1) {
    throw new UsageError(`\`${command.name}\` takes one spec file (got ${files.length})`);
  }
}
