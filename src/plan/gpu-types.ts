/**
 * GPU types as specs name them (`resources.gpu_type`), and how to recognise them in what
 * nvidia-smi prints. Type names follow GKE's accelerator names (`nvidia-tesla-t4`, `nvidia-l4`,
 * `nvidia-a100-80gb`), shortened where GKE appends the memory size to a GPU that comes in one
 * size only for practical purposes (`nvidia-h100`, `nvidia-h200`; GKE's spellings are aliases).
 *
 * One normaliser serves both sides: `normalizeGpuName` maps an nvidia-smi name ("NVIDIA H100
 * 80GB HBM3"), a GFD product label ("NVIDIA-H100-80GB-HBM3") or a spec's type ("nvidia-h100-80gb")
 * to the same type, so matching is equality of normalised names.
 */
import type { DeviceInfo } from './types.js';

export interface GpuType {
  /** As specs write it in `resources.gpu_type`. */
  readonly type: string;
  readonly description: string;
  /** nvidia-smi's name for the common variant (recent drivers), e.g. "NVIDIA H100 80GB HBM3". */
  readonly nvidiaSmiName: string;
  /**
   * The `nvidia.com/gpu.product` label that NVIDIA GPU feature discovery sets on a node with the
   * common variant: nvidia-smi's name with spaces replaced by '-' (see `gpuProductLabel`). Other
   * variants (PCIe, other memory sizes, older drivers) carry other labels.
   */
  readonly product: string;
  /** GKE's `cloud.google.com/gke-accelerator` value; null where GKE does not offer the GPU. */
  readonly gkeAccelerator: string | null;
  /** Other spellings a spec may use for this type; they normalise to `type`. */
  readonly aliases: readonly string[];
  /**
   * How nvidia-smi names this GPU once the vendor words ("NVIDIA", "Tesla") are dropped: the
   * first words of the name, uppercased, any of these (e.g. "V100" for "Tesla V100-SXM2-16GB").
   */
  readonly models: readonly string[];
  /** A memory word that must also appear (e.g. "80GB" tells an A100 80GB from a 40GB one). */
  readonly memory?: string;
}

/** The NVIDIA data-centre GPUs bento-run knows by name. Unknown GPUs still get a type (a slug). */
export const KNOWN_GPU_TYPES: readonly GpuType[] = [
  {
    type: 'nvidia-tesla-k80',
    description: 'NVIDIA Tesla K80 (Kepler, 12 GB per GPU)',
    nvidiaSmiName: 'Tesla K80',
    product: 'Tesla-K80',
    gkeAccelerator: 'nvidia-tesla-k80',
    aliases: ['nvidia-k80'],
    models: ['K80'],
  },
  {
    type: 'nvidia-tesla-p4',
    description: 'NVIDIA Tesla P4 (Pascal, 8 GB)',
    nvidiaSmiName: 'Tesla P4',
    product: 'Tesla-P4',
    gkeAccelerator: 'nvidia-tesla-p4',
    aliases: ['nvidia-p4'],
    models: ['P4'],
  },
  {
    type: 'nvidia-tesla-p100',
    description: 'NVIDIA Tesla P100 (Pascal, 16 GB)',
    nvidiaSmiName: 'Tesla P100-PCIE-16GB',
    product: 'Tesla-P100-PCIE-16GB',
    gkeAccelerator: 'nvidia-tesla-p100',
    aliases: ['nvidia-p100'],
    models: ['P100'],
  },
  {
    type: 'nvidia-tesla-v100',
    description: 'NVIDIA Tesla V100 (Volta, 16 or 32 GB)',
    nvidiaSmiName: 'Tesla V100-SXM2-16GB',
    product: 'Tesla-V100-SXM2-16GB',
    gkeAccelerator: 'nvidia-tesla-v100',
    aliases: ['nvidia-v100'],
    models: ['V100', 'V100S'],
  },
  {
    type: 'nvidia-tesla-t4',
    description: 'NVIDIA T4 (Turing, 16 GB)',
    nvidiaSmiName: 'Tesla T4',
    product: 'Tesla-T4',
    gkeAccelerator: 'nvidia-tesla-t4',
    aliases: ['nvidia-t4'],
    models: ['T4'],
  },
  {
    type: 'nvidia-tesla-a100',
    description: 'NVIDIA A100 40 GB (Ampere)',
    nvidiaSmiName: 'NVIDIA A100-SXM4-40GB',
    product: 'NVIDIA-A100-SXM4-40GB',
    gkeAccelerator: 'nvidia-tesla-a100',
    aliases: ['nvidia-a100', 'nvidia-a100-40gb'],
    models: ['A100'],
  },
  {
    type: 'nvidia-a100-80gb',
    description: 'NVIDIA A100 80 GB (Ampere)',
    nvidiaSmiName: 'NVIDIA A100-SXM4-80GB',
    product: 'NVIDIA-A100-SXM4-80GB',
    gkeAccelerator: 'nvidia-a100-80gb',
    aliases: ['nvidia-tesla-a100-80gb'],
    models: ['A100'],
    memory: '80GB',
  },
  {
    type: 'nvidia-a10',
    description: 'NVIDIA A10 (Ampere, 24 GB)',
    nvidiaSmiName: 'NVIDIA A10',
    product: 'NVIDIA-A10',
    gkeAccelerator: null,
    aliases: [],
    models: ['A10'],
  },
  {
    type: 'nvidia-a10g',
    description: 'NVIDIA A10G (Ampere, 24 GB; AWS G5)',
    nvidiaSmiName: 'NVIDIA A10G',
    product: 'NVIDIA-A10G',
    gkeAccelerator: null,
    aliases: [],
    models: ['A10G'],
  },
  {
    type: 'nvidia-l4',
    description: 'NVIDIA L4 (Ada Lovelace, 24 GB)',
    nvidiaSmiName: 'NVIDIA L4',
    product: 'NVIDIA-L4',
    gkeAccelerator: 'nvidia-l4',
    aliases: [],
    models: ['L4'],
  },
  {
    type: 'nvidia-l40s',
    description: 'NVIDIA L40S (Ada Lovelace, 48 GB)',
    nvidiaSmiName: 'NVIDIA L40S',
    product: 'NVIDIA-L40S',
    gkeAccelerator: null,
    aliases: [],
    models: ['L40S'],
  },
  {
    type: 'nvidia-h100',
    description: 'NVIDIA H100 (Hopper, 80 GB; SXM, PCIe and NVL variants)',
    nvidiaSmiName: 'NVIDIA H100 80GB HBM3',
    product: 'NVIDIA-H100-80GB-HBM3',
    gkeAccelerator: 'nvidia-h100-80gb',
    // A3 Mega nodes carry the same GPU; only their networking differs, which nvidia-smi cannot see.
    aliases: ['nvidia-h100-80gb', 'nvidia-h100-mega-80gb'],
    models: ['H100'],
  },
  {
    type: 'nvidia-h200',
    description: 'NVIDIA H200 (Hopper, 141 GB)',
    nvidiaSmiName: 'NVIDIA H200',
    product: 'NVIDIA-H200',
    gkeAccelerator: 'nvidia-h200-141gb',
    aliases: ['nvidia-h200-141gb'],
    models: ['H200'],
  },
  {
    type: 'nvidia-b200',
    description: 'NVIDIA B200 (Blackwell, 180 GB)',
    nvidiaSmiName: 'NVIDIA B200',
    product: 'NVIDIA-B200',
    gkeAccelerator: 'nvidia-b200',
    aliases: [],
    models: ['B200'],
  },
  {
    type: 'nvidia-gb200',
    description: 'NVIDIA GB200 (Grace Blackwell superchip GPU)',
    nvidiaSmiName: 'NVIDIA GB200',
    product: 'NVIDIA-GB200',
    gkeAccelerator: 'nvidia-gb200',
    aliases: [],
    models: ['GB200'],
  },
  {
    type: 'nvidia-rtx-pro-6000',
    description: 'NVIDIA RTX PRO 6000 Blackwell Server Edition (96 GB)',
    nvidiaSmiName: 'NVIDIA RTX PRO 6000 Blackwell Server Edition',
    product: 'NVIDIA-RTX-PRO-6000-Blackwell-Server-Edition',
    gkeAccelerator: 'nvidia-rtx-pro-6000',
    aliases: [],
    models: ['RTX PRO 6000'],
  },
];

