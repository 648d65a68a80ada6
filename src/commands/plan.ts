/** `bento-run plan SPEC.yaml`: where every session goes, as a table or JSON. */
import { EXIT_OK } from '../errors.js';
import { formatPlanTable, planSpec, planToJson } from '../plan/index.js';
import { formatDiagnostic } from '../spec/diagnostics.js';
import { requireFiles } from './common.js';
import type { CliIO, CommandDefinition, Options } from './types.js';

const USAGE = `bento-run plan SPEC.yaml [--cpu] [--service NAME]... [--strict] [--format text|json]

Validates the spec, discovers GPUs (nvidia-smi, CUDA_VISIBLE_DEVICES), gives services
disjoint blocks of the visible GPUs in declaration order, and prints one row per session:
service, worker, model, local GPU, visible device (the CUDA deviceId), physical GPU, GPU name,
then an estimate of the GPU memory each GPU needs.
  --cpu        plan every worker on the CPU
  --service    plan only this service (repeatable)
  --strict     a GPU memory estimate over a GPU's total is an error, not a warning
Exit 0 when the spec can be placed, 2 when it is invalid or cannot be placed.`;

function plan(files: string[], opts: Options, io: CliIO): number {
  requireFiles(files, { name: 'plan', usage: USAGE }, true);
  const { plan, warnings } = planSpec(
    files[0]!,
    { cpu: opts.cpu === true, services: opts.service ?? [], strictMemory: opts.strict === true },
    { env: io.env },
  );
  if (opts.format === 'json') {
    io.stdout(`${JSON.stringify(planToJson(plan), null, 2)}\n`);
  } else {
    for (const w of warnings) io.stderr(`${formatDiagnostic(w)}\n`);
    io.stdout(formatPlanTable(plan));
  }
  return EXIT_OK;
}

export const planCommand: CommandDefinition = {
  summary: 'print the placement: service, worker, model, device',
  usage: USAGE,
  options: ['format', 'cpu', 'service', 'strict'],
  run: plan,
};
