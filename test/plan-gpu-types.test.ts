import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  findGpuType,
  gpuProductLabel,
  gpuTypeMatches,
  KNOWN_GPU_TYPES,
  normalizeGpuName,
} from '../src/plan/gpu-types.js';
import type { DeviceInfo } from '../src/plan/types.js';

function device(name: string, type = normalizeGpuName(name)): DeviceInfo {
  return { index: 0, physicalIndex: 0, name, type, memoryTotalMiB: 1, uuid: 'GPU-0' };
}

describe('normalizeGpuName', () => {
  const cases: [nvidiaSmiName: string, type: string][] = [
    ['NVIDIA L4', 'nvidia-l4'],
    ['NVIDIA H100 80GB HBM3', 'nvidia-h100'],
    ['NVIDIA H100 PCIe', 'nvidia-h100'],
    ['NVIDIA H100 NVL', 'nvidia-h100'],
    ['Tesla T4', 'nvidia-tesla-t4'],
    ['NVIDIA A100-SXM4-40GB', 'nvidia-tesla-a100'],
    ['NVIDIA A100-PCIE-40GB', 'nvidia-tesla-a100'],
    // Drivers before 460 printed A100 names without the vendor.
    ['A100-SXM4-40GB', 'nvidia-tesla-a100'],
    ['NVIDIA A100-SXM4-80GB', 'nvidia-a100-80gb'],
    ['NVIDIA A100 80GB PCIe', 'nvidia-a100-80gb'],
    ['NVIDIA H200', 'nvidia-h200'],
    ['NVIDIA H200 NVL', 'nvidia-h200'],
    ['NVIDIA A10G', 'nvidia-a10g'],
    ['NVIDIA A10', 'nvidia-a10'],
    ['Tesla V100-SXM2-16GB', 'nvidia-tesla-v100'],
    ['Tesla V100-PCIE-32GB', 'nvidia-tesla-v100'],
    ['Tesla V100S-PCIE-32GB', 'nvidia-tesla-v100'],
    ['Tesla P100-PCIE-16GB', 'nvidia-tesla-p100'],
    ['Tesla P4', 'nvidia-tesla-p4'],
    ['Tesla K80', 'nvidia-tesla-k80'],
    ['NVIDIA L40S', 'nvidia-l40s'],
    ['NVIDIA B200', 'nvidia-b200'],
    ['NVIDIA RTX PRO 6000 Blackwell Server Edition', 'nvidia-rtx-pro-6000'],
    ['  NVIDIA   L4  ', 'nvidia-l4'],
    // Unknown GPUs: a slug, vendor word not repeated, GKE-like for old Tesla cards.
    ['NVIDIA GeForce RTX 4090', 'nvidia-geforce-rtx-4090'],
    ['NVIDIA RTX 6000 Ada Generation', 'nvidia-rtx-6000-ada-generation'],
    ['NVIDIA L40', 'nvidia-l40'],
    ['Quadro RTX 8000', 'nvidia-quadro-rtx-8000'],
    ['Tesla M60', 'nvidia-tesla-m60'],
    ['', 'nvidia-unknown'],
  ];
  for (const [name, type] of cases) {
    test(`${JSON.stringify(name)} -> ${type}`, () => {
      assert.equal(normalizeGpuName(name), type);
    });
  }

  test('a slug normalises to itself, so slugs compare equal', () => {
    for (const [name] of cases) {
      const type = normalizeGpuName(name);
      assert.equal(normalizeGpuName(type), type, name);
    }
  });
});

