/**
 * `bento-run doctor`: gathers the facts (Node, onnxruntime-node and its CUDA provider, the GPUs,
 * a real CUDA session per visible GPU in a child process, the spec and its plan) and turns them
 * into checks. What touches the machine comes in through `DoctorOptions` in tests.
 */
import { PlanError, SpecError } from '../errors.js';
import { type Discovery, discoverDevices, planOnDevices } from '../plan/index.js';
import type { Plan } from '../plan/types.js';
import {
  cudaProviderMissingLibraries,
  cudaProviderStatus,
  type LddRunner,
  onnxruntimeInfo,
} from '../runtime/cuda.js';
import type { Diagnostic } from '../spec/diagnostics.js';
import { loadSpec } from '../spec/validate.js';
import { enginesNode } from '../util/package.js';
import {
  type CudaReadiness,
  cudaLibrariesCheck,
  cudaProviderCheck,
  cudaReadiness,
  gpusCheck,
  nodeCheck,
  onnxruntimeCheck,
  placementCheck,
  planCheck,
  planFailedCheck,
  probeFix,
  sessionCheck,
  specCheck,
  visibilityCheck,
} from './checks.js';
import { queryDriverVersions } from './drivers.js';
import { type CudaProbe, type CudaSessionProbe, probeCudaSession } from './probe.js';
import type { Check, DoctorGpu, DoctorReport } from './types.js';

export interface DoctorOptions {
  /** The spec to check; null or absent: the report only. */
  readonly specFile?: string | null;
  /** Environment for nvidia-smi, CUDA_VISIBLE_DEVICES and the probe children. */
  readonly env?: NodeJS.ProcessEnv;
  /** `--cpu`: plan every worker on the CPU. */
  readonly cpu?: boolean;
  /** `--service NAME`: check only these services. */
  readonly services?: readonly string[];
  /** Probe timeout per GPU (default CUDA_PROBE_TIMEOUT_MS). */
  readonly probeTimeoutMs?: number;
  /** Tests: where to look for the provider files instead of onnxruntime-node's folder. */
  readonly runtimeDir?: string;
  /** Tests: replaces running `ldd`. */
  readonly ldd?: LddRunner;
  /** Tests: replaces the child-process probe. */
  readonly probe?: CudaProbe;
  /** Tests: the script the probe's child process runs (one that crashes or hangs). */
  readonly probeChild?: string;
}

function discover(env: NodeJS.ProcessEnv): { discovery: Discovery; error: string | null } {
  try {
    return { discovery: discoverDevices({ env }), error: null };
  } catch (e) {
    if (!(e instanceof PlanError)) throw e;
    const discovery: Discovery = {
      devices: [],
      physical: [],
      cudaVisibleDevices: env.CUDA_VISIBLE_DEVICES ?? null,
      nvidiaSmiError: e.message,
      notes: [],
    };
    return { discovery, error: e.message };
  }
}

function countWorkers(services: readonly { workers: readonly unknown[] }[]): number {
  return services.reduce((n, s) => n + s.workers.length, 0);
}

const required = (c: Check): Check => ({ ...c, required: true });

interface SpecFindings {
  readonly checks: Check[];
  readonly diagnostics: Diagnostic[];
  /** The spec or a --service name is invalid: exit 2. */
  readonly invalid: boolean;
}

/** Is the spec valid, does its plan fit, and does CUDA work where it puts a model? */
function checkSpec(
  specFile: string,
  opts: DoctorOptions,
  discovery: Discovery,
  readiness: (deviceId: number) => CudaReadiness,
): SpecFindings {
  let loaded: ReturnType<typeof loadSpec>;
  try {
    loaded = loadSpec(specFile);
  } catch (e) {
    if (!(e instanceof SpecError)) throw e;
    const problems = e.diagnostics.filter((d) => d.severity === 'error').length;
    return {
      checks: [specCheck(specFile, { problems })],
      diagnostics: [...e.diagnostics],
      invalid: true,
    };
  }
  const { spec, warnings } = loaded;
  const checks = [
    specCheck(specFile, {
      models: Object.keys(spec.models).length,
      services: spec.services.length,
      workers: countWorkers(spec.services),
      warnings: warnings.length,
    }),
  ];
  let plan: Plan;
  try {
    plan = planOnDevices(spec, discovery, {
      cpu: opts.cpu === true,
      services: opts.services ?? [],
    });
  } catch (e) {
    if (!(e instanceof PlanError)) throw e;
    checks.push(required(planFailedCheck(e.diagnostics)));
    const badService = e.code === 'BENTO_ERR_PLAN_UNKNOWN_SERVICE';
    return {
      checks,
      diagnostics: [...warnings, ...(badService ? e.diagnostics : [])],
      invalid: badService,
    };
  }
  checks.push(required(planCheck(plan)));
  for (const p of plan.placements) {
    if (p.deviceId !== null) checks.push(placementCheck(p, readiness(p.deviceId)));
  }
  return { checks, diagnostics: [...warnings], invalid: false };
}

