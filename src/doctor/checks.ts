/**
 * The report's lines, one small function each: facts in, a Check out. Nothing here runs a
 * process or reads a file, so every message and fix is a unit test.
 */
import type { Discovery } from '../plan/discover.js';
import { CUDA_CONTEXT_MIB, describeDevice, MEMORY_FACTOR } from '../plan/index.js';
import type { DeviceInfo, Placement, Plan } from '../plan/types.js';
import {
  CUDA12_MIN_DRIVER,
  type CudaProviderStatus,
  cudaLibrariesFix,
  cudaProviderFix,
  type MissingLibraries,
  type OnnxruntimeInfo,
} from '../runtime/cuda.js';
import type { Diagnostic } from '../spec/diagnostics.js';
import { plural } from '../util/text.js';
import type { CudaSessionProbe } from './probe.js';
import type { Check } from './types.js';
import { compareVersions, satisfiesRange } from './versions.js';

const CPU_FIX = 'or run every worker on the CPU with --cpu';
/** Checks that fail because the provider is missing point at its check rather than repeat it. */
const PROVIDER_FIRST = `install the CUDA provider first: see the cuda-provider check (ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node); ${CPU_FIX}`;

function check(name: string, ok: boolean, message: string, fix?: string): Check {
  return fix === undefined || ok
    ? { name, ok, message, required: false }
    : { name, ok, message, fix, required: false };
}

export function nodeCheck(version: string, range: string | null): Check {
  if (range === null) return check('node', true, `Node.js ${version}`);
  const ok = satisfiesRange(version, range);
  return check(
    'node',
    ok,
    `Node.js ${version} ${ok ? 'meets' : 'does not meet'} engines.node ${range} (package.json)`,
    `install a Node.js that meets ${range} (nodejs.org, or nvm install 22)`,
  );
}

export function onnxruntimeCheck(info: OnnxruntimeInfo): Check {
  return info.bindingFound
    ? check('onnxruntime-node', true, `version ${info.version}, loads from ${info.runtimeDir}`)
    : check(
        'onnxruntime-node',
        false,
        `onnxruntime-node ${info.version} has no native binding for ${process.platform}/${process.arch} (looked in ${info.runtimeDir})`,
        'reinstall it (npm rebuild onnxruntime-node) on a platform it supports: Linux, macOS or Windows on x64 or arm64',
      );
}

export function cudaProviderCheck(status: CudaProviderStatus, platform: string): Check {
  if (status.installed) {
    return check(
      'cuda-provider',
      true,
      `the CUDA provider is installed beside the runtime (${status.runtimeDir})`,
    );
  }
  if (platform !== 'linux/x64') {
    return check(
      'cuda-provider',
      false,
      `onnxruntime-node's npm package has a CUDA provider for Linux x64 only (this is ${platform})`,
      `run on Linux x64 for GPUs, ${CPU_FIX}`,
    );
  }
  return check(
    'cuda-provider',
    false,
    `onnxruntime-node has no CUDA provider: ${status.missingFiles.join(', ')} missing in ${status.runtimeDir}`,
    cudaProviderFix(),
  );
}

/** Null when no provider file was there to inspect. */
export function cudaLibrariesCheck(results: readonly MissingLibraries[]): Check | null {
  if (results.length === 0) return null;
  const missing = [...new Set(results.flatMap((r) => r.missing))];
  const errors = results.flatMap((r) => (r.error === null ? [] : [r.error]));
  if (missing.length > 0) {
    const needs = results
      .filter((r) => r.missing.length > 0)
      .map((r) => `${r.file.slice(r.file.lastIndexOf('/') + 1)} needs ${r.missing.join(', ')}`)
      .join('; ');
    return check(
      'cuda-libraries',
      false,
      `the loader cannot find what the CUDA provider needs (ldd): ${needs}`,
      cudaLibrariesFix(missing),
    );
  }
  if (errors.length > 0) {
    return check(
      'cuda-libraries',
      false,
      errors.join('; '),
      'install ldd (Debian/Ubuntu: libc-bin) to see which libraries are missing; the CUDA session check below still tries them',
    );
  }
  return check(
    'cuda-libraries',
    true,
    "every shared library the CUDA provider needs is found (ldd; cuDNN's own plug-ins load later, the CUDA session check tries them)",
  );
}

