/**
 * The NVIDIA driver version, which `discoverDevices` does not ask for: a second nvidia-smi
 * query, one line per GPU in nvidia-smi's order.
 */
import { execFileSync } from 'node:child_process';
import { NVIDIA_SMI_TIMEOUT_MS } from '../plan/index.js';

export const DRIVER_QUERY_ARGS: readonly string[] = [
  '--query-gpu=driver_version',
  '--format=csv,noheader',
];

export interface DriverVersions {
  /** One per GPU, in nvidia-smi's order; empty when the query failed. */
  readonly versions: readonly string[];
  readonly error: string | null;
}

export function queryDriverVersions(env: NodeJS.ProcessEnv): DriverVersions {
  try {
    const out = execFileSync('nvidia-smi', DRIVER_QUERY_ARGS, {
      env,
      encoding: 'utf8',
      timeout: NVIDIA_SMI_TIMEOUT_MS,
      stdio: ['ignore', 'pipe', 'pipe'],
      windowsHide: true,
    });
    const versions = out
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => /^\d+(\.\d+)*$/.test(l));
    return { versions, error: versions.length === 0 ? 'nvidia-smi gave no driver version' : null };
  } catch (e) {
    return {
      versions: [],
      error: `nvidia-smi ${DRIVER_QUERY_ARGS[0]} failed: ${(e as Error).message.split('\n')[0]}`,
    };
  }
}
