/** `bento-run doctor [SPEC.yaml]`: is everything the spec needs on this machine? */
import { UsageError } from '../errors.js';
import { formatDiagnostic } from '../spec/diagnostics.js';
import type { CliInject, CliIO, CommandDefinition, Options } from './types.js';

const USAGE = `bento-run doctor [SPEC.yaml] [--cpu] [--service NAME]... [--format text|json]

One line per check, with a fix where one exists: Node.js against package.json's engines,
onnxruntime-node and where it loads from, its CUDA provider files and the libraries they
need (ldd), the GPUs nvidia-smi lists (index, name, memory, driver), CUDA_VISIBLE_DEVICES
and the visible -> physical mapping, and a real CUDA session on each visible GPU, created in
a child process so that a crash or a hang is reported, not fatal. With a spec: whether it is
valid, whether its plan fits (GPU count, gpu_type, memory estimate), and for every GPU
placement whether the CUDA checks passed.
  --cpu        check the spec planned on the CPU
  --service    check only this service (repeatable)
Exit 0 when everything the spec needs is here (or no spec is given), 1 when something it
needs is missing, 2 for an invalid spec or usage.`;

async function doctor(
  files: string[],
  opts: Options,
  io: CliIO,
  inject: CliInject,
): Promise<number> {
  if (files.length > 1) {
    throw new UsageError(`\`doctor\` takes at most one spec file (got ${files.length})`);
  }
  // Loaded on demand: only doctor needs its probe and report modules.
  const { doctorToJson, formatDoctorText, runDoctor } = await import('../doctor/index.js');
  const report = await runDoctor({
    specFile: files[0] ?? null,
    env: io.env,
    cpu: opts.cpu === true,
    services: opts.service ?? [],
    ...(inject.cudaProbeChild === undefined ? {} : { probeChild: inject.cudaProbeChild }),
  });
  for (const d of report.diagnostics) io.stderr(`${formatDiagnostic(d)}\n`);
  if (opts.format === 'json') io.stdout(`${JSON.stringify(doctorToJson(report), null, 2)}\n`);
  else io.stdout(formatDoctorText(report));
  return report.exitCode;
}

export const doctorCommand: CommandDefinition = {
  summary: 'check GPUs, the CUDA provider and what a spec needs; exit 0 ok, 1 missing',
  usage: USAGE,
  options: ['format', 'cpu', 'service'],
  run: doctor,
};