export function gpusCheck(
  discovery: Pick<Discovery, 'physical' | 'nvidiaSmiError'>,
  drivers: readonly (string | null)[],
  discoveryError: string | null,
): Check {
  if (discoveryError !== null) {
    return check('gpus', false, discoveryError, 'check that `nvidia-smi` runs and lists the GPUs');
  }
  if (discovery.physical.length === 0) {
    return check(
      'gpus',
      false,
      discovery.nvidiaSmiError === null
        ? 'no GPUs: nvidia-smi lists none'
        : `no GPUs: ${discovery.nvidiaSmiError}`,
      'on a machine with an NVIDIA GPU, install the NVIDIA driver (it brings nvidia-smi); without one, specs with no GPUs run as they are, and --cpu runs a GPU spec on the CPU',
    );
  }
  const names = new Map<string, number>();
  for (const d of discovery.physical) names.set(d.name, (names.get(d.name) ?? 0) + 1);
  const kinds = [...names].map(([n, c]) => (c === 1 ? n : `${c} x ${n}`)).join(', ');
  const versions = [...new Set(drivers.filter((v): v is string => v !== null))];
  const driver = versions.length === 0 ? 'driver version unknown' : `driver ${versions.join(', ')}`;
  const old = versions.filter((v) => compareVersions(v, CUDA12_MIN_DRIVER) < 0);
  return check(
    'gpus',
    old.length === 0,
    `nvidia-smi lists ${plural(discovery.physical.length, 'GPU')} (${kinds}), ${driver}` +
      (old.length === 0 ? '' : `; CUDA 12 needs driver ${CUDA12_MIN_DRIVER} or newer`),
    `update the NVIDIA driver to ${CUDA12_MIN_DRIVER} or newer (CUDA 12)`,
  );
}

export function visibilityCheck(
  discovery: Pick<Discovery, 'devices' | 'physical' | 'cudaVisibleDevices' | 'notes'>,
  cudaDeviceOrder: string,
): Check {
  const cvd = discovery.cudaVisibleDevices;
  const mapping =
    discovery.devices.length === 0
      ? ''
      : `; visible -> physical: ${discovery.devices.map((d) => `cuda:${d.index} -> GPU ${d.physicalIndex}`).join(', ')}`;
  const what =
    cvd === null
      ? `CUDA_VISIBLE_DEVICES is unset: ${discovery.physical.length === 0 ? 'no GPUs to see' : `all ${plural(discovery.physical.length, 'GPU')} visible`}`
      : `CUDA_VISIBLE_DEVICES="${cvd}": ${discovery.devices.length} of ${plural(discovery.physical.length, 'GPU')} visible`;
  const problems = discovery.notes.filter((n) => !n.startsWith('no GPUs:'));
  return check(
    'cuda-visible-devices',
    problems.length === 0,
    `${what}${mapping}; CUDA_DEVICE_ORDER=${cudaDeviceOrder}${problems.length === 0 ? '' : `; ${problems.join('; ')}`}`,
    'list physical GPU indices or UUIDs that nvidia-smi shows, e.g. CUDA_VISIBLE_DEVICES=0,1, and leave CUDA_DEVICE_ORDER unset (bento-run sets PCI_BUS_ID)',
  );
}

/** Why a probe failed, and what to do about it, from the provider's own words. */
export function probeFix(
  probe: CudaSessionProbe,
  status: CudaProviderStatus,
  missingLibraries: readonly string[],
): string {
  const error = probe.error ?? '';
  if (!status.installed) return PROVIDER_FIRST;
  if (/Failed to load|cannot open shared object|providers_(cuda|shared)/i.test(error)) {
    return missingLibraries.length > 0
      ? cudaLibrariesFix(missingLibraries)
      : 'make the CUDA 12 and cuDNN 9 libraries named above loadable (LD_LIBRARY_PATH), or reinstall the provider: ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node';
  }
  if (/insufficient|driver version|CUDA driver/i.test(error)) {
    return `update the NVIDIA driver to ${CUDA12_MIN_DRIVER} or newer (CUDA 12)`;
  }
  if (/out of memory/i.test(error)) {
    return 'free GPU memory: nvidia-smi shows which processes hold it';
  }
  if (/no kernel image|not supported on this device|invalid device ordinal/i.test(error)) {
    return "this GPU is not one the installed onnxruntime CUDA build supports (or CUDA_VISIBLE_DEVICES hides it); check the GPU's compute capability against onnxruntime's CUDA requirements";
  }
  if (probe.outcome === 'crash' || probe.outcome === 'timeout') {
    return `check the GPU with nvidia-smi and the kernel log (dmesg: NVRM Xid errors); a GPU stuck in a bad state needs a reset or a reboot; ${CPU_FIX}`;
  }
  return `see the provider's error above; ${CPU_FIX}`;
}

export function sessionCheck(device: DeviceInfo, probe: CudaSessionProbe, fix: string): Check {
  const where = describeDevice(device);
  return probe.ok
    ? check(
        `cuda-session[cuda:${device.index}]`,
        true,
        `created a CUDA session on ${where} and ran it (${Math.round(probe.ms)} ms, in a child process)`,
      )
    : check(
        `cuda-session[cuda:${device.index}]`,
        false,
        `a CUDA session on ${where} failed: ${probe.error}`,
        fix,
      );
}

