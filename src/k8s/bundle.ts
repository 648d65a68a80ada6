/**
 * The spec as a container sees it. Inside every bento-run container the spec is at
 * `/etc/bento/bentofile.yaml` (a ConfigMap in Kubernetes) and each model file is where the pods
 * hold it:
 * - in the spec's folder, at `/bento` (baked into the image by `bento-run dockerfile`, or mounted
 *   from a volume): `models/resnet.onnx` beside the spec is `/bento/models/resnet.onnx`;
 * - outside it (`../models/x.onnx`), in a PersistentVolumeClaim: `--models-volume` holds the
 *   folder of those models and is mounted at `/mnt/models`; `models.X.volume` holds that file
 *   under its name and is mounted at `/mnt/volumes/<claim>`;
 * - with KServe, where its storage initializer downloads the InferenceService's `storageUri`:
 *   `/mnt/models`.
 * The container's copy of the spec is the user's text with only those paths rewritten (and the
 * tokens file of `server.auth`, which a Secret provides): comments, order and style survive.
 */
import { createHash } from 'node:crypto';
import { basename, dirname, isAbsolute, posix, relative, sep } from 'node:path';
import { isScalar, parseDocument } from 'yaml';
import { K8sError, type K8sProblem } from '../errors.js';
import type { ModelSpec, Spec, VolumeSpec } from '../spec/types.js';

/** `bento-run k8s --target`: plain Kubernetes objects, or KServe's. */
export type K8sTarget = 'kubernetes' | 'kserve';

/** Where the spec's folder (and so its models) is inside a container. */
export const BUNDLE_ROOT = '/bento';
/** KServe downloads the storage URI here; the `--models-volume` claim is mounted here. */
export const MODELS_ROOT = '/mnt/models';
/** Each claim that `models.X.volume` names is mounted at `CLAIMS_ROOT/<claim>`. */
export const CLAIMS_ROOT = '/mnt/volumes';
/** The folder the spec is mounted in, and the spec's path inside a container. */
export const SPEC_DIR = '/etc/bento';
export const SPEC_FILE = 'bentofile.yaml';
export const SPEC_PATH = `${SPEC_DIR}/${SPEC_FILE}`;
/** The key of the auth Secret that holds the tokens, and where `tokens_file` is mounted. */
export const AUTH_SECRET_KEY = 'tokens';
export const AUTH_DIR = '/etc/bento-auth';
export const AUTH_FILE = `${AUTH_DIR}/${AUTH_SECRET_KEY}`;

/** A PersistentVolumeClaim, or a folder in it. */
export interface ClaimRef {
  readonly claim: string;
  readonly subPath?: string;
}

/** What a file's container path lies in. */
export type FileOrigin =
  /** The spec's folder at BUNDLE_ROOT: the image, `--models-pvc` or `--models-image`. */
  | { readonly kind: 'folder' }
  /** A claim the pods mount: `ModelsClaim.name` is the pod volume. */
  | { readonly kind: 'claim'; readonly volume: string }
  /** KServe's download of this storage URI. */
  | { readonly kind: 'storage'; readonly uri: string };

/** A PersistentVolumeClaim that every pod mounts read-only for the models in it. */
export interface ModelsClaim {
  /** The pod volume's name. */
  readonly name: string;
  readonly claim: string;
  /** The claim's folder that is mounted; null: its root. */
  readonly subPath: string | null;
  readonly mountPath: string;
}

export interface BundleFile {
  /** The models that load this file (several models may share one). */
  readonly models: readonly string[];
  /** Relative to the spec's folder, with '/' separators: what a Docker build context names. */
  readonly source: string;
  /** Absolute path inside the container. */
  readonly target: string;
  readonly origin: FileOrigin;
}

export interface Bundle {
  readonly target: K8sTarget;
  /** The spec file's base name, for comments. */
  readonly sourceName: string;
  /** The spec as containers read it: model paths where the pods hold the files. */
  readonly specText: string;
  /** sha256 of `specText`; a pod annotation, so that a changed spec rolls the pods. */
  readonly digest: string;
  /** Every model file once, in the spec's model order. */
  readonly files: readonly BundleFile[];
  /** The claims the pods mount for models outside the spec's folder (Kubernetes only). */
  readonly claims: readonly ModelsClaim[];
  /** The tokens file's path in the container (`server.auth.tokens_file`), or null. */
  readonly authFile: string | null;
}

