/**
 * Device discovery: the one place where hardware enters bento-run. Everything here is data in,
 * data out except `discoverDevices`, which runs nvidia-smi (or a function given in its place)
 * and reads CUDA_VISIBLE_DEVICES from the environment it is given. Nothing loads a GPU library.
 */
import { execFileSync } from 'node:child_process';
import { PlanError } from '../errors.js';
import type { Diagnostic } from '../spec/diagnostics.js';
import { normalizeGpuName } from './gpu-types.js';
import type { DeviceInfo } from './types.js';

/** The arguments `discoverDevices` passes to nvidia-smi; fixtures are recorded with them. */
export const NVIDIA_SMI_ARGS: readonly string[] = [
  '--query-gpu=index,name,memory.total,uuid',
  '--format=csv,noheader',
];

/** nvidia-smi answers in well under a second; a hung driver must not hang the CLI. */
export const NVIDIA_SMI_TIMEOUT_MS = 10_000;

/** How messages name a visible GPU: `cuda:0 (physical 1, NVIDIA L4)`. */
export function describeDevice(d: Pick<DeviceInfo, 'index' | 'physicalIndex' | 'name'>): string {
  return `cuda:${d.index} (physical ${d.physicalIndex}, ${d.name})`;
}

function discoveryError(line: number, message: string): PlanError {
  const d: Diagnostic = {
    code: 'nvidia-smi-output',
    severity: 'error',
    message,
    path: '',
    file: 'nvidia-smi',
    line,
    column: line > 0 ? 1 : 0,
  };
  return new PlanError('BENTO_ERR_PLAN_DISCOVERY', [d]);
}

/** "23034 MiB" (or "23034" with `nounits`); "[N/A]" reads as 0, meaning unknown. */
function parseMemoryMiB(field: string): number | null {
  if (/^\[?N\/A\]?$/i.test(field)) return 0;
  const m = /^(\d+)(?:\s*MiB)?$/i.exec(field);
  return m === null ? null : Number(m[1]);
}

/**
 * Parses `nvidia-smi --query-gpu=index,name,memory.total,uuid --format=csv,noheader`, e.g.
 * `0, NVIDIA L4, 23034 MiB, GPU-5f3c…`. Blank lines, surrounding whitespace and a CSV header
 * line are tolerated, as is "No devices were found" (no GPUs). Anything else that is not four
 * fields of the right kinds throws PlanError BENTO_ERR_PLAN_DISCOVERY naming the line.
 * The devices returned are physical: `index` and `physicalIndex` are both nvidia-smi's index.
 */
export function parseNvidiaSmiCsv(csv: string): DeviceInfo[] {
  const devices: DeviceInfo[] = [];
  const lines = csv.split(/\r?\n/);
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim();
    const lineNo = i + 1;
    if (line === '') continue;
    if (/^no devices were found$/i.test(line)) continue;
    if (/^index\s*,/i.test(line)) continue;
    const fields = line.split(',').map((f) => f.trim());
    const shown = line.length > 80 ? `${line.slice(0, 77)}...` : line;
    if (fields.length !== 4) {
      throw discoveryError(
        lineNo,
        `cannot read nvidia-smi's output: expected 4 fields (index, name, memory.total, uuid), found ${fields.length} in "${shown}"`,
      );
    }
    const [indexField, name, memoryField, uuid] = fields as [string, string, string, string];
    if (!/^\d+$/.test(indexField)) {
      throw discoveryError(
        lineNo,
        `cannot read nvidia-smi's output: GPU index "${indexField}" is not a number in "${shown}"`,
      );
    }
    if (name === '') {
      throw discoveryError(lineNo, `cannot read nvidia-smi's output: empty GPU name in "${shown}"`);
    }
    const memoryTotalMiB = parseMemoryMiB(memoryField);
    if (memoryTotalMiB === null) {
      throw discoveryError(
        lineNo,
        `cannot read nvidia-smi's output: memory.total "${memoryField}" is not "<number> MiB" in "${shown}"`,
      );
    }
    if (!/^GPU-[0-9a-f-]+$/i.test(uuid)) {
      throw discoveryError(
        lineNo,
        `cannot read nvidia-smi's output: "${uuid}" is not a GPU UUID (GPU-…) in "${shown}"`,
      );
    }
    const index = Number(indexField);
    if (devices.some((d) => d.physicalIndex === index)) {
      throw discoveryError(lineNo, `cannot read nvidia-smi's output: GPU index ${index} twice`);
    }
    devices.push({
      index,
      physicalIndex: index,
      name,
      type: normalizeGpuName(name),
      memoryTotalMiB,
      uuid,
    });
  }
  return devices.sort((a, b) => a.physicalIndex - b.physicalIndex);
}

