/**
 * Where each pipeline step runs: the devices of the sessions of its model. A step runs as a
 * request of its model would, so it may go to any worker of the model's service.
 */
import { pipelineOrder } from '../spec/pipeline-graph.js';
import type { Spec } from '../spec/types.js';
import type { DeviceName, Placement, PlannedPipeline } from './types.js';

/** Every pipeline, its steps in the order they run (`pipelineOrder`, level by level). */
export function planPipelines(spec: Spec, placements: readonly Placement[]): PlannedPipeline[] {
  return Object.values(spec.pipelines).map((p) => ({
    name: p.name,
    steps: pipelineOrder(p)
      .flat()
      .map((name) => {
        const step = p.steps.find((s) => s.name === name)!;
        const devices = new Set<DeviceName>();
        for (const x of placements) if (x.model === step.model) devices.add(x.device);
        return { step: name, model: step.model, service: step.service, devices: [...devices] };
      }),
  }));
}
