/** The doctor's report as text (one line per check, a fix under each failure) or JSON. */
import { renderTable } from '../util/text.js';
import type { DoctorReport } from './types.js';

/** The JSON shape issue 7 fixes. */
export interface DoctorJson {
  checks: { name: string; ok: boolean; message: string; fix?: string }[];
  gpus: {
    index: number;
    visible_index: number | null;
    name: string;
    memory_total_mib: number;
    uuid: string;
    driver_version: string | null;
    cuda_session: { ok: boolean; error: string | null } | null;
  }[];
  onnxruntime: {
    version: string;
    path: string;
    cuda_provider: { installed: boolean; missing_libraries: string[]; error: string | null };
  };
  cuda_visible_devices: string | null;
}

export function doctorToJson(r: DoctorReport): DoctorJson {
  return {
    checks: r.checks.map((c) => ({
      name: c.name,
      ok: c.ok,
      message: c.message,
      ...(c.fix === undefined ? {} : { fix: c.fix }),
    })),
    gpus: r.gpus.map((g) => ({
      index: g.physicalIndex,
      visible_index: g.visibleIndex,
      name: g.name,
      memory_total_mib: g.memoryTotalMiB,
      uuid: g.uuid,
      driver_version: g.driverVersion,
      cuda_session:
        g.cudaSession === null ? null : { ok: g.cudaSession.ok, error: g.cudaSession.error },
    })),
    onnxruntime: {
      version: r.onnxruntime.version,
      path: r.onnxruntime.path,
      cuda_provider: {
        installed: r.onnxruntime.cudaProvider.installed,
        missing_libraries: [...r.onnxruntime.cudaProvider.missingLibraries],
        error: r.onnxruntime.cudaProvider.error,
      },
    },
    cuda_visible_devices: r.cudaVisibleDevices,
  };
}

function verdict(r: DoctorReport): string {
  if (r.spec === null) {
    return 'no spec given: report only (exit 0); `bento-run doctor SPEC.yaml` checks what a spec needs';
  }
  if (r.exitCode === 2) return `${r.spec} cannot be checked: it is invalid (exit 2)`;
  const failed = r.checks.filter((c) => c.required && !c.ok).map((c) => c.name);
  return failed.length === 0
    ? `everything ${r.spec} needs is here (exit 0)`
    : `${r.spec} needs what is missing: ${failed.join(', ')} (exit 1)`;
}

export function formatDoctorText(r: DoctorReport): string {
  const lines = [`bento-run doctor${r.spec === null ? '' : ` ${r.spec}`}`, ''];
  for (const c of r.checks) {
    lines.push(`${c.ok ? 'ok  ' : 'FAIL'}  ${c.name}: ${c.message}`);
    if (!c.ok && c.fix !== undefined) lines.push(`      fix: ${c.fix}`);
  }
  if (r.gpus.length > 0) {
    lines.push('', 'GPUs (nvidia-smi):');
    lines.push(
      ...renderTable(
        [
          ['physical', 'visible', 'name', 'memory', 'driver', 'cuda session', 'uuid'],
          ...r.gpus.map((g) => [
            String(g.physicalIndex),
            g.visibleIndex === null ? '-' : `cuda:${g.visibleIndex}`,
            g.name,
            `${g.memoryTotalMiB} MiB`,
            g.driverVersion ?? '?',
            g.cudaSession === null
              ? '-'
              : g.cudaSession.ok
                ? 'ok'
                : `FAIL (${g.cudaSession.outcome})`,
            g.uuid,
          ]),
        ],
        '  ',
      ),
    );
  }
  lines.push('', verdict(r), '');
  return lines.join('\n');
}
