/**
 * The order of a pipeline's steps: which steps feed which. Pure functions over step names, used
 * by the validator (cycles) and by the runtime (what may run at the same time).
 */
import type { StepSource } from './types.js';

/** The least a step needs for ordering: its name and where its inputs come from. */
export interface OrderedStep {
  readonly name: string;
  readonly inputs: Readonly<Record<string, StepSource>>;
}

/** Step name -> the steps it takes outputs from, in first-use order; unknown steps left out. */
export function stepDependencies(
  steps: readonly { readonly name: string; readonly deps: readonly string[] }[],
): Map<string, string[]> {
  const known = new Set(steps.map((s) => s.name));
  return new Map(steps.map((s) => [s.name, [...new Set(s.deps.filter((d) => known.has(d)))]]));
}

function dependenciesOf(steps: readonly OrderedStep[]): Map<string, string[]> {
  return stepDependencies(
    steps.map((s) => ({
      name: s.name,
      deps: Object.values(s.inputs).flatMap((src) => (src.kind === 'step' ? [src.step] : [])),
    })),
  );
}

/**
 * Topological levels: level 0 takes only pipeline inputs, level n takes outputs of levels below
 * n, one of them n - 1. Steps in one level do not depend on each other and may run at the same
 * time; within a level, declaration order. Throws on a cycle (a validated pipeline has none).
 */
export function pipelineOrder(pipeline: { readonly steps: readonly OrderedStep[] }): string[][] {
  const deps = dependenciesOf(pipeline.steps);
  const done = new Set<string>();
  const levels: string[][] = [];
  let remaining = pipeline.steps.map((s) => s.name);
  while (remaining.length > 0) {
    // A step is ready once everything it takes from has run: each round is one level.
    const ready = remaining.filter((s) => (deps.get(s) ?? []).every((d) => done.has(d)));
    if (ready.length === 0) {
      throw new Error(`internal: pipeline steps ${remaining.join(', ')} form a cycle`);
    }
    for (const s of ready) done.add(s);
    levels.push(ready);
    remaining = remaining.filter((s) => !done.has(s));
  }
  return levels;
}

/**
 * The cycles among the steps, one per strongly connected component that has one, each as the
 * steps along the data flow from the component's first-declared step back to it:
 * `['a', 'b', 'a']` when `b` takes an output of `a` and `a` one of `b`.
 */
export function findCycles(deps: ReadonlyMap<string, readonly string[]>): string[][] {
  const order = [...deps.keys()];
  const consumers = new Map<string, string[]>(order.map((s) => [s, []]));
  for (const [s, ds] of deps) for (const d of ds) consumers.get(d)?.push(s);
  const cycles: string[][] = [];
  for (const component of components(order, deps)) {
    const start = component[0]!;
    const inside = new Set(component);
    const selfLoop = (deps.get(start) ?? []).includes(start);
    if (component.length === 1 && !selfLoop) continue;
    cycles.push(selfLoop ? [start, start] : shortestLoop(start, inside, consumers));
  }
  return cycles;
}

/** Tarjan's strongly connected components, each in declaration order, by first member. */
function components(order: readonly string[], deps: ReadonlyMap<string, readonly string[]>) {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of deps.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    found.push(component);
  };
  for (const v of order) if (!index.has(v)) visit(v);
  const position = new Map(order.map((s, i) => [s, i]));
  const byDeclaration = (a: string, b: string) => position.get(a)! - position.get(b)!;
  return found.map((c) => c.sort(byDeclaration)).sort((a, b) => byDeclaration(a[0]!, b[0]!));
}

/** The shortest path along the data flow from `start` back to it, inside one component. */
function shortestLoop(
  start: string,
  inside: ReadonlySet<string>,
  consumers: ReadonlyMap<string, readonly string[]>,
): string[] {
  const cameFrom = new Map<string, string>();
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    const v = queue[i]!;
    for (const w of consumers.get(v) ?? []) {
      if (!inside.has(w)) continue;
      if (w === start) {
        const path = [start];
        // Back from `v` to the step after `start`: path = [after start, ..., v, start].
        for (let x: string | undefined = v; x !== start && x !== undefined; x = cameFrom.get(x)) {
          path.unshift(x);
        }
        return [start, ...path];
      }
      if (!cameFrom.has(w)) {
        cameFrom.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}