export interface BundleOptions {
  /** @default 'kubernetes' */
  readonly target?: K8sTarget;
  /** `--models-volume`: the claim holding the folder of the models outside the spec's folder. */
  readonly modelsVolume?: ClaimRef;
  /** `--storage-uri` (KServe): a folder holding the models' folder, for models without their own. */
  readonly storageUri?: string;
}

/** Where one model's file is in the container. */
interface Placement {
  readonly target: string;
  readonly origin: FileOrigin;
}

interface Layout {
  readonly placements: ReadonlyMap<string, Placement>;
  readonly claims: readonly ModelsClaim[];
  readonly problems: readonly K8sProblem[];
}

const LANGUAGE_SERVER_MODELINE = /^#\s*yaml-language-server:.*\r?\n/;
const PLAIN_SAFE = /^[A-Za-z0-9_./][A-Za-z0-9_./-]*$/;

/**
 * Places every model file in the container for `options.target` and rewrites `specText` (the
 * text `spec` was loaded from) to point there. Throws K8sError, with every problem, when a model
 * has no place: outside the spec's folder without a volume, without a storage URI for KServe.
 */
export function bundleSpec(spec: Spec, specText: string, options: BundleOptions = {}): Bundle {
  const target = options.target ?? 'kubernetes';
  const layout =
    target === 'kserve' ? kserveLayout(spec, options) : kubernetesLayout(spec, options);
  const problems = [...layout.problems, ...collisions(spec, layout.placements, target)];
  if (problems.length > 0) throw new K8sError(problems);
  const files = new Map<string, { models: string[]; source: string; placement: Placement }>();
  for (const model of Object.values(spec.models)) {
    const placement = layout.placements.get(model.name)!;
    const source = relative(spec.dir, model.path).split(sep).join('/');
    const entry = files.get(placement.target) ?? { models: [], source, placement };
    entry.models.push(model.name);
    files.set(placement.target, entry);
  }
  const authFile = spec.server.auth !== null && 'tokensFile' in spec.server.auth ? AUTH_FILE : null;
  const sourceName = basename(spec.file);
  const containerText = rewritePaths(specText, layout.placements, authFile, sourceName);
  return {
    target,
    sourceName,
    specText: containerText,
    digest: createHash('sha256').update(containerText).digest('hex'),
    files: [...files.values()].map((f) => ({
      models: f.models,
      source: f.source,
      target: f.placement.target,
      origin: f.placement.origin,
    })),
    claims: layout.claims,
    authFile,
  };
}

/** Inside the spec's folder: the image or the models volume holds it at BUNDLE_ROOT. */
function relativeInside(spec: Spec, model: ModelSpec): string | null {
  const rel = relative(spec.dir, model.path);
  const outside = rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel);
  return outside ? null : rel.split(sep).join('/');
}

/** The deepest folder holding every one of `paths` (absolute files). */
function commonFolder(paths: readonly string[]): string {
  let folder = dirname(paths[0]!);
  for (const p of paths.slice(1)) {
    while (relative(folder, p).startsWith('..') || isAbsolute(relative(folder, p))) {
      folder = dirname(folder);
    }
  }
  return folder;
}

/** A folder for messages: relative to the spec's folder. */
function shown(spec: Spec, folder: string): string {
  return relative(spec.dir, folder).split(sep).join('/') || '.';
}

const underRoot = (root: string, from: string, path: string) =>
  posix.join(root, relative(from, path).split(sep).join('/'));

function kubernetesLayout(spec: Spec, options: BundleOptions): Layout {
  const problems: K8sProblem[] = [];
  const placements = new Map<string, Placement>();
  const byClaim = new Map<string, ModelsClaim>();
  const outside: ModelSpec[] = [];
  for (const model of Object.values(spec.models)) {
    if (model.volume !== null) {
      const claim = model.volume.claim;
      const mount = byClaim.get(claim) ?? {
        name: `model-claim-${byClaim.size}`,
        claim,
        subPath: null,
        mountPath: `${CLAIMS_ROOT}/${claim}`,
      };
      byClaim.set(claim, mount);
      const file = posix.join(mount.mountPath, model.volume.subPath ?? '', basename(model.path));
      placements.set(model.name, { target: file, origin: { kind: 'claim', volume: mount.name } });
      continue;
    }
    const rel = relativeInside(spec, model);
    if (rel === null) outside.push(model);
    else
      placements.set(model.name, { target: `${BUNDLE_ROOT}/${rel}`, origin: { kind: 'folder' } });
  }
  const claims = [...byClaim.values()];
  const volume = options.modelsVolume;
  if (outside.length > 0 && volume === undefined) {
    for (const model of outside) problems.push(outsideProblem(spec, model));
  } else if (outside.length > 0 && volume !== undefined) {
    const root = commonFolder(outside.map((m) => m.path));
    const mount: ModelsClaim = {
      name: 'models-volume',
      claim: volume.claim,
      subPath: volume.subPath ?? null,
      mountPath: MODELS_ROOT,
    };
    claims.unshift(mount);
    for (const model of outside) {
      const file = underRoot(MODELS_ROOT, root, model.path);
      placements.set(model.name, { target: file, origin: { kind: 'claim', volume: mount.name } });
    }
  } else if (volume !== undefined) {
    problems.push({
      code: 'BENTO_ERR_K8S_OPTION',
      message:
        "--models-volume: no model lies outside the spec's folder (or each has its models.X.volume), " +
        "so the claim would hold nothing; to mount the spec's folder from a claim, use --models-pvc",
    });
  }
  return { placements, claims, problems };
}

