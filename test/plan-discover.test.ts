import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PlanError } from '../src/errors.js';
import {
  applyCudaVisibleDevices,
  discoverDevices,
  NVIDIA_SMI_ARGS,
  parseNvidiaSmiCsv,
} from '../src/plan/discover.js';
import {
  envWithoutNvidiaSmi,
  fakeNvidiaSmi,
  readNvidiaSmiFixture,
} from './helpers/fake-nvidia-smi.js';

describe('parseNvidiaSmiCsv: recorded outputs', () => {
  const fixtures: [fixture: string, names: string[], types: string[], memoryMiB: number[]][] = [
    ['1x-l4', ['NVIDIA L4'], ['nvidia-l4'], [23034]],
    ['2x-l4', Array(2).fill('NVIDIA L4'), Array(2).fill('nvidia-l4'), [23034, 23034]],
    [
      '4x-a100-80gb',
      Array(4).fill('NVIDIA A100-SXM4-80GB'),
      Array(4).fill('nvidia-a100-80gb'),
      Array(4).fill(81920),
    ],
    [
      '8x-h100',
      Array(8).fill('NVIDIA H100 80GB HBM3'),
      Array(8).fill('nvidia-h100'),
      Array(8).fill(81559),
    ],
    ['1x-h100', ['NVIDIA H100 80GB HBM3'], ['nvidia-h100'], [81559]],
    [
      'mixed-2x-t4-2x-l4',
      ['Tesla T4', 'Tesla T4', 'NVIDIA L4', 'NVIDIA L4'],
      ['nvidia-tesla-t4', 'nvidia-tesla-t4', 'nvidia-l4', 'nvidia-l4'],
      [15360, 15360, 23034, 23034],
    ],
  ];
  for (const [fixture, names, types, memory] of fixtures) {
    test(fixture, () => {
      const devices = parseNvidiaSmiCsv(readNvidiaSmiFixture(fixture));
      assert.deepEqual(
        devices.map((d) => d.name),
        names,
      );
      assert.deepEqual(
        devices.map((d) => d.type),
        types,
      );
      assert.deepEqual(
        devices.map((d) => d.memoryTotalMiB),
        memory,
      );
      assert.deepEqual(
        devices.map((d) => [d.index, d.physicalIndex]),
        names.map((_, i) => [i, i]),
      );
      for (const d of devices)
        assert.match(d.uuid, /^GPU-[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$/);
      assert.equal(new Set(devices.map((d) => d.uuid)).size, devices.length);
    });
  }
});

describe('parseNvidiaSmiCsv: tolerance', () => {
  const l4 = 'NVIDIA L4, 23034 MiB, GPU-5d96cf7f-265b-4da9-8f0c-26ef4243ed52';
  const cases: [label: string, csv: string, expected: [index: number, memory: number][]][] = [
    ['empty output', '', []],
    ['blank lines and padding', `\n   \n  0 ,  ${l4}  \n\n`, [[0, 23034]]],
    ['CRLF line ends', `0, ${l4}\r\n`, [[0, 23034]]],
    ['a header line', `index, name, memory.total [MiB], uuid\n0, ${l4}\n`, [[0, 23034]]],
    ['"No devices were found"', 'No devices were found\n', []],
    ['nounits', '0, NVIDIA L4, 23034, GPU-5d96cf7f\n', [[0, 23034]]],
    ['memory [N/A] reads as 0 (unknown)', '0, NVIDIA GB200, [N/A], GPU-5d96cf7f\n', [[0, 0]]],
    [
      'sorted by index',
      `1, ${l4.replace('5d96', '0000')}\n0, ${l4}\n`,
      [
        [0, 23034],
        [1, 23034],
      ],
    ],
  ];
  for (const [label, csv, expected] of cases) {
    test(label, () => {
      assert.deepEqual(
        parseNvidiaSmiCsv(csv).map((d) => [d.physicalIndex, d.memoryTotalMiB]),
        expected,
      );
    });
  }
});

describe('parseNvidiaSmiCsv: garbage is a clear error', () => {
  const ok = '0, NVIDIA L4, 23034 MiB, GPU-5d96cf7f-265b-4da9-8f0c-26ef4243ed52';
  const cases: [label: string, csv: string, line: number, message: RegExp][] = [
    ['too few fields', '0, NVIDIA L4, 23034 MiB\n', 1, /expected 4 fields .* found 3/],
    [
      'a driver message with exit status 0',
      "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n",
      1,
      /expected 4 fields/,
    ],
    ['index not a number', `${ok}\nx, NVIDIA L4, 23034 MiB, GPU-1\n`, 2, /GPU index "x"/],
    ['memory not MiB', '0, NVIDIA L4, lots, GPU-1\n', 1, /memory.total "lots"/],
    ['not a UUID', '0, NVIDIA L4, 23034 MiB, 5d96cf7f\n', 1, /not a GPU UUID/],
    ['empty name', '0, , 23034 MiB, GPU-1\n', 1, /empty GPU name/],
    ['an index twice', `\n${ok}\n${ok}\n`, 3, /GPU index 0 twice/],
  ];
  for (const [label, csv, line, message] of cases) {
    test(label, () => {
      assert.throws(
        () => parseNvidiaSmiCsv(csv),
        (e: unknown) => {
          assert.ok(e instanceof PlanError);
          assert.equal(e.code, 'BENTO_ERR_PLAN_DISCOVERY');
          assert.equal(e.diagnostics[0]?.line, line);
          assert.equal(e.diagnostics[0]?.file, 'nvidia-smi');
          assert.match(e.message, message);
          return true;
        },
      );
    });
  }
});

describe('applyCudaVisibleDevices', () => {
  const a100 = parseNvidiaSmiCsv(readNvidiaSmiFixture('4x-a100-80gb'));
  const l4 = parseNvidiaSmiCsv(readNvidiaSmiFixture('2x-l4'));
  const uuid = (i: number) => a100[i]?.uuid ?? assert.fail(`no GPU ${i}`);
  const cases: [
    label: string,
    value: string | undefined,
    physical: number[],
    note: RegExp | null,
    gpus?: typeof a100,
  ][] = [
    ['unset: every GPU', undefined, [0, 1, 2, 3], null],
    ['empty: none', '', [], /empty: no GPU is visible/],
    ['"1,2"', '1,2', [1, 2], null],
    ['"2,0": in the order given', '2,0', [2, 0], null],
    ['whitespace around entries', ' 3 , 1 ', [3, 1], null],
    ['a full UUID', uuid(3), [3], null],
    ['a UUID prefix', uuid(2).slice(0, 7), [2], null],
    ['a UUID in upper case', uuid(1).toUpperCase(), [1], null],
    ['UUIDs and indices mixed', `${uuid(2).slice(0, 10)},0`, [2, 0], null],
    [
      'an index that names no GPU stops enumeration',
      '1,7,2',
      [1],
      /"7" names no GPU \(GPU indices: 0, 1, 2, 3\).*ignoring "7", "2"; visible GPUs \(physical\): 1/,
    ],
    ['"-1" hides every GPU', '-1', [], /"-1" is not a GPU index.*no GPU is visible/],
    ['a repeated index ends it', '0,0,1', [0], /"0" names GPU 0 a second time.*ignoring "0", "1"/],
    ['a repeated GPU by UUID ends it', `1,${uuid(1).slice(0, 12)}`, [1], /a second time/],
    ['a UUID that matches nothing', 'GPU-ffffffff,0', [], /"GPU-ffffffff" matches no GPU UUID/],
    ['neither index nor UUID', 'abc,0', [], /"abc" is neither a GPU index nor a GPU UUID/],
    ['a MIG UUID', 'MIG-4f2c1d9e-1111-2222-3333-444455556666', [], /MIG instance/],
    ['a trailing comma', '1,', [1], /an entry is empty/],
    ['an ambiguous UUID prefix', 'GPU-5', [], /ambiguous .* GPUs 0, 1/, l4],
    ['a longer prefix is unique', 'GPU-5e', [1], null, l4],
  ];
  for (const [label, value, physical, note, gpus = a100] of cases) {
    test(label, () => {
      const { devices, notes } = applyCudaVisibleDevices(gpus, value);
      assert.deepEqual(
        devices.map((d) => d.physicalIndex),
        physical,
      );
      // The visible index (CUDA's deviceId) is the position in the list, not nvidia-smi's.
      assert.deepEqual(
        devices.map((d) => d.index),
        physical.map((_, i) => i),
      );
      if (note === null) assert.deepEqual(notes, []);
      else {
        assert.equal(notes.length, 1);
        assert.match(notes[0] ?? '', note);
      }
    });
  }

  test('does not change the physical list', () => {
    applyCudaVisibleDevices(a100, '3,2');
    assert.deepEqual(
      a100.map((d) => d.index),
      [0, 1, 2, 3],
    );
  });
});

describe('discoverDevices', () => {
  test('runs nvidia-smi from PATH with the query arguments', (t) => {
    const fake = fakeNvidiaSmi('2x-l4');
    t.after(() => fake.cleanup());
    const found = discoverDevices({ env: fake.env({}) });
    assert.deepEqual(fake.calls(), [[...NVIDIA_SMI_ARGS]]);
    assert.deepEqual(
      found.devices.map((d) => [d.index, d.physicalIndex, d.name]),
      [
        [0, 0, 'NVIDIA L4'],
        [1, 1, 'NVIDIA L4'],
      ],
    );
    assert.equal(found.physical.length, 2);
    assert.equal(found.cudaVisibleDevices, null);
    assert.equal(found.nvidiaSmiError, null);
    assert.deepEqual(found.notes, []);
  });

  test('applies CUDA_VISIBLE_DEVICES from the environment given', (t) => {
    const fake = fakeNvidiaSmi('4x-a100-80gb');
    t.after(() => fake.cleanup());
    const found = discoverDevices({ env: fake.env({}, { CUDA_VISIBLE_DEVICES: '3,1' }) });
    assert.deepEqual(
      found.devices.map((d) => [d.index, d.physicalIndex]),
      [
        [0, 3],
        [1, 1],
      ],
    );
    assert.equal(found.physical.length, 4);
    assert.equal(found.cudaVisibleDevices, '3,1');
  });

  test('notes what CUDA_VISIBLE_DEVICES made it ignore', (t) => {
    const fake = fakeNvidiaSmi('2x-l4');
    t.after(() => fake.cleanup());
    const found = discoverDevices({ env: fake.env({}, { CUDA_VISIBLE_DEVICES: '1,5' }) });
    assert.deepEqual(
      found.devices.map((d) => d.physicalIndex),
      [1],
    );
    assert.match(found.notes.join('\n'), /"5" names no GPU/);
  });

  test('no nvidia-smi on PATH: no GPUs, and why', (t) => {
    const none = envWithoutNvidiaSmi({ CUDA_VISIBLE_DEVICES: '0' });
    t.after(() => none.cleanup());
    const found = discoverDevices({ env: none.env });
    assert.deepEqual(found.devices, []);
    assert.deepEqual(found.physical, []);
    assert.match(found.nvidiaSmiError ?? '', /not found on PATH/);
    assert.match(found.notes[0] ?? '', /^no GPUs: nvidia-smi was not found on PATH/);
    assert.equal(found.cudaVisibleDevices, '0');
  });

  const failures: [label: string, stdout: string, stderr: string, exit: number, why: RegExp][] = [
    [
      'no driver',
      "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.\n",
      '',
      9,
      /exit 9\): NVIDIA-SMI has failed because it couldn't communicate/,
    ],
    ['no devices', 'No devices were found\n', '', 6, /exit 6\): No devices were found/],
    [
      'stderr wins',
      'partial\n',
      'Failed to initialize NVML: Driver/library version mismatch\n',
      18,
      /exit 18\): Failed to initialize NVML/,
    ],
  ];
  for (const [label, stdout, stderr, exitCode, why] of failures) {
    test(`nvidia-smi failing (${label}): no GPUs, and why`, (t) => {
      const fake = fakeNvidiaSmi({ stdout, stderr, exitCode });
      t.after(() => fake.cleanup());
      const found = discoverDevices({ env: fake.env({}) });
      assert.deepEqual(found.devices, []);
      assert.match(found.nvidiaSmiError ?? '', why);
      assert.match(found.notes[0] ?? '', /^no GPUs: nvidia-smi failed/);
    });
  }

  test('unreadable output from a working nvidia-smi throws BENTO_ERR_PLAN_DISCOVERY', (t) => {
    const fake = fakeNvidiaSmi({ stdout: 'something else entirely\n' });
    t.after(() => fake.cleanup());
    assert.throws(() => discoverDevices({ env: fake.env({}) }), {
      code: 'BENTO_ERR_PLAN_DISCOVERY',
    });
  });

  test('the nvidiaSmi seam: output, absence and failure', () => {
    const csv = readNvidiaSmiFixture('8x-h100');
    const found = discoverDevices({ env: { CUDA_VISIBLE_DEVICES: '6,7' }, nvidiaSmi: () => csv });
    assert.deepEqual(
      found.devices.map((d) => [d.index, d.physicalIndex, d.type]),
      [
        [0, 6, 'nvidia-h100'],
        [1, 7, 'nvidia-h100'],
      ],
    );

    const absent = discoverDevices({ env: {}, nvidiaSmi: () => null });
    assert.deepEqual(absent.devices, []);
    assert.match(absent.nvidiaSmiError ?? '', /not available/);

    const failing = discoverDevices({
      env: {},
      nvidiaSmi: () => {
        throw Object.assign(new Error('spawn nvidia-smi ENOENT'), { code: 'ENOENT' });
      },
    });
    assert.match(failing.nvidiaSmiError ?? '', /not found on PATH/);
  });

  test('mixed GPU models: a note unless CUDA_DEVICE_ORDER=PCI_BUS_ID', () => {
    const csv = readNvidiaSmiFixture('mixed-2x-t4-2x-l4');
    const unordered = discoverDevices({ env: {}, nvidiaSmi: () => csv });
    assert.match(unordered.notes.join('\n'), /CUDA_DEVICE_ORDER=PCI_BUS_ID/);
    const ordered = discoverDevices({
      env: { CUDA_DEVICE_ORDER: 'PCI_BUS_ID' },
      nvidiaSmi: () => csv,
    });
    assert.deepEqual(ordered.notes, []);
    const same = discoverDevices({ env: {}, nvidiaSmi: () => readNvidiaSmiFixture('2x-l4') });
    assert.deepEqual(same.notes, []);
  });
});
