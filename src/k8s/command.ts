/**
 * `bento-run k8s` and `bento-run dockerfile`: flags -> options, then spec -> bundle -> objects or
 * Dockerfile -> stdout or files. cli.ts registers these next to its own commands.
 */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CliIO, CommandDefinition } from '../commands/types.js';
import { EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, K8sError, UsageError } from '../errors.js';
import { formatDiagnostic } from '../spec/diagnostics.js';
import { loadSpec } from '../spec/validate.js';
import { bundleSpec } from './bundle.js';
import { buildDockerfile } from './dockerfile.js';
import {
  buildManifests,
  type ManifestOptions,
  type ModelsSource,
  resolveManifestOptions,
} from './manifests.js';
import { generatedHeader, manifestsToYaml, writeManifests } from './render.js';

/** The flags these commands take, as node:util parseArgs gives them. */
export interface K8sCliOptions {
  output?: string;
  service?: string[];
  replicas?: string[];
  namespace?: string;
  image?: string;
  'node-selector'?: string[];
  'models-pvc'?: string;
  'models-image'?: string;
  target?: string;
  'models-volume'?: string;
  'storage-uri'?: string;
  'auth-secret'?: string;
}

const K8S_USAGE = `bento-run k8s SPEC.yaml [--target kubernetes|kserve] [-o DIR] [--image REF]
              [--namespace NS] [--node-selector [SERVICE:]KEY=VALUE]... [--service NAME]...
              [--auth-secret NAME]
  kubernetes: [--replicas N|SERVICE=N]... [--models-pvc CLAIM[/DIR] | --models-image REF]
              [--models-volume CLAIM[/DIR]]
  kserve:     [--storage-uri URI]

Writes the objects that run the spec, for kubectl apply -f: a ConfigMap holding the spec
(mounted at /etc/bento/bentofile.yaml), then
- --target kubernetes (default): per service a Deployment whose pods run
  \`bento-run serve /etc/bento/bentofile.yaml --service NAME\` on the GPUs Kubernetes gives
  them (numbered from 0 in each pod, as the spec's GPU indices are) and a ClusterIP Service;
  with services.NAME.scaling also a HorizontalPodAutoscaler (on requests in flight per pod,
  through the Prometheus adapter, or on CPU) and a PodDisruptionBudget (one pod at a time).
  Containers see the spec's folder, and so its models, at /bento; models outside it come from
  a PersistentVolumeClaim (--models-volume, or models.NAME.volume).
- --target kserve: a ServingRuntime (format onnx, protocols v2 and grpc-v2; REST on 8080,
  gRPC on 8081) and per service an InferenceService, whose models KServe downloads from the
  storage URI to /mnt/models; scaling sets its minReplicas and maxReplicas.
With server.auth, the pods read the tokens from the Secret --auth-secret (key \`tokens\`).
  -o, --output     write one file per object into DIR (default: one YAML stream on stdout)
  --target         kubernetes (default) or kserve
  --image          the image with bento-run and, unless a flag below says otherwise, the
                   models: what \`bento-run dockerfile\` builds (default: <spec name>:latest)
  --namespace      the objects' namespace (default: kubectl's current one)
  --node-selector  KEY=VALUE replaces the nvidia.com/gpu.product selector that gpu_type gives
                   every GPU service; SERVICE:KEY=VALUE sets one service's (repeatable)
  --service        only this service (repeatable)
  --auth-secret    the Secret with the tokens of server.auth (default: <spec name>-auth);
                   create it with kubectl create secret generic NAME --from-literal=tokens=...
  --replicas       pods per service without scaling: N for every service, SERVICE=N for one
                   (default 1)
  --models-pvc     mount the models read-only from this PersistentVolumeClaim (or a folder
                   in it) at /bento; it holds the model files at their paths in the spec's folder
  --models-image   copy /bento from this image into the pod at start (needs cp in the image)
  --models-volume  mount this PersistentVolumeClaim (or a folder in it) read-only at
                   /mnt/models for the models outside the spec's folder: it holds their folder
                   (for ../models/x.onnx, what ../models holds)
  --storage-uri    where KServe downloads the models that have no models.NAME.storage_uri:
                   s3://, gs://, pvc://CLAIM/DIR, https://...; it holds what the models' folder
                   holds (for models/x.onnx, what models/ holds)
Exit 0 when written, 2 when the spec or a flag is invalid.`;

