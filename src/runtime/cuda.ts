/**
 * Is onnxruntime-node's CUDA provider installed? Its npm package ships the CPU build; on Linux
 * x64 the install script fetches the CUDA provider libraries from NuGet only when asked
 * (ONNXRUNTIME_NODE_INSTALL=cuda12). Without them a CUDA session fails with a bare
 * "Failed to load shared library", so bento-run checks before it starts any worker.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export const CUDA_PROVIDER_LIBRARIES = [
  'libonnxruntime_providers_shared.so',
  'libonnxruntime_providers_cuda.so',
] as const;

export interface CudaProviderStatus {
  readonly installed: boolean;
  /** Folder holding onnxruntime-node's native binding and its libraries. */
  readonly runtimeDir: string;
  readonly missingFiles: readonly string[];
}

/** The folder of onnxruntime_binding.node for this platform. */
export function onnxruntimeBinDir(): string {
  const require = createRequire(import.meta.url);
  const pkgDir = dirname(require.resolve('onnxruntime-node/package.json'));
  return join(pkgDir, 'bin', 'napi-v6', process.platform, process.arch);
}

export function cudaProviderStatus(runtimeDir = onnxruntimeBinDir()): CudaProviderStatus {
  const missingFiles = CUDA_PROVIDER_LIBRARIES.filter((f) => !existsSync(join(runtimeDir, f)));
  return { installed: missingFiles.length === 0, runtimeDir, missingFiles };
}

/** What to tell a user whose plan needs CUDA but whose onnxruntime-node has no provider. */
export function cudaProviderFix(): string {
  return [
    'reinstall onnxruntime-node with its CUDA 12 provider (Linux x64): ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node',
    '(or npm install --onnxruntime-node-install=cuda12); CUDA 12 and cuDNN 9 libraries must be loadable (LD_LIBRARY_PATH);',
    'or run every worker on the CPU with --cpu',
  ].join(' ');
}