function outsideProblem(spec: Spec, model: ModelSpec): K8sProblem {
  return {
    code: 'BENTO_ERR_K8S_MODEL_OUTSIDE_FOLDER',
    message:
      `model \`${model.name}\`: ${model.declaredPath} is outside the spec's folder ${spec.dir}, ` +
      `which is all that the image and --models-pvc hold (at ${BUNDLE_ROOT}); for bento-run k8s, ` +
      'mount its folder from a PersistentVolumeClaim (--models-volume CLAIM, a claim holding ' +
      `${shown(spec, dirname(model.path))}, or models.${model.name}.volume: CLAIM, a claim holding ` +
      `${basename(model.path)}), or move the file under the spec's folder`,
  };
}

function pvcUri(volume: VolumeSpec): string {
  return `pvc://${volume.claim}${volume.subPath === null ? '' : `/${volume.subPath}`}`;
}

/**
 * KServe: every model from a storage URI that its storage initializer downloads to MODELS_ROOT.
 * A model's own URI (`storage_uri`, or `volume` as `pvc://`) holds its file under its name;
 * `--storage-uri` holds the folder of the other models, as it is.
 */
function kserveLayout(spec: Spec, options: BundleOptions): Layout {
  const problems: K8sProblem[] = [];
  const placements = new Map<string, Placement>();
  const pending: ModelSpec[] = [];
  for (const model of Object.values(spec.models)) {
    const uri = model.storageUri ?? (model.volume === null ? null : pvcUri(model.volume));
    if (uri === null) {
      pending.push(model);
      continue;
    }
    const file = `${MODELS_ROOT}/${basename(model.path)}`;
    placements.set(model.name, { target: file, origin: { kind: 'storage', uri } });
  }
  if (pending.length > 0 && options.storageUri === undefined) {
    const root = shown(spec, commonFolder(pending.map((m) => m.path)));
    const names = pending.map((m) => `\`${m.name}\``).join(', ');
    problems.push({
      code: 'BENTO_ERR_K8S_STORAGE',
      message:
        `${pending.length === 1 ? 'model' : 'models'} ${names}: no storage URI for KServe to ` +
        `download from; pass --storage-uri URI, a folder holding what ${root} holds (s3://, gs://, ` +
        'pvc://CLAIM/FOLDER, ...), or set models.NAME.storage_uri, a folder holding the file under its name',
    });
  } else if (pending.length > 0 && options.storageUri !== undefined) {
    const root = commonFolder(pending.map((m) => m.path));
    const origin: FileOrigin = { kind: 'storage', uri: options.storageUri };
    for (const model of pending) {
      placements.set(model.name, { target: underRoot(MODELS_ROOT, root, model.path), origin });
    }
  }
  if (problems.length === 0) problems.push(...oneUriPerService(spec, placements));
  return { placements, claims: [], problems };
}

/** An InferenceService downloads one storageUri: a service's models must share theirs. */
function oneUriPerService(spec: Spec, placements: ReadonlyMap<string, Placement>): K8sProblem[] {
  const problems: K8sProblem[] = [];
  for (const service of spec.services) {
    const byUri = new Map<string, string[]>();
    for (const model of service.models) {
      const origin = placements.get(model)?.origin;
      if (origin?.kind !== 'storage') continue;
      byUri.set(origin.uri, [...(byUri.get(origin.uri) ?? []), model]);
    }
    if (byUri.size <= 1) continue;
    const listed = [...byUri].map(([uri, models]) => `${uri} (${models.join(', ')})`).join(', ');
    problems.push({
      code: 'BENTO_ERR_K8S_STORAGE',
      message:
        `service \`${service.name}\`: its InferenceService downloads one storage URI, but its ` +
        `models come from ${listed}; put the files in one folder and give them the same storage_uri`,
    });
  }
  return problems;
}