const DOCKERFILE_USAGE = `bento-run dockerfile SPEC.yaml [-o FILE|DIR]

Writes the Dockerfile of an image that serves the spec: bento-run from the npm registry, the
models under /bento, the spec at /etc/bento/bentofile.yaml, running
\`bento-run serve /etc/bento/bentofile.yaml --host 0.0.0.0\`. A spec with GPUs builds on
NVIDIA's CUDA 12 + cuDNN runtime with onnxruntime-node's CUDA provider; a CPU spec on Node's
image. Build it with the spec's folder as the context:
  docker build -t NAME -f Dockerfile <the spec's folder>
  -o, --output  write it to FILE, or to DIR/Dockerfile (default: stdout)
Exit 0 when written, 2 when the spec is invalid.`;

export const k8sCommand: CommandDefinition<K8sCliOptions> = {
  summary: 'write Kubernetes manifests that scale the spec out',
  usage: K8S_USAGE,
  options: [
    'output',
    'service',
    'replicas',
    'namespace',
    'image',
    'node-selector',
    'models-pvc',
    'models-image',
    'target',
    'models-volume',
    'storage-uri',
    'auth-secret',
  ],
  run: runK8s,
};

export const dockerfileCommand: CommandDefinition<K8sCliOptions> = {
  summary: 'write a Dockerfile for an image that serves the spec',
  usage: DOCKERFILE_USAGE,
  options: ['output'],
  run: runDockerfile,
};

function oneSpec(files: readonly string[], command: string, usage: string): string {
  if (files.length !== 1) {
    const got =
      files.length === 0 ? 'needs a spec file' : `takes one spec file (got ${files.length})`;
    throw new UsageError(`\`${command}\` ${got}\n\nUsage: ${usage}\n`);
  }
  return files[0]!;
}

function runK8s(files: string[], opts: K8sCliOptions, io: CliIO): number {
  const file = oneSpec(files, 'k8s', K8S_USAGE);
  const options = manifestOptions(opts);
  const loaded = loadSpec(file, { checkFiles: false });
  // Models baked into the image must be here; those in volumes or storage may be only there.
  const inImage =
    (options.target ?? 'kubernetes') === 'kubernetes' &&
    (options.models ?? { kind: 'image' }).kind === 'image' &&
    options.modelsVolume === undefined &&
    Object.values(loaded.spec.models).every((m) => m.volume === null);
  const { spec, warnings } = inImage ? loadSpec(file) : loaded;
  for (const w of warnings) io.stderr(`${formatDiagnostic(w)}\n`);
  resolveManifestOptions(spec, options);
  const bundle = bundleSpec(spec, readFileSync(file, 'utf8'), options);
  const objects = buildManifests(spec, bundle, options);
  const header = generatedHeader(bundle.sourceName);
  if (opts.image === undefined) {
    io.stderr(
      `bento-run: note: no --image: the pods run ${spec.name}:latest; build it with \`bento-run dockerfile\`, ` +
        'push it where the cluster can pull from, and pass its name with --image\n',
    );
  }
  const auth = spec.server.auth;
  if (auth !== null) {
    const secret = options.authSecret ?? `${spec.name}-auth`;
    const from =
      'tokensEnv' in auth
        ? '--from-literal=tokens=TOKEN1,TOKEN2'
        : '--from-file=tokens=TOKENS_FILE';
    io.stderr(
      `bento-run: note: the pods read server.auth's tokens from the Secret ${secret} (key tokens); ` +
        `create it first: kubectl create secret generic ${secret} ${from}` +
        `${options.namespace === undefined ? '' : ` -n ${options.namespace}`}\n`,
    );
  }
  if (opts.output === undefined) {
    io.stdout(manifestsToYaml(objects, header));
    return EXIT_OK;
  }
  const { written, stale } = writeManifests(opts.output, objects, header);
  for (const f of written) io.stdout(`wrote ${f}\n`);
  for (const f of stale) {
    io.stderr(`bento-run: note: ${f} is from an earlier run and was not written now; left alone\n`);
  }
  io.stderr(`apply with: kubectl apply -f ${opts.output}\n`);
  return EXIT_OK;
}

