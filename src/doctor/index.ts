/** `bento-run doctor [SPEC.yaml]`: is everything the spec needs on this machine? */
import { UsageError } from '../errors.js';
import { formatDiagnostic } from '../spec/diagnostics.js';
import { runDoctor } from './doctor.js';
import { doctorToJson, formatDoctorText } from './report.js';

export { type DoctorOptions, runDoctor } from './doctor.js';
export { CUDA_PROBE_TIMEOUT_MS, type CudaSessionProbe, probeCudaSession } from './probe.js';
export { type DoctorJson, doctorToJson, formatDoctorText } from './report.js';
export type { Check, DoctorGpu, DoctorReport } from './types.js';

export interface DoctorCommandOptions {
  format?: string;
  cpu?: boolean;
  service?: string[];
}

export interface DoctorIO {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: NodeJS.ProcessEnv;
}

export async function doctorCommand(
  files: string[],
  opts: DoctorCommandOptions,
  io: DoctorIO,
): Promise<number> {
  if (files.length > 1) {
    throw new UsageError(`\`doctor\` takes at most one spec file (got ${files.length})`);
  }
  const report = await runDoctor({
    specFile: files[0] ?? null,
    env: io.env,
    cpu: opts.cpu === true,
    services: opts.service ?? [],
  });
  for (const d of report.diagnostics) io.stderr(`${formatDiagnostic(d)}\n`);
  if (opts.format === 'json') io.stdout(`${JSON.stringify(doctorToJson(report), null, 2)}\n`);
  else io.stdout(formatDoctorText(report));
  return report.exitCode;
}
