/** Device discovery, GPU allocation and placement: `discoverDevices` -> `planPlacement` -> a `Plan`. */
export {
  applyCudaVisibleDevices,
  type DiscoverOptions,
  type Discovery,
  describeDevice,
  discoverDevices,
  NVIDIA_SMI_ARGS,
  NVIDIA_SMI_TIMEOUT_MS,
  parseNvidiaSmiCsv,
  type VisibleDevices,
} from './discover.js';
export {
  formatPlanTable,
  type PlanJson,
  type PlanJsonDevice,
  type PlanJsonMemory,
  type PlanJsonPipeline,
  type PlanJsonPlacement,
  type PlanJsonService,
  type PlanJsonSession,
  planToJson,
} from './format.js';
export {
  findGpuType,
  type GpuType,
  gpuProductLabel,
  gpuTypeMatches,
  KNOWN_GPU_TYPES,
  normalizeGpuName,
} from './gpu-types.js';
export { planPipelines } from './pipelines.js';
export { CUDA_CONTEXT_MIB, MEMORY_FACTOR, type PlanOptions, planPlacement } from './plan.js';
export {
  type PlanChoices,
  type PlannedSpec,
  planOnDevices,
  planSpec,
} from './plan-spec.js';
export type * from './types.js';