export async function runDoctor(opts: DoctorOptions = {}): Promise<DoctorReport> {
  // Check what `serve` will see: it sets CUDA_DEVICE_ORDER=PCI_BUS_ID unless the user did.
  const env = { ...(opts.env ?? process.env) };
  env.CUDA_DEVICE_ORDER ??= 'PCI_BUS_ID';
  const cudaDeviceOrder = env.CUDA_DEVICE_ORDER;
  const checks: Check[] = [];

  const node = nodeCheck(process.versions.node, enginesNode());
  const ort = onnxruntimeInfo();
  const runtime = onnxruntimeCheck(ort);
  checks.push(node, runtime);

  const status = cudaProviderStatus(opts.runtimeDir ?? ort.runtimeDir);
  checks.push(cudaProviderCheck(status, `${process.platform}/${process.arch}`));
  const inspected = cudaProviderMissingLibraries(status, opts.ldd);
  const libraries = cudaLibrariesCheck(inspected);
  if (libraries !== null) checks.push(libraries);
  const missingLibraries = [...new Set(inspected.flatMap((r) => r.missing))];

  const { discovery, error: discoveryError } = discover(env);
  const drivers = discovery.physical.length > 0 ? queryDriverVersions(env).versions : [];
  const driverOf = discovery.physical.map((_, i) => drivers[i] ?? null);
  checks.push(gpusCheck(discovery, driverOf, discoveryError));
  checks.push(visibilityCheck(discovery, cudaDeviceOrder));

  // One child process per visible GPU, all at once: a hang costs one timeout, not one per GPU.
  const probe: CudaProbe =
    opts.probe ??
    ((id) =>
      probeCudaSession(id, {
        env,
        ...(opts.probeTimeoutMs ? { timeoutMs: opts.probeTimeoutMs } : {}),
        ...(opts.probeChild ? { childFile: opts.probeChild } : {}),
      }));
  const probes = new Map<number, CudaSessionProbe>();
  for (const p of await Promise.all(discovery.devices.map((d) => probe(d.index)))) {
    probes.set(p.deviceId, p);
  }
  const probeFixes = new Map<number, string>();
  for (const d of discovery.devices) {
    const p = probes.get(d.index)!;
    const fix = probeFix(p, status, missingLibraries);
    if (!p.ok) probeFixes.set(d.index, fix);
    checks.push(sessionCheck(d, p, fix));
  }

  const specFile = opts.specFile ?? null;
  let diagnostics: Diagnostic[] = [];
  let exitCode: 0 | 1 | 2 = 0;
  if (specFile !== null) {
    const found = checkSpec(specFile, opts, discovery, (id) =>
      cudaReadiness(id, status, missingLibraries, probes.get(id), probeFixes.get(id)),
    );
    diagnostics = found.diagnostics;
    if (!found.invalid) {
      // Whatever the spec, bento-run itself must run.
      checks[0] = required(node);
      checks[1] = required(runtime);
    }
    checks.push(...found.checks);
    exitCode = found.invalid ? 2 : checks.some((c) => c.required && !c.ok) ? 1 : 0;
  }

  const gpus: DoctorGpu[] = discovery.physical.map((d, i) => {
    const visible = discovery.devices.find((v) => v.physicalIndex === d.physicalIndex);
    return {
      physicalIndex: d.physicalIndex,
      visibleIndex: visible?.index ?? null,
      name: d.name,
      memoryTotalMiB: d.memoryTotalMiB,
      uuid: d.uuid,
      driverVersion: driverOf[i] ?? null,
      cudaSession: visible === undefined ? null : (probes.get(visible.index) ?? null),
    };
  });
  const firstFailure = [...probes.values()].find((p) => !p.ok)?.error ?? null;
  const notInstalled = status.installed
    ? null
    : `no CUDA provider: ${status.missingFiles.join(', ')} missing in ${status.runtimeDir}`;
  return {
    spec: specFile,
    checks,
    gpus,
    onnxruntime: {
      version: ort.version,
      path: ort.runtimeDir,
      cudaProvider: {
        installed: status.installed,
        missingLibraries: [...status.missingFiles, ...missingLibraries],
        error: firstFailure ?? notInstalled,
      },
    },
    cudaVisibleDevices: discovery.cudaVisibleDevices,
    cudaDeviceOrder,
    diagnostics,
    exitCode,
  };
}
