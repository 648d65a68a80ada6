/**
 * The wiring every command that plans repeats: a spec file -> `loadSpec` -> `discoverDevices` ->
 * `planPlacement`, with the CUDA_VISIBLE_DEVICES that discovery found handed to the plan.
 */
import type { Spec } from '../spec/types.js';
import { loadSpec, type ValidationResult } from '../spec/validate.js';
import { type DiscoverOptions, type Discovery, discoverDevices } from './discover.js';
import { type PlanOptions, planPlacement } from './plan.js';
import type { Plan } from './types.js';

/** `--cpu`, `--service`, `--strict`: what a command lets the user choose about the plan. */
export type PlanChoices = Omit<PlanOptions, 'cudaVisibleDevices'>;

/** Plans a valid spec on what discovery found (its visible GPUs and CUDA_VISIBLE_DEVICES). */
export function planOnDevices(spec: Spec, discovery: Discovery, choices: PlanChoices = {}): Plan {
  return planPlacement(spec, discovery.devices, {
    ...choices,
    cudaVisibleDevices: discovery.cudaVisibleDevices,
  });
}

export interface PlannedSpec extends ValidationResult {
  readonly discovery: Discovery;
  readonly plan: Plan;
}

/**
 * Loads and validates `file`, discovers this machine's GPUs (through `discover`: the
 * environment, or a recorded nvidia-smi in tests) and plans the spec on them. Throws the
 * SpecError or PlanError with every problem.
 */
export function planSpec(
  file: string,
  choices: PlanChoices = {},
  discover: DiscoverOptions = {},
): PlannedSpec {
  // As serve: with --service, the other services' model files need not be here.
  const { spec, warnings } = loadSpec(file, { services: choices.services ?? [] });
  const discovery = discoverDevices(discover);
  return { spec, warnings, discovery, plan: planOnDevices(spec, discovery, choices) };
}