export interface VisibleDevices {
  /** Visible GPUs in visible order: `index` is the visible index (CUDA's deviceId). */
  readonly devices: DeviceInfo[];
  /** What was ignored and why, for `plan` and `doctor`; empty when nothing was. */
  readonly notes: string[];
}

/**
 * Which GPUs a CUDA process sees under CUDA_VISIBLE_DEVICES, in the order it numbers them.
 *
 * - unset (undefined): every GPU, in nvidia-smi's order;
 * - empty string: none;
 * - otherwise comma-separated entries, whitespace around them ignored: a physical index ("2"),
 *   a full GPU UUID ("GPU-5f3c…") or a prefix of one that names exactly one GPU ("GPU-5f3c").
 *
 * Like CUDA, enumeration stops at the first entry that is not valid or names no GPU ("-1", "7"
 * on a 4-GPU machine, an ambiguous prefix, a MIG UUID), and at a GPU named a second time: that
 * entry and every entry after it are ignored, and a note says so.
 *
 * Indices are nvidia-smi's (PCI bus order). CUDA reads them the same way only with
 * CUDA_DEVICE_ORDER=PCI_BUS_ID (its default puts the fastest GPU first), which makes a
 * difference only on a machine with GPUs of different models; `discoverDevices` notes that.
 */
export function applyCudaVisibleDevices(
  physical: readonly DeviceInfo[],
  value: string | undefined,
): VisibleDevices {
  const visible = (list: readonly DeviceInfo[]): DeviceInfo[] =>
    list.map((d, index) => ({ ...d, index }));
  if (value === undefined) return { devices: visible(physical), notes: [] };
  if (value.trim() === '') {
    return { devices: [], notes: ['CUDA_VISIBLE_DEVICES is empty: no GPU is visible'] };
  }
  const entries = value.split(',').map((e) => e.trim());
  const chosen: DeviceInfo[] = [];
  let stop: string | null = null;
  for (const entry of entries) {
    let device: DeviceInfo | undefined;
    if (/^\d+$/.test(entry)) {
      device = physical.find((d) => d.physicalIndex === Number(entry));
      if (device === undefined) {
        const have = physical.map((d) => d.physicalIndex).join(', ') || 'none';
        stop = `"${entry}" names no GPU (GPU indices: ${have})`;
      }
    } else if (/^GPU-/i.test(entry)) {
      const prefix = entry.toLowerCase();
      const matches = physical.filter((d) => d.uuid.toLowerCase().startsWith(prefix));
      if (matches.length === 1) device = matches[0];
      else if (matches.length === 0) stop = `"${entry}" matches no GPU UUID`;
      else {
        const which = matches.map((d) => d.physicalIndex).join(', ');
        stop = `"${entry}" is ambiguous (a prefix of the UUIDs of GPUs ${which})`;
      }
    } else if (entry === '') {
      stop = 'an entry is empty';
    } else if (/^-\d+$/.test(entry)) {
      stop = `"${entry}" is not a GPU index (a negative index is a common way to hide every GPU)`;
    } else if (/^MIG-/i.test(entry)) {
      stop = `"${entry}" names a MIG instance, and bento-run places whole GPUs`;
    } else {
      stop = `"${entry}" is neither a GPU index nor a GPU UUID (GPU-…)`;
    }
    if (device !== undefined && chosen.includes(device)) {
      stop = `"${entry}" names GPU ${device.physicalIndex} a second time`;
      device = undefined;
    }
    if (device === undefined) break;
    chosen.push(device);
  }
  const notes: string[] = [];
  if (stop !== null) {
    const ignored = entries
      .slice(chosen.length)
      .map((e) => `"${e}"`)
      .join(', ');
    const kept =
      chosen.length === 0
        ? 'no GPU is visible'
        : `visible GPUs (physical): ${chosen.map((d) => d.physicalIndex).join(', ')}`;
    notes.push(
      `CUDA_VISIBLE_DEVICES="${value}": ${stop}; like CUDA, enumeration stops there, ignoring ${ignored}; ${kept}`,
    );
  }
  return { devices: visible(chosen), notes };
}

