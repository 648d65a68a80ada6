/**
 * Triton's model configuration extension (`GET /v2/models/{m}/config`, gRPC ModelConfig), as
 * Triton's JSON spells it: perf_analyzer and Triton's clients read max_batch_size and the
 * input/output dims from it.
 */
import type { Plan } from '../plan/types.js';
import type { ModelInfo } from '../runtime/types.js';
import { ORT_TO_PROTOCOL } from '../tensor/datatypes.js';
import type { TensorSignature } from '../tensor/types.js';

/** Triton's DataType enum names, from the protocol's datatypes. */
const TRITON_TYPE: Readonly<Record<string, string>> = {
  BOOL: 'TYPE_BOOL',
  UINT8: 'TYPE_UINT8',
  UINT16: 'TYPE_UINT16',
  UINT32: 'TYPE_UINT32',
  UINT64: 'TYPE_UINT64',
  INT8: 'TYPE_INT8',
  INT16: 'TYPE_INT16',
  INT32: 'TYPE_INT32',
  INT64: 'TYPE_INT64',
  FP16: 'TYPE_FP16',
  FP32: 'TYPE_FP32',
  FP64: 'TYPE_FP64',
  BYTES: 'TYPE_STRING',
};

export function tritonDataType(s: TensorSignature): string {
  return s.type === 'unknown' ? 'TYPE_INVALID' : TRITON_TYPE[ORT_TO_PROTOCOL[s.type]]!;
}

export interface InstanceGroup {
  readonly name: string;
  readonly kind: 'KIND_GPU' | 'KIND_CPU';
  readonly count: number;
  readonly gpus: number[];
}

/** One group per device holding the model: how many workers hold it there. */
export function instanceGroups(plan: Plan, model: string): InstanceGroup[] {
  const byDevice = new Map<string, { deviceId: number | null; count: number }>();
  for (const p of plan.placements) {
    if (p.model !== model) continue;
    const g = byDevice.get(p.device) ?? { deviceId: p.deviceId, count: 0 };
    g.count++;
    byDevice.set(p.device, g);
  }
  return [...byDevice.entries()].map(([device, g]) => ({
    name: `${model}_${device.replace(':', '_')}`,
    kind: g.deviceId === null ? 'KIND_CPU' : 'KIND_GPU',
    count: g.count,
    gpus: g.deviceId === null ? [] : [g.deviceId],
  }));
}

export function modelConfig(plan: Plan, model: ModelInfo) {
  const batched = model.maxBatchSize > 0;
  const tensor = (s: TensorSignature) => ({
    name: s.name,
    data_type: tritonDataType(s),
    // With batching, Triton's dims leave out the batch dimension.
    dims: batched ? s.shape.slice(1) : [...s.shape],
  });
  return {
    name: model.name,
    platform: 'onnxruntime_onnx',
    backend: 'onnxruntime',
    version_policy: { latest: { num_versions: 1 } },
    max_batch_size: model.maxBatchSize,
    input: model.inputs.map(tensor),
    output: model.outputs.filter((o) => o.type !== 'unknown').map(tensor),
    ...(model.batching
      ? {
          dynamic_batching: {
            max_queue_delay_microseconds: Math.round(model.batching.maxLatencyMs * 1000),
          },
        }
      : {}),
    instance_group: instanceGroups(plan, model.name),
  };
}
