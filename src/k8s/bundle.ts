/**
 * The spec as a container sees it. Inside every bento-run container the spec's folder is at
 * `/bento` (baked into the image by `bento-run dockerfile`, or mounted from a volume), so a model
 * at `models/resnet.onnx` beside the spec is `/bento/models/resnet.onnx` there; the spec itself
 * is at `/etc/bento/bentofile.yaml` (a ConfigMap in Kubernetes). The container's copy of the spec
 * is the user's text with only the model paths rewritten: comments, order and style survive.
 */
import { createHash } from 'node:crypto';
import { basename, isAbsolute, relative, sep } from 'node:path';
import { isScalar, parseDocument } from 'yaml';
import { K8sError, type K8sProblem } from '../errors.js';
import type { Spec } from '../spec/types.js';

/** Where the spec's folder (and so its models) is inside a container. */
export const BUNDLE_ROOT = '/bento';
/** The folder the spec is mounted in, and the spec's path inside a container. */
export const SPEC_DIR = '/etc/bento';
export const SPEC_FILE = 'bentofile.yaml';
export const SPEC_PATH = `${SPEC_DIR}/${SPEC_FILE}`;

export interface BundleFile {
  /** The models that load this file (several models may share one). */
  readonly models: readonly string[];
  /** Relative to the spec's folder, with '/' separators: what a Docker build context names. */
  readonly source: string;
  /** Absolute path inside the container. */
  readonly target: string;
}

export interface Bundle {
  /** The spec file's base name, for comments. */
  readonly sourceName: string;
  /** The spec as containers read it: model paths under BUNDLE_ROOT. */
  readonly specText: string;
  /** sha256 of `specText`; a pod annotation, so that a changed spec rolls the pods. */
  readonly digest: string;
  /** Every model file once, in the spec's model order. */
  readonly files: readonly BundleFile[];
}

const LANGUAGE_SERVER_MODELINE = /^#\s*yaml-language-server:.*\r?\n/;
const PLAIN_SAFE = /^[A-Za-z0-9_./][A-Za-z0-9_./-]*$/;

/**
 * Maps every model file into BUNDLE_ROOT and rewrites `specText` (the text `spec` was loaded
 * from) to point there. Throws K8sError when a model lies outside the spec's folder, which
 * neither a Docker build context nor the volume layout can hold.
 */
export function bundleSpec(spec: Spec, specText: string): Bundle {
  const problems: K8sProblem[] = [];
  const files = new Map<string, { models: string[]; source: string; target: string }>();
  for (const model of Object.values(spec.models)) {
    const rel = relative(spec.dir, model.path);
    if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) {
      problems.push({
        code: 'BENTO_ERR_K8S_MODEL_OUTSIDE_FOLDER',
        message:
          `model \`${model.name}\`: ${model.declaredPath} is outside the spec's folder ${spec.dir}; ` +
          `containers get that folder at ${BUNDLE_ROOT} (the image and the models volume hold it), ` +
          'so move the model file under it',
      });
      continue;
    }
    const source = rel.split(sep).join('/');
    const entry = files.get(source) ?? { models: [], source, target: `${BUNDLE_ROOT}/${source}` };
    entry.models.push(model.name);
    files.set(source, entry);
  }
  if (problems.length > 0) throw new K8sError(problems);
  const targets = new Map<string, string>();
  for (const f of files.values()) for (const m of f.models) targets.set(m, f.target);
  const sourceName = basename(spec.file);
  const containerText = rewriteModelPaths(specText, targets, sourceName);
  return {
    sourceName,
    specText: containerText,
    digest: createHash('sha256').update(containerText).digest('hex'),
    files: [...files.values()],
  };
}

/** Replaces each model's `path` scalar in place, by its offsets; everything else stays as written. */
function rewriteModelPaths(
  text: string,
  targets: ReadonlyMap<string, string>,
  sourceName: string,
): string {
  const doc = parseDocument(text, { uniqueKeys: false });
  const edits: { start: number; end: number; value: string }[] = [];
  for (const [model, target] of targets) {
    const node = doc.getIn(['models', model, 'path'], true);
    if (!isScalar(node) || node.range === undefined || node.range === null) {
      throw new Error(`bundleSpec: models.${model}.path is not a scalar in the spec text`);
    }
    const value = PLAIN_SAFE.test(target) ? target : JSON.stringify(target);
    edits.push({ start: node.range[0], end: node.range[1], value });
  }
  let out = text;
  for (const e of edits.sort((a, b) => b.start - a.start)) {
    out = out.slice(0, e.start) + e.value + out.slice(e.end);
  }
  // The editor's schema modeline points at a file the container does not have.
  out = out.replace(LANGUAGE_SERVER_MODELINE, '');
  const header = [
    `# ${sourceName} as bento-run containers read it: model paths point into ${BUNDLE_ROOT},`,
    "# where the image or the models volume holds the spec's folder. Generated; edit the original.",
  ];
  return `${header.join('\n')}\n${out.endsWith('\n') ? out : `${out}\n`}`;
}
