/** bento-run as a library: the stages, each a plain function from data to data. */
export * from './errors.js';
export * from './plan/index.js';
export type { ModelInfo, Runtime, RuntimeOptions, WorkerStatus } from './runtime/pool.js';
export { startRuntime } from './runtime/pool.js';
export type { RunningServer, ServerOptions } from './server/http.js';
export { startServer } from './server/http.js';
export * from './spec/index.js';
