/** `bento-run doctor`'s parts: the checks, the probe, the report (src/commands/doctor.ts runs them). */
export { type DoctorOptions, runDoctor } from './doctor.js';
export { CUDA_PROBE_TIMEOUT_MS, type CudaSessionProbe, probeCudaSession } from './probe.js';
export { type DoctorJson, doctorToJson, formatDoctorText } from './report.js';
export type { Check, DoctorGpu, DoctorReport } from './types.js';