/** Vendor words that come before the model in nvidia-smi names and in type names. */
const VENDOR_WORDS = ['NVIDIA', 'TESLA'];

function words(name: string): string[] {
  return name
    .toUpperCase()
    .split(/[^A-Z0-9]+/)
    .filter((w) => w !== '');
}

function knownTypeOf(name: string): GpuType | undefined {
  const ws = words(name);
  for (const vendor of VENDOR_WORDS) if (ws[0] === vendor) ws.shift();
  const candidates = KNOWN_GPU_TYPES.filter((t) =>
    t.models.some((m) => {
      const mw = m.split(' ');
      return mw.every((w, i) => ws[i] === w);
    }),
  );
  // A type that names a memory size wins when that size is in the name (A100 80GB over A100).
  return (
    candidates.find((t) => t.memory !== undefined && ws.includes(t.memory)) ??
    candidates.find((t) => t.memory === undefined)
  );
}

/**
 * The type a spec would write for a GPU, from nvidia-smi's name: "NVIDIA L4" -> "nvidia-l4",
 * "NVIDIA H100 PCIe" -> "nvidia-h100", "Tesla T4" -> "nvidia-tesla-t4". Also accepts GFD product
 * labels and type names (aliases included), so it normalises both sides of a comparison. A GPU
 * not in `KNOWN_GPU_TYPES` gets a slug: "NVIDIA GeForce RTX 4090" -> "nvidia-geforce-rtx-4090".
 */
export function normalizeGpuName(nvidiaSmiName: string): string {
  const known = knownTypeOf(nvidiaSmiName);
  if (known !== undefined) return known.type;
  const slug = nvidiaSmiName
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((w) => w !== '');
  if (slug[0] === 'nvidia') slug.shift();
  return slug.length === 0 ? 'nvidia-unknown' : ['nvidia', ...slug].join('-');
}

/** The known type a spec's `gpu_type` names (aliases allowed), or undefined for other GPUs. */
export function findGpuType(specType: string): GpuType | undefined {
  const type = normalizeGpuName(specType);
  return KNOWN_GPU_TYPES.find((t) => t.type === type);
}

/**
 * The `nvidia.com/gpu.product` label GPU feature discovery derives from nvidia-smi's name
 * (spaces become '-'); GFD may append `-SHARED` or a MIG profile, which this does not add.
 */
export function gpuProductLabel(nvidiaSmiName: string): string {
  return nvidiaSmiName.trim().split(/\s+/).join('-');
}

/**
 * Whether a GPU satisfies a spec's `gpu_type`: both normalised, then compared. So the canonical
 * name (`nvidia-h100`), GKE's (`nvidia-h100-80gb`) and the product label all match an H100; an
 * A100 40 GB never matches `nvidia-a100-80gb`.
 */
export function gpuTypeMatches(specType: string, device: DeviceInfo): boolean {
  const wanted = normalizeGpuName(specType);
  return wanted === normalizeGpuName(device.name) || wanted === normalizeGpuName(device.type);
}
