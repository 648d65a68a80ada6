/**
 * Is onnxruntime-node's CUDA provider installed, and can its libraries load? Its npm package ships
 * the CPU build; on Linux x64 its install script downloads the CUDA 12 provider from NuGet, unless
 * told to skip (this repository's .npmrc does, `onnxruntime-node-install=skip`), scripts are off
 * (--ignore-scripts) or the download fails; ONNXRUNTIME_NODE_INSTALL=cuda12 forces it. The provider
 * needs CUDA 12 and cuDNN 9 at load time. When any piece is missing a CUDA session fails with a
 * bare "Failed to load shared library", so `serve` checks the files before it starts any worker,
 * and `doctor` checks all of it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export const CUDA_PROVIDER_LIBRARIES = [
  'libonnxruntime_providers_shared.so',
  'libonnxruntime_providers_cuda.so',
] as const;

/** The oldest Linux driver that runs CUDA 12 (NVIDIA's CUDA 12 release notes). */
export const CUDA12_MIN_DRIVER = '525.60.13';

export interface CudaProviderStatus {
  readonly installed: boolean;
  /** Folder holding onnxruntime-node's native binding and its libraries. */
  readonly runtimeDir: string;
  readonly missingFiles: readonly string[];
}

export interface OnnxruntimeInfo {
  /** onnxruntime-node's package version, e.g. "1.30.0". */
  readonly version: string;
  readonly packageDir: string;
  /** Where the native binding loads from (`onnxruntimeBinDir()`). */
  readonly runtimeDir: string;
  /** Whether onnxruntime_binding.node is there (it is not on an unsupported platform). */
  readonly bindingFound: boolean;
}

function onnxruntimePackageDir(): string {
  const require = createRequire(import.meta.url);
  return dirname(require.resolve('onnxruntime-node/package.json'));
}

/** The folder of onnxruntime_binding.node for this platform. */
export function onnxruntimeBinDir(): string {
  return join(onnxruntimePackageDir(), 'bin', 'napi-v6', process.platform, process.arch);
}

export function onnxruntimeInfo(): OnnxruntimeInfo {
  const packageDir = onnxruntimePackageDir();
  const pkg = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as {
    version: string;
  };
  const runtimeDir = onnxruntimeBinDir();
  return {
    version: pkg.version,
    packageDir,
    runtimeDir,
    bindingFound: existsSync(join(runtimeDir, 'onnxruntime_binding.node')),
  };
}

export function cudaProviderStatus(runtimeDir = onnxruntimeBinDir()): CudaProviderStatus {
  const missingFiles = CUDA_PROVIDER_LIBRARIES.filter((f) => !existsSync(join(runtimeDir, f)));
  return { installed: missingFiles.length === 0, runtimeDir, missingFiles };
}

/**
 * What to tell a user whose plan needs CUDA but whose onnxruntime-node has no provider. `serve`
 * and `doctor` give the same explanation.
 */
export function cudaProviderFix(): string {
  return [
    'ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node (or npm install --onnxruntime-node-install=cuda12):',
    "on Linux x64 onnxruntime-node's install script downloads the CUDA 12 provider from NuGet, and an .npmrc with",
    'onnxruntime-node-install=skip, --ignore-scripts or no network leaves it out;',
    'the provider then needs the CUDA 12 and cuDNN 9 libraries on the library path (LD_LIBRARY_PATH), which',
    '`bento-run doctor SPEC.yaml` checks, with a CUDA session on every GPU; or run every worker on the CPU with --cpu',
  ].join(' ');
}

/** The shared libraries that a file needs and the loader cannot find, from `ldd FILE`. */
export interface MissingLibraries {
  /** The provider file inspected. */
  readonly file: string;
  /** Sonames, e.g. "libcublasLt.so.12"; empty when all were found. */
  readonly missing: readonly string[];
  /** Why the file could not be inspected (no ldd, not an ELF file); null when it was. */
  readonly error: string | null;
}

/** Runs `ldd FILE` and returns its output; replaced in tests. */
export type LddRunner = (file: string) => string;

const runLdd: LddRunner = (file) =>
  execFileSync('ldd', [file], {
    encoding: 'utf8',
    timeout: 10_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  });

