/** Scaling out: a spec -> Kubernetes objects and a Dockerfile, as data, YAML and files. */
export * from './bundle.js';
export * from './dockerfile.js';
export * from './kserve.js';
export * from './kubernetes.js';
export * from './manifests.js';
export * from './names.js';
export * from './render.js';
export type * from './types.js';