describe('KNOWN_GPU_TYPES', () => {
  test('types are unique', () => {
    const types = KNOWN_GPU_TYPES.map((t) => t.type);
    assert.deepEqual(types, [...new Set(types)]);
  });

  test('every spelling of a type (name, alias, GKE name, product label, nvidia-smi name) normalises to it', () => {
    for (const t of KNOWN_GPU_TYPES) {
      const spellings = [t.type, t.nvidiaSmiName, t.product, ...t.aliases];
      if (t.gkeAccelerator !== null) spellings.push(t.gkeAccelerator);
      for (const s of spellings) assert.equal(normalizeGpuName(s), t.type, `${s} (${t.type})`);
    }
  });

  test('product is the GFD label of nvidia-smi name (spaces become dashes)', () => {
    for (const t of KNOWN_GPU_TYPES) assert.equal(t.product, gpuProductLabel(t.nvidiaSmiName));
  });

  const products: [type: string, product: string][] = [
    ['nvidia-l4', 'NVIDIA-L4'],
    ['nvidia-h100', 'NVIDIA-H100-80GB-HBM3'],
    ['nvidia-tesla-t4', 'Tesla-T4'],
    ['nvidia-tesla-a100', 'NVIDIA-A100-SXM4-40GB'],
    ['nvidia-a100-80gb', 'NVIDIA-A100-SXM4-80GB'],
    ['nvidia-h200', 'NVIDIA-H200'],
    ['nvidia-a10g', 'NVIDIA-A10G'],
    ['nvidia-tesla-v100', 'Tesla-V100-SXM2-16GB'],
  ];
  for (const [type, product] of products) {
    test(`${type}: product label ${product}`, () => {
      assert.equal(findGpuType(type)?.product, product);
    });
  }

  test('findGpuType resolves aliases and knows nothing of other GPUs', () => {
    assert.equal(findGpuType('nvidia-h100-80gb')?.type, 'nvidia-h100');
    assert.equal(findGpuType('nvidia-h100-mega-80gb')?.gkeAccelerator, 'nvidia-h100-80gb');
    assert.equal(findGpuType('nvidia-h200-141gb')?.type, 'nvidia-h200');
    assert.equal(findGpuType('nvidia-geforce-rtx-4090'), undefined);
  });
});

describe('gpuTypeMatches', () => {
  const cases: [specType: string, nvidiaSmiName: string, matches: boolean][] = [
    ['nvidia-l4', 'NVIDIA L4', true],
    ['nvidia-l4', 'Tesla T4', false],
    ['nvidia-l4', 'NVIDIA L40S', false],
    ['nvidia-h100', 'NVIDIA H100 80GB HBM3', true],
    ['nvidia-h100-80gb', 'NVIDIA H100 80GB HBM3', true],
    ['nvidia-h100-mega-80gb', 'NVIDIA H100 80GB HBM3', true],
    ['nvidia-h100', 'NVIDIA H100 PCIe', true],
    ['nvidia-h100', 'NVIDIA H200', false],
    ['NVIDIA-H100-80GB-HBM3', 'NVIDIA H100 80GB HBM3', true],
    ['nvidia-tesla-a100', 'NVIDIA A100-SXM4-40GB', true],
    ['nvidia-tesla-a100', 'NVIDIA A100-SXM4-80GB', false],
    ['nvidia-a100-80gb', 'NVIDIA A100-SXM4-80GB', true],
    ['nvidia-a100-80gb', 'NVIDIA A100 80GB PCIe', true],
    ['nvidia-a100-80gb', 'NVIDIA A100-SXM4-40GB', false],
    ['nvidia-a10', 'NVIDIA A10G', false],
    ['nvidia-a10g', 'NVIDIA A10G', true],
    ['nvidia-t4', 'Tesla T4', true],
    ['Nvidia-L4', 'NVIDIA L4', true],
    ['nvidia-h200-141gb', 'NVIDIA H200', true],
    ['nvidia-geforce-rtx-4090', 'NVIDIA GeForce RTX 4090', true],
    ['nvidia-geforce-rtx-4080', 'NVIDIA GeForce RTX 4090', false],
  ];
  for (const [specType, name, matches] of cases) {
    test(`${specType} ${matches ? 'matches' : 'does not match'} ${name}`, () => {
      assert.equal(gpuTypeMatches(specType, device(name)), matches);
    });
  }

  test('a device known only by its type matches too', () => {
    assert.equal(gpuTypeMatches('nvidia-h100-80gb', device('', 'nvidia-h100')), true);
  });
});
