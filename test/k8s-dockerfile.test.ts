// `bento-run dockerfile`: no Docker engine here, so the content is what is tested, and a
// Dockerfile linter (dockerfile-utils, the VS Code Docker extension's) reads every line.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { validate } from 'dockerfile-utils';
import { type Bundle, bundleSpec } from '../src/k8s/bundle.js';
import { buildDockerfile, CUDA_IMAGE, NODE_IMAGE } from '../src/k8s/dockerfile.js';
import { buildManifests, type Deployment } from '../src/k8s/index.js';
import type { Spec } from '../src/spec/types.js';
import { loadSpec } from '../src/spec/validate.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SPECS = join(ROOT, 'specs');
const EXAMPLES = readdirSync(SPECS)
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => f.replace(/\.yaml$/, ''))
  .sort();

function example(name: string): { spec: Spec; bundle: Bundle; text: string } {
  const file = join(SPECS, `${name}.yaml`);
  const { spec } = loadSpec(file);
  const bundle = bundleSpec(spec, readFileSync(file, 'utf8'));
  return { spec, bundle, text: buildDockerfile(spec, bundle, { bentoRunVersion: '9.8.7' }) };
}

/** The instruction lines (no comments, blanks or heredoc bodies). */
function instructions(text: string): string[] {
  const out: string[] = [];
  let heredocEnd: string | null = null;
  for (const line of text.split('\n')) {
    if (heredocEnd !== null) {
      if (line === heredocEnd) heredocEnd = null;
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    out.push(line);
    const m = /<<"([A-Z_]+)"/.exec(line);
    if (m) heredocEnd = m[1]!;
  }
  return out;
}

function heredocBody(text: string): string {
  const m = /^COPY <<"([A-Z_]+)" \/etc\/bento\/bentofile\.yaml\n([\s\S]*?)\n\1$/m.exec(text);
  assert.ok(m, 'a COPY heredoc of the spec');
  return `${m[2]}\n`;
}

describe('buildDockerfile', () => {
  test('every example passes the Dockerfile linter', () => {
    for (const name of EXAMPLES) {
      const { text } = example(name);
      assert.deepEqual(
        validate(text).map((d) => `${d.range.start.line + 1}: ${d.message}`),
        [],
        name,
      );
      assert.equal(text.split('\n')[0], '# syntax=docker/dockerfile:1', 'heredocs need BuildKit');
    }
  });

  test('the linter reads the spec as a heredoc: without the COPY line it would be instructions', () => {
    const { text } = example('quickstart');
    const broken = text.replace(/^COPY <<.*$/m, '');
    assert.ok(validate(broken).length > 0);
  });

  test('CPU spec: the Node image, no CUDA, no CUDA provider download', () => {
    const { text } = example('quickstart');
    const lines = instructions(text);
    assert.deepEqual(
      lines.filter((l) => l.startsWith('FROM ')),
      [`FROM \${NODE_IMAGE}`],
    );
    assert.ok(lines.includes(`ARG NODE_IMAGE=${NODE_IMAGE}`));
    assert.ok(lines.includes('ENV ONNXRUNTIME_NODE_INSTALL=skip'));
    assert.ok(lines.includes('ARG BENTO_RUN_VERSION=9.8.7'));
    assert.ok(
      lines.includes(
        `RUN npm install --global --omit=dev "bento-run@\${BENTO_RUN_VERSION}" && npm cache clean --force`,
      ),
    );
    assert.doesNotMatch(text, /nvidia\/cuda|cuda12|CUDA_IMAGE|--gpus/);
  });

  test("GPU spec: bento-run built with the CUDA 12 provider, run on NVIDIA's CUDA 12 + cuDNN runtime", () => {
    for (const name of ['two-services', 'multi-gpu', 'workers', 'cpu-and-gpu']) {
      const { text } = example(name);
      const lines = instructions(text);
      assert.match(CUDA_IMAGE, /^nvidia\/cuda:12\.[0-9.]+-cudnn-runtime-ubuntu[0-9.]+$/);
      assert.ok(lines.includes(`ARG CUDA_IMAGE=${CUDA_IMAGE}`), name);
      assert.deepEqual(
        lines.filter((l) => l.startsWith('FROM ')),
        [`FROM \${NODE_IMAGE} AS bento-run`, `FROM \${CUDA_IMAGE}`],
        name,
      );
      assert.ok(lines.includes('ENV ONNXRUNTIME_NODE_INSTALL=cuda12'), name);
      assert.ok(lines.includes('COPY --from=bento-run /usr/local/bin/node /usr/local/bin/node'));
      assert.ok(
        lines.includes(
          'COPY --from=bento-run /usr/local/lib/node_modules/bento-run /usr/local/lib/node_modules/bento-run',
        ),
      );
      assert.ok(
        lines.includes(
          'RUN ln -s /usr/local/lib/node_modules/bento-run/bin/bento-run.js /usr/local/bin/bento-run',
        ),
      );
      assert.match(text, /docker run --rm --gpus all/);
    }
  });

  test('copies each model from the build context (the spec folder) to /bento', () => {
    const { text, bundle } = example('two-services');
    const copies = instructions(text).filter((l) => l.startsWith('COPY ["'));
    assert.deepEqual(copies, [
      'COPY ["models/embedder.onnx", "/bento/models/embedder.onnx"]',
      'COPY ["models/reranker.onnx", "/bento/models/reranker.onnx"]',
    ]);
    for (const f of bundle.files) assert.ok(existsSync(join(SPECS, f.source)), f.source);
  });

  test('copies the container copy of the spec to /etc/bento/bentofile.yaml, unexpanded', () => {
    for (const name of EXAMPLES) {
      const { text, bundle } = example(name);
      assert.equal(heredocBody(text), bundle.specText, name);
    }
  });

  test('runs what the Kubernetes pods run, as a non-root user, on the spec port', () => {
    const { spec, bundle, text } = example('workers');
    const lines = instructions(text);
    const pod = buildManifests(spec, bundle).find((o): o is Deployment => o.kind === 'Deployment')!
      .spec.template.spec.containers[0]!;
    const cmd = JSON.parse(lines.find((l) => l.startsWith('CMD '))!.slice(4)) as string[];
    const entrypoint = JSON.parse(lines.find((l) => l.startsWith('ENTRYPOINT '))!.slice(11));
    assert.deepEqual(entrypoint, pod.command);
    // The pod adds `--service NAME`; the image alone serves every service.
    const args = [...(pod.args ?? [])];
    args.splice(args.indexOf('--service'), 2);
    assert.deepEqual(cmd, args);
    assert.ok(lines.includes('USER 1000:1000'));
    assert.ok(lines.includes('EXPOSE 3000'));
    assert.ok(
      lines.some((l) =>
        /^HEALTHCHECK .*--start-period=10m CMD \["node", "-e", "fetch\('http:\/\/127\.0\.0\.1:3000\/livez'\)/.test(
          l,
        ),
      ),
    );
  });
});