export function specCheck(
  file: string,
  result:
    | { models: number; services: number; workers: number; warnings: number }
    | { problems: number },
): Check {
  if ('problems' in result) {
    return check(
      'spec',
      false,
      `${file} is invalid: ${plural(result.problems, 'problem')}, listed on stderr`,
      `fix the problems listed (bento-run validate ${file} shows them too)`,
    );
  }
  const warned = result.warnings === 0 ? '' : `, ${plural(result.warnings, 'warning')} on stderr`;
  return check(
    'spec',
    true,
    `${file} is valid (${plural(result.models, 'model')}, ${plural(result.services, 'service')}, ${plural(result.workers, 'worker')}${warned})`,
  );
}

const PLAN_FIXES: Record<string, (d: Diagnostic) => string> = {
  'too-few-gpus': () =>
    `make more GPUs visible (CUDA_VISIBLE_DEVICES), lower resources.gpu, ${CPU_FIX}`,
  'gpu-type-mismatch': (d) =>
    d.suggestion?.startsWith('CUDA_VISIBLE_DEVICES=')
      ? `set ${d.suggestion}, change gpu_type, ${CPU_FIX}`
      : `change gpu_type, ${CPU_FIX}`,
  'gpu-memory': () =>
    `fewer workers or models per GPU, or more GPUs (the estimate is ${CUDA_CONTEXT_MIB} MiB of CUDA context per GPU plus ${MEMORY_FACTOR} x the model file per session)`,
};

/** The plan fails: too few GPUs, the wrong gpu_type, or (`fits` false) too little memory. */
export function planFailedCheck(diagnostics: readonly Diagnostic[]): Check {
  const fixes = [...new Set(diagnostics.map((d) => PLAN_FIXES[d.code]?.(d) ?? CPU_FIX))];
  return check('plan', false, diagnostics.map((d) => d.message).join('; '), fixes.join('; '));
}

export function planCheck(plan: Plan): Check {
  const memoryProblems = plan.warnings.filter((w) => w.code === 'gpu-memory');
  if (memoryProblems.length > 0) return planFailedCheck(memoryProblems);
  const sessions = plural(plan.placements.length, 'session');
  const gpuServices = plan.services.filter((s) => s.gpus.length > 0);
  if (gpuServices.length === 0) {
    return check(
      'plan',
      true,
      `fits: every session runs on the CPU (${sessions}${plan.cpuOnly ? ', --cpu' : ''}); no GPU needed`,
    );
  }
  const blocks = gpuServices
    .map((s) => `service \`${s.name}\` gets ${s.gpus.map((g) => `cuda:${g}`).join(', ')}`)
    .join('; ');
  const memory = plan.memory
    .map((m) => `${m.device} ~${m.estimatedMiB} of ${m.totalMiB} MiB`)
    .join(', ');
  return check('plan', true, `fits: ${sessions}; ${blocks}; estimated GPU memory: ${memory}`);
}

/** Whether CUDA works on one visible GPU, from the checks above. */
export interface CudaReadiness {
  readonly ok: boolean;
  readonly reason: string;
  readonly fix?: string;
}

export function cudaReadiness(
  deviceId: number,
  status: CudaProviderStatus,
  missingLibraries: readonly string[],
  probe: CudaSessionProbe | undefined,
  probeFixText: string | undefined,
): CudaReadiness {
  if (!status.installed) {
    return {
      ok: false,
      reason: 'the CUDA provider is not installed (cuda-provider)',
      fix: PROVIDER_FIRST,
    };
  }
  if (missingLibraries.length > 0) {
    return {
      ok: false,
      reason: `the CUDA provider cannot load ${missingLibraries.join(', ')} (cuda-libraries)`,
      fix: cudaLibrariesFix(missingLibraries),
    };
  }
  if (probe === undefined) return { ok: false, reason: `cuda:${deviceId} was not tried` };
  if (!probe.ok) {
    return {
      ok: false,
      reason: `the CUDA session on cuda:${deviceId} failed (cuda-session[cuda:${deviceId}])`,
      ...(probeFixText === undefined ? {} : { fix: probeFixText }),
    };
  }
  return { ok: true, reason: 'CUDA checks passed' };
}

export function placementCheck(p: Placement, readiness: CudaReadiness): Check {
  const where =
    p.physicalGpu === null ? p.device : `${p.device} (physical ${p.physicalGpu}, ${p.gpuName})`;
  return {
    ...check(
      `placement[${p.service}/${p.worker}/${p.model}]`,
      readiness.ok,
      `service \`${p.service}\`, worker ${p.worker}, model \`${p.model}\` on ${where}: ${readiness.reason}`,
      readiness.fix,
    ),
    required: true,
  };
}