/** The sonames of `ldd`'s "not found" lines: `\tlibcublasLt.so.12 => not found`. */
export function parseLddNotFound(output: string): string[] {
  const found: string[] = [];
  for (const line of output.split(/\r?\n/)) {
    const m = /^\s*(\S+)\s+=>\s+not found\s*$/.exec(line);
    if (m?.[1] !== undefined && !found.includes(m[1])) found.push(m[1]);
  }
  return found;
}

/**
 * Which libraries the installed CUDA provider files need and cannot find. A library that lies
 * beside the runtime is not counted: onnxruntime loads the provider bridge from there first.
 * Only the provider files that exist are inspected.
 */
export function cudaProviderMissingLibraries(
  status: CudaProviderStatus,
  ldd: LddRunner = runLdd,
): MissingLibraries[] {
  return CUDA_PROVIDER_LIBRARIES.filter((f) => !status.missingFiles.includes(f)).map((name) => {
    const file = join(status.runtimeDir, name);
    try {
      const missing = parseLddNotFound(ldd(file)).filter(
        (lib) => !existsSync(join(status.runtimeDir, lib)),
      );
      return { file, missing, error: null };
    } catch (e) {
      const err = e as NodeJS.ErrnoException & { stderr?: string };
      const why =
        err.code === 'ENOENT'
          ? 'ldd was not found on PATH'
          : (String(err.stderr ?? '').trim() || err.message).split('\n')[0];
      return { file, missing: [], error: `cannot inspect ${name}: ${why}` };
    }
  });
}

interface LibrarySource {
  readonly pattern: RegExp;
  readonly what: string;
  /** Debian/Ubuntu package from NVIDIA's CUDA repository; N is the CUDA 12 minor version. */
  readonly apt: string;
  readonly pip: string;
}

const LIBRARY_SOURCES: readonly LibrarySource[] = [
  { pattern: /^libcudnn/, what: 'cuDNN 9', apt: 'libcudnn9-cuda-12', pip: 'nvidia-cudnn-cu12' },
  {
    pattern: /^libcublas/,
    what: 'cuBLAS 12',
    apt: 'libcublas-12-N',
    pip: 'nvidia-cublas-cu12',
  },
  {
    pattern: /^libcudart/,
    what: 'the CUDA 12 runtime',
    apt: 'cuda-cudart-12-N',
    pip: 'nvidia-cuda-runtime-cu12',
  },
  { pattern: /^libcufft/, what: 'cuFFT', apt: 'libcufft-12-N', pip: 'nvidia-cufft-cu12' },
  { pattern: /^libcurand/, what: 'cuRAND', apt: 'libcurand-12-N', pip: 'nvidia-curand-cu12' },
  {
    pattern: /^libnvrtc/,
    what: 'NVRTC',
    apt: 'cuda-nvrtc-12-N',
    pip: 'nvidia-cuda-nvrtc-cu12',
  },
];

/** Where the missing CUDA 12 / cuDNN 9 libraries come from, and how to make them loadable. */
export function cudaLibrariesFix(missing: readonly string[]): string {
  const parts: string[] = [];
  if (missing.some((l) => /^libcuda\.so/.test(l))) {
    parts.push('libcuda.so.1 comes with the NVIDIA driver: install or repair the driver');
  }
  const sources = LIBRARY_SOURCES.filter((s) => missing.some((l) => s.pattern.test(l)));
  if (sources.length > 0) {
    parts.push(
      `install ${sources.map((s) => s.what).join(', ')}: ` +
        `apt (NVIDIA's CUDA repository, N = your CUDA 12 minor version): ${sources.map((s) => s.apt).join(' ')}; ` +
        `or pip: ${sources.map((s) => s.pip).join(' ')} (then their site-packages/nvidia/*/lib folders)`,
    );
  }
  const other = missing.filter(
    (l) => !/^libcuda\.so/.test(l) && !LIBRARY_SOURCES.some((s) => s.pattern.test(l)),
  );
  if (other.length > 0) parts.push(`install the packages that provide ${other.join(', ')}`);
  parts.push(
    'then put the folders holding them on LD_LIBRARY_PATH (or run ldconfig) and check again with `bento-run doctor`',
  );
  return parts.join('; ');
}