/**
 * Two different files at one container path, in one pod: every pod in Kubernetes (each mounts
 * every volume), each service's pods with KServe (each downloads its own storage URI).
 */
function collisions(
  spec: Spec,
  placements: ReadonlyMap<string, Placement>,
  target: K8sTarget,
): K8sProblem[] {
  const pods =
    target === 'kserve' ? spec.services.map((s) => s.models) : [Object.keys(spec.models)];
  const problems: K8sProblem[] = [];
  const reported = new Set<string>();
  for (const models of pods) {
    const byTarget = new Map<string, ModelSpec>();
    for (const name of models) {
      const model = spec.models[name];
      const placement = placements.get(name);
      if (model === undefined || placement === undefined) continue;
      const other = byTarget.get(placement.target);
      if (other === undefined) byTarget.set(placement.target, model);
      else if (other.path !== model.path && !reported.has(placement.target)) {
        reported.add(placement.target);
        problems.push({
          code: 'BENTO_ERR_K8S_MODEL_PATH',
          message:
            `models \`${other.name}\` (${other.declaredPath}) and \`${model.name}\` ` +
            `(${model.declaredPath}) are different files that would both be ${placement.target} ` +
            'in the container; give them different file names or different volume folders',
        });
      }
    }
  }
  return problems;
}

/**
 * Replaces each model's `path` scalar, and `server.auth.tokens_file`, in place by their offsets;
 * everything else stays as written.
 */
function rewritePaths(
  text: string,
  placements: ReadonlyMap<string, Placement>,
  authFile: string | null,
  sourceName: string,
): string {
  const doc = parseDocument(text, { uniqueKeys: false });
  const edits: { start: number; end: number; value: string }[] = [];
  const replace = (path: readonly string[], value: string) => {
    const node = doc.getIn(path, true);
    if (!isScalar(node) || node.range === undefined || node.range === null) {
      throw new Error(`bundleSpec: ${path.join('.')} is not a scalar in the spec text`);
    }
    // A quoted scalar stays quoted (as the user wrote it); a plain one stays plain if it can.
    const written =
      node.type === 'QUOTE_SINGLE'
        ? `'${value.replaceAll("'", "''")}'`
        : node.type === 'QUOTE_DOUBLE' || !PLAIN_SAFE.test(value)
          ? JSON.stringify(value)
          : value;
    edits.push({ start: node.range[0], end: node.range[1], value: written });
  };
  for (const [model, p] of placements) replace(['models', model, 'path'], p.target);
  if (authFile !== null) replace(['server', 'auth', 'tokens_file'], authFile);
  let out = text;
  for (const e of edits.sort((a, b) => b.start - a.start)) {
    out = out.slice(0, e.start) + e.value + out.slice(e.end);
  }
  // The editor's schema modeline points at a file the container does not have.
  out = out.replace(LANGUAGE_SERVER_MODELINE, '');
  const where = [...new Set([...placements.values()].map(rootOf))].join('; and into ');
  const sentence = `${sourceName} as bento-run containers read it: model paths point into ${where}. Generated; edit the original.`;
  return `${commentLines(sentence).join('\n')}\n${out.endsWith('\n') ? out : `${out}\n`}`;
}

/** Where a placement's root is, in words. */
function rootOf(p: Placement): string {
  if (p.origin.kind === 'folder') {
    return `${BUNDLE_ROOT}, where the image or the models volume holds the spec's folder`;
  }
  if (p.origin.kind === 'storage') return `${MODELS_ROOT}, where KServe downloads the storage URI`;
  return p.target.startsWith(`${CLAIMS_ROOT}/`)
    ? `${CLAIMS_ROOT}/<claim>, where the claims of models.NAME.volume are mounted`
    : `${MODELS_ROOT}, where the --models-volume claim is mounted`;
}

/** `# `-comment lines of at most 96 characters. */
function commentLines(text: string): string[] {
  const lines: string[] = [];
  let line = '#';
  for (const word of text.split(' ')) {
    if (line.length + 1 + word.length > 96 && line !== '#') {
      lines.push(line);
      line = '#';
    }
    line += ` ${word}`;
  }
  return [...lines, line];
}
