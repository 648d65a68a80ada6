// The spec keys that `bento-run k8s` reads: services.X.scaling, models.X.storage_uri and
// models.X.volume, and server.auth (which serve reads too). Resolution, and every message.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { SpecError } from '../src/errors.js';
import { formatDiagnostic } from '../src/spec/diagnostics.js';
import { parseSpec } from '../src/spec/parse.js';
import type { Spec } from '../src/spec/types.js';
import { validateSpec } from '../src/spec/validate.js';
import { ROOT } from './helpers/server.js';

const FILE = join(ROOT, 'test/fixtures/k8s-spec.yaml');

function spec(service: string, model = '', server = ''): string {
  return `version: 1
models:
  m: { path: models/m.onnx${model} }
services:
  api:
    models: [m]
${service}
${server}`;
}

function valid(text: string): Spec {
  return validateSpec(parseSpec(text, FILE), { checkFiles: false }).spec;
}

/** The messages, without the file's name. */
function errors(text: string): string[] {
  try {
    validateSpec(parseSpec(text, FILE), { checkFiles: false });
  } catch (e) {
    assert.ok(e instanceof SpecError);
    return e.diagnostics.map((d) => formatDiagnostic(d).replace(`${FILE}:`, ''));
  }
  assert.fail('the spec is valid');
}

describe('services.X.scaling', () => {
  test('resolved: min_replicas 1 by default, target_in_flight null for CPU', () => {
    assert.deepEqual(valid(spec('    scaling: { max_replicas: 4 }')).services[0]?.scaling, {
      minReplicas: 1,
      maxReplicas: 4,
      targetInFlight: null,
    });
    const full = '    scaling: { min_replicas: 2, max_replicas: 5, target_in_flight: 10 }';
    assert.deepEqual(valid(spec(full)).services[0]?.scaling, {
      minReplicas: 2,
      maxReplicas: 5,
      targetInFlight: 10,
    });
    assert.equal(valid(spec('')).services[0]?.scaling, null);
  });

  test('min above max, a target no pod reaches: where, why, the fix', () => {
    const text = spec(
      '    traffic: { max_concurrency: 32 }\n    scaling: { min_replicas: 5, max_replicas: 2, target_in_flight: 40 }',
    );
    assert.deepEqual(errors(text), [
      '8:30: error: services.api.scaling.min_replicas: service `api`: scaling.min_replicas (5) is above scaling.max_replicas (2); the autoscaler needs min_replicas <= max_replicas',
      '8:68: error: services.api.scaling.target_in_flight: service `api`: scaling.target_in_flight (40) is above traffic.max_concurrency (32), so a pod never holds that many requests and the autoscaler never adds pods; lower target_in_flight or raise max_concurrency',
    ]);
  });

  test('the schema: max_replicas required, at least 1 pod, unknown keys with the valid ones', () => {
    assert.deepEqual(errors(spec('    scaling: { min_replicas: 0 }')), [
      '7:5: error: services.api.scaling: missing required key `max_replicas`',
      '7:30: error: services.api.scaling.min_replicas: must be at least 1 (got 0)',
    ]);
    assert.deepEqual(errors(spec('    scaling: { max_replicas: 3, target: 2 }')), [
      '7:33: error: services.api.scaling.target: unknown key `target` (valid: min_replicas, max_replicas, target_in_flight)',
    ]);
  });
});

describe('models.X.storage_uri and models.X.volume', () => {
  test('resolved: the URI as written; the claim and its folder, without slashes at the ends', () => {
    const m = valid(spec('', ', storage_uri: "s3://bucket/m", volume: "models/v1/"')).models.m;
    assert.equal(m?.storageUri, 's3://bucket/m');
    assert.deepEqual(m?.volume, { claim: 'models', subPath: 'v1' });
    assert.deepEqual(valid(spec('', ', volume: models')).models.m?.volume, {
      claim: 'models',
      subPath: null,
    });
    const none = valid(spec('')).models.m;
    assert.deepEqual([none?.storageUri, none?.volume], [null, null]);
  });

  test('a URI without a scheme, a claim that is no name or climbs out: the rule', () => {
    assert.deepEqual(errors(spec('', ', storage_uri: bucket/m, volume: Models/../x')), [
      '3:42: error: models.m.storage_uri: must be a storage URI such as s3://bucket/folder, gs://bucket/folder or pvc://claim/folder (got the string "bucket/m")',
      "3:60: error: models.m.volume: must be a PersistentVolumeClaim name (lowercase letters, digits, '-' and '.'), optionally followed by /FOLDER inside it, without '.' or '..' parts (got the string \"Models/../x\")",
    ]);
  });
});

describe('server.auth', () => {
  test('resolved: the variable, or the file made absolute like every path', () => {
    const env = valid(spec('', '', 'server:\n  auth: { tokens_env: BENTO_TOKENS }'));
    assert.deepEqual(env.server.auth, { tokensEnv: 'BENTO_TOKENS' });
    const file = valid(spec('', '', 'server:\n  auth: { tokens_file: secrets/tokens.txt }'));
    assert.deepEqual(file.server.auth, {
      tokensFile: join(ROOT, 'test/fixtures/secrets/tokens.txt'),
    });
    assert.equal(valid(spec('')).server.auth, null);
  });

  test('one source exactly, a name a shell can set: every message says which', () => {
    const at = (auth: string) => errors(spec('', '', `server:\n  auth: ${auth}`));
    assert.deepEqual(at('{ tokens_env: T, tokens_file: t }'), [
      '9:9: error: server.auth: takes one source of tokens, tokens_env or tokens_file, not both (got a mapping)',
    ]);
    assert.deepEqual(at('{}'), [
      "9:9: error: server.auth: needs the tokens' source: tokens_env (an environment variable) or tokens_file (a file) (got an empty mapping)",
    ]);
    assert.deepEqual(at('{ token_env: T }'), [
      '9:11: error: server.auth.token_env: unknown key `token_env`; did you mean `tokens_env`?',
    ]);
    assert.deepEqual(at('TOKENS'), [
      '9:9: error: server.auth: must be { tokens_env: NAME } or { tokens_file: PATH } (got the string "TOKENS")',
    ]);
    assert.deepEqual(at('{ tokens_env: 1TOK }'), [
      '9:23: error: server.auth.tokens_env: must be an environment variable name: letters, digits and \'_\', not starting with a digit (got the string "1TOK")',
    ]);
  });
});
