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

export interface ConfigTensor {
  readonly name: string;
  readonly data_type: string;
  readonly dims: number[];
}

/** Triton's model configuration, as its JSON spells it (the fields bento-run fills). */
export interface ModelConfig {
  readonly name: string;
  readonly platform: string;
  /** Absent for an ensemble (Triton's has none). */
  readonly backend?: string;
  readonly version_policy: { readonly latest: { readonly num_versions: number } };
  readonly max_batch_size: number;
  readonly input: ConfigTensor[];
  readonly output: ConfigTensor[];
  readonly dynamic_batching?: { readonly max_queue_delay_microseconds: number };
  /** Empty for an ensemble: its steps run wherever their models are. */
  readonly instance_group: InstanceGroup[];
  readonly ensemble_scheduling?: {
    readonly step: {
      readonly model_name: string;
      readonly model_version: number;
      readonly input_map: Record<string, string>;
      readonly output_map: Record<string, string>;
    }[];
  };
}

/**
 * A pipeline's configuration as Triton writes an ensemble's: platform 'ensemble' and one
 * ensemble_scheduling step per pipeline step, mapping each model input to the tensor that feeds
 * it (a pipeline input's name, a pipeline output's name, or `step.output` for a tensor that
 * stays inside the pipeline) and each model output used to its tensor.
 */
export function ensembleConfig(plan: Plan, model: ModelInfo): ModelConfig {
  const spec = plan.pipelineSpecs?.find((p) => p.name === model.name);
  const tensor = (s: TensorSignature) => ({
    name: s.name,
    data_type: tritonDataType(s),
    dims: [...s.shape],
  });
  const tensorName = (step: string, output: string) =>
    spec?.outputs.find((o) => o.step === step && o.output === output)?.name ?? `${step}.${output}`;
  const used = new Map<string, Set<string>>();
  const use = (step: string, output: string) => {
    const s = used.get(step) ?? new Set<string>();
    s.add(output);
    used.set(step, s);
  };
  for (const o of spec?.outputs ?? []) use(o.step, o.output);
  for (const s of spec?.steps ?? [])
    for (const src of Object.values(s.inputs)) if (src.kind === 'step') use(src.step, src.output);
  return {
    name: model.name,
    platform: 'ensemble',
    version_policy: { latest: { num_versions: 1 } },
    max_batch_size: 0,
    input: model.inputs.map(tensor),
    output: model.outputs.filter((o) => o.type !== 'unknown').map(tensor),
    instance_group: [],
    ensemble_scheduling: {
      step: (spec?.steps ?? []).map((s) => ({
        model_name: s.model,
        model_version: -1,
        input_map: Object.fromEntries(
          Object.entries(s.inputs).map(([name, src]) => [
            name,
            src.kind === 'input' ? src.input : tensorName(src.step, src.output),
          ]),
        ),
        output_map: Object.fromEntries(
          [...(used.get(s.name) ?? [])].map((o) => [o, tensorName(s.name, o)]),
        ),
      })),
    },
  };
}

export function modelConfig(plan: Plan, model: ModelInfo): ModelConfig {
  if (model.platform === 'ensemble') return ensembleConfig(plan, model);
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
