/** What every cross-reference check of a spec reads (checks.ts, pipelines.ts). */
import type { Locator } from './locator.js';
import type { OnnxReadResult } from './onnx-info.js';

export interface CheckContext {
  readonly value: Record<string, unknown>;
  readonly at: Locator;
  /** Model name -> what reading its file gave (absent when files are not checked). */
  readonly onnx: ReadonlyMap<string, OnnxReadResult>;
  /** Absolute folder of the spec file, for "did you mean" on a missing model file. */
  readonly dir: string;
}