function runDockerfile(files: string[], opts: K8sCliOptions, io: CliIO): number {
  const file = oneSpec(files, 'dockerfile', DOCKERFILE_USAGE);
  const loaded = loadSpec(file, { checkFiles: false });
  // The image holds the models of the spec's folder; those of models.X.volume stay in the claims.
  const inVolumes = Object.values(loaded.spec.models).some((m) => m.volume !== null);
  const { spec, warnings } = inVolumes ? loaded : loadSpec(file);
  for (const w of warnings) io.stderr(`${formatDiagnostic(w)}\n`);
  const bundle = bundleSpec(spec, readFileSync(file, 'utf8'));
  const text = buildDockerfile(spec, bundle, { bentoRunVersion: packageVersion() });
  if (opts.output === undefined) {
    io.stdout(text);
    return EXIT_OK;
  }
  const target =
    existsSync(opts.output) && statSync(opts.output).isDirectory()
      ? join(opts.output, 'Dockerfile')
      : opts.output;
  try {
    writeFileSync(target, text);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new K8sError(
      [{ code: 'BENTO_ERR_K8S_OUTPUT', message: `cannot write ${target}: ${err.message}` }],
      { exitCode: err.code === 'ENOENT' || err.code === 'ENOTDIR' ? EXIT_USAGE : EXIT_RUNTIME },
    );
  }
  io.stdout(`wrote ${target}\n`);
  return EXIT_OK;
}

/** The flags as `ManifestOptions`; a value of the wrong form is a usage error. */
export function manifestOptions(opts: K8sCliOptions): ManifestOptions {
  const out: {
    -readonly [K in keyof ManifestOptions]: ManifestOptions[K];
  } = {};
  if (opts.image !== undefined) out.image = opts.image;
  if (opts.namespace !== undefined) out.namespace = opts.namespace;
  if (opts.service !== undefined) out.services = opts.service;
  const serviceReplicas: Record<string, number> = {};
  for (const value of opts.replicas ?? []) {
    const m = /^(?:([^=]+)=)?([0-9]+)$/.exec(value);
    if (m === null) {
      throw new UsageError(`--replicas takes N or SERVICE=N, N a whole number (got ${value})`);
    }
    if (m[1] === undefined) out.replicas = Number(m[2]);
    else serviceReplicas[m[1]] = Number(m[2]);
  }
  if (Object.keys(serviceReplicas).length > 0) out.serviceReplicas = serviceReplicas;
  const nodeSelector: Record<string, string> = {};
  const serviceNodeSelectors: Record<string, Record<string, string>> = {};
  for (const value of opts['node-selector'] ?? []) {
    const eq = value.indexOf('=');
    if (eq <= 0) {
      throw new UsageError(`--node-selector takes KEY=VALUE or SERVICE:KEY=VALUE (got ${value})`);
    }
    const left = value.slice(0, eq);
    const colon = left.indexOf(':');
    const key = colon < 0 ? left : left.slice(colon + 1);
    let selector = nodeSelector;
    if (colon >= 0) {
      const service = left.slice(0, colon);
      selector = serviceNodeSelectors[service] ?? {};
      serviceNodeSelectors[service] = selector;
    }
    selector[key] = value.slice(eq + 1);
  }
  if (Object.keys(nodeSelector).length > 0) out.nodeSelector = nodeSelector;
  if (Object.keys(serviceNodeSelectors).length > 0) out.serviceNodeSelectors = serviceNodeSelectors;
  out.models = modelsSource(opts);
  const target = opts.target;
  if (target !== undefined) {
    if (target !== 'kubernetes' && target !== 'kserve') {
      throw new UsageError(`--target takes kubernetes or kserve (got ${target})`);
    }
    out.target = target;
  }
  if (opts['models-volume'] !== undefined) out.modelsVolume = claimRef(opts['models-volume']);
  if (opts['storage-uri'] !== undefined) out.storageUri = opts['storage-uri'];
  if (opts['auth-secret'] !== undefined) out.authSecret = opts['auth-secret'];
  return out;
}

/** `CLAIM` or `CLAIM/DIR[/]`. */
function claimRef(value: string): { claim: string; subPath?: string } {
  const slash = value.indexOf('/');
  if (slash < 0) return { claim: value };
  const subPath = value.slice(slash + 1).replace(/\/+$/, '');
  return subPath === ''
    ? { claim: value.slice(0, slash) }
    : { claim: value.slice(0, slash), subPath };
}

function modelsSource(opts: K8sCliOptions): ModelsSource {
  const pvc = opts['models-pvc'];
  const image = opts['models-image'];
  if (pvc !== undefined && image !== undefined) {
    throw new UsageError('--models-pvc and --models-image are two places for the models: give one');
  }
  if (image !== undefined) return { kind: 'models-image', image };
  if (pvc === undefined) return { kind: 'image' };
  return { kind: 'pvc', ...claimRef(pvc) };
}

function packageVersion(): string {
  const file = fileURLToPath(new URL('../../../package.json', import.meta.url));
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}