export interface Discovery {
  /** Visible GPUs in visible order: what `planPlacement` takes. */
  readonly devices: readonly DeviceInfo[];
  /** Every GPU nvidia-smi lists, in its order (`index` = `physicalIndex`). */
  readonly physical: readonly DeviceInfo[];
  /** CUDA_VISIBLE_DEVICES as found; null when unset. */
  readonly cudaVisibleDevices: string | null;
  /** Why nvidia-smi gave no GPUs (not installed, no driver); null when it answered. */
  readonly nvidiaSmiError: string | null;
  /** What `plan` and `doctor` should tell the user: why no GPUs, what was ignored. */
  readonly notes: readonly string[];
}

export interface DiscoverOptions {
  /** The environment to read CUDA_VISIBLE_DEVICES from and run nvidia-smi with. */
  env?: NodeJS.ProcessEnv;
  /**
   * Replaces running nvidia-smi (tests): returns its CSV output, or null for "no nvidia-smi".
   * A throw is treated like nvidia-smi failing.
   */
  nvidiaSmi?: () => string | null;
}

function firstLine(text: unknown): string {
  const s = typeof text === 'string' ? text : Buffer.isBuffer(text) ? text.toString('utf8') : '';
  return (
    s
      .split(/\r?\n/)
      .map((l) => l.trim())
      .find((l) => l !== '') ?? ''
  );
}

/** Why running nvidia-smi failed, in one line. */
function describeFailure(e: unknown): string {
  const err = e as NodeJS.ErrnoException & {
    status?: number | null;
    signal?: string | null;
    stdout?: unknown;
    stderr?: unknown;
  };
  if (err.code === 'ENOENT')
    return 'nvidia-smi was not found on PATH (is the NVIDIA driver installed?)';
  if (err.code === 'ETIMEDOUT' || err.signal === 'SIGTERM') {
    return `nvidia-smi did not answer within ${NVIDIA_SMI_TIMEOUT_MS / 1000} s`;
  }
  const said = firstLine(err.stderr) || firstLine(err.stdout) || err.message;
  const how = typeof err.status === 'number' ? ` (exit ${err.status})` : '';
  return `nvidia-smi failed${how}: ${said}`;
}

function runNvidiaSmi(env: NodeJS.ProcessEnv): string {
  // With `env` given, Node looks nvidia-smi up on env.PATH: tests put a fake one first there.
  return execFileSync('nvidia-smi', NVIDIA_SMI_ARGS, {
    env,
    encoding: 'utf8',
    timeout: NVIDIA_SMI_TIMEOUT_MS,
    stdio: ['ignore', 'pipe', 'pipe'],
    windowsHide: true,
  });
}

/**
 * Finds the GPUs this process may use: runs nvidia-smi (or `opts.nvidiaSmi`), then applies
 * CUDA_VISIBLE_DEVICES from `opts.env`. No nvidia-smi, or one that fails (no driver, no GPU),
 * means no GPUs, with the reason in `nvidiaSmiError` and `notes`. Output that cannot be read
 * throws PlanError BENTO_ERR_PLAN_DISCOVERY (see `parseNvidiaSmiCsv`).
 */
export function discoverDevices(opts: DiscoverOptions = {}): Discovery {
  const env = opts.env ?? process.env;
  const cvd = env.CUDA_VISIBLE_DEVICES;
  let csv: string | null;
  let nvidiaSmiError: string | null = null;
  try {
    csv = opts.nvidiaSmi ? opts.nvidiaSmi() : runNvidiaSmi(env);
    if (csv === null)
      nvidiaSmiError = 'nvidia-smi is not available (is the NVIDIA driver installed?)';
  } catch (e) {
    csv = null;
    nvidiaSmiError = describeFailure(e);
  }
  const physical = csv === null ? [] : parseNvidiaSmiCsv(csv);
  const notes: string[] = [];
  if (nvidiaSmiError !== null) notes.push(`no GPUs: ${nvidiaSmiError}`);
  else if (physical.length === 0) notes.push('no GPUs: nvidia-smi lists none');
  const { devices, notes: visibilityNotes } = applyCudaVisibleDevices(physical, cvd);
  notes.push(...visibilityNotes);
  const models = new Set(physical.map((d) => d.name));
  if (models.size > 1 && env.CUDA_DEVICE_ORDER !== 'PCI_BUS_ID') {
    notes.push(
      'GPUs of different models: CUDA numbers them fastest first unless CUDA_DEVICE_ORDER=PCI_BUS_ID, ' +
        "which bento-run's GPU indices (nvidia-smi's order) assume",
    );
  }
  return {
    devices,
    physical,
    cudaVisibleDevices: cvd ?? null,
    nvidiaSmiError,
    notes,
  };
}
