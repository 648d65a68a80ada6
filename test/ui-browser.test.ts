/**
 * The page at `/` in a real browser: Debian's Chromium, headless, driven by puppeteer-core.
 * It loads the page against a served spec, sees every worker with its device, sends an
 * inference from a model's form and reads the answer; with server.auth on it asks for the token
 * first. The second test plans a spec on four recorded A100s (sessions on the CPU through the
 * fixture worker), sends traffic, and takes the README's screenshot (to docs/ui.png when
 * BENTO_UI_SCREENSHOT=docs/ui.png, to a temp file otherwise).
 *
 * Without Chromium (CHROMIUM, default /usr/bin/chromium) these tests are skipped on a
 * developer's machine, and fail in CI (CI set), where .ci/run installs it.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { createLogger } from '../src/log.js';
import { discoverDevices, planPlacement } from '../src/plan/index.js';
import { startRuntime } from '../src/runtime/pool.js';
import type { Runtime, RuntimeEvents } from '../src/runtime/types.js';
import { createAuthenticator } from '../src/server/auth.js';
import { type RunningServer, startServer } from '../src/server/http.js';
import { loadSpec } from '../src/spec/validate.js';
import { uiRoutes } from '../src/ui/routes.js';
import { fixtureRuntimeOptions } from './fixtures/worker-switches.js';
import { readNvidiaSmiFixture } from './helpers/fake-nvidia-smi.js';
import { post, ROOT } from './helpers/server.js';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const SKIP =
  !HAVE_CHROMIUM && !process.env.CI
    ? `no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM)`
    : false;

interface UiServer {
  readonly url: string;
  readonly runtime: Runtime;
  close(): Promise<void>;
}

async function startUi(
  specFile: string,
  opts: { gpus?: string; tokens?: string[] } = {},
): Promise<UiServer> {
  const { spec } = loadSpec(specFile);
  const devices = opts.gpus
    ? discoverDevices({ env: {}, nvidiaSmi: () => readNvidiaSmiFixture(opts.gpus!) }).devices
    : [];
  const runtime = await startRuntime(
    planPlacement(spec, devices, {}),
    opts.gpus ? fixtureRuntimeOptions() : {},
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
      routes: uiRoutes({ enabled: true }),
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

/** Script errors and CSP refusals on the page: none may happen. */
function watchProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${(e as Error).message}`));
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  return problems;
}

/** What the browser evaluates: typed by hand (the tests compile without the DOM's types). */
interface PageElement {
  readonly textContent: string;
  readonly hidden: boolean;
  value: string;
}

const textOf = (page: Page, selector: string) =>
  page.$eval(selector, (e) => (e as unknown as PageElement).textContent);

describe('the page in Chromium', { skip: SKIP }, () => {
  let browser: Browser;
  let profile: string;
  before(async () => {
    assert.ok(
      HAVE_CHROMIUM,
      `Chromium is missing at ${CHROMIUM}: CI needs it (.ci/run runs apt-get install -y chromium)`,
    );
    profile = mkdtempSync(join(tmpdir(), 'bento-run-chromium-'));
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true, // --headless=new
      userDataDir: profile,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
  });
  after(async () => {
    await browser?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  test('asks for the token, shows every worker on its device, runs the form’s request', async () => {
    const s = await startUi(join(ROOT, 'specs', 'quickstart.yaml'), { tokens: ['page-token'] });
    const page = await browser.newPage();
    const problems = watchProblems(page);
    try {
      await page.goto(`${s.url}/`);
      await page.waitForSelector('#auth:not([hidden])', { timeout: 10_000 });
      await page.type('#token', 'page-token');
      await page.click('#token-form button[type=submit]');

      for (const w of s.runtime.workers()) {
        const sel = `[data-worker="${w.service}/${w.worker}"]`;
        await page.waitForSelector(`${sel}[data-state="ready"]`, { timeout: 10_000 });
        const text = await textOf(page, sel);
        assert.match(text, new RegExp(`worker ${w.worker}`));
        const device = await textOf(
          page,
          `[data-session="${w.service}/${w.worker}/classifier"] .chip`,
        );
        assert.equal(device, 'cpu');
      }
      assert.equal(await page.$eval('#auth', (e) => (e as unknown as PageElement).hidden), true);

      const form = '[data-model="classifier"]';
      await page.waitForSelector(`${form} textarea`);
      const example = JSON.parse(
        await page.$eval(`${form} textarea`, (e) => (e as unknown as PageElement).value),
      );
      assert.deepEqual(example.inputs[0].shape, [1, 4], 'prefilled with the right shape');
      await page.$eval(`${form} textarea`, (e) => {
        (e as unknown as PageElement).value =
          '{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}';
      });
      await page.click(`${form} button[type=submit]`);
      await page.waitForFunction(
        `/probabilities/.test(document.querySelector('[data-answer="classifier"]')?.textContent ?? '')`,
        { timeout: 10_000 },
      );
      const answer = JSON.parse(await textOf(page, '[data-answer="classifier"]'));
      assert.equal(answer.model_name, 'classifier');
      assert.deepEqual(answer.outputs[0].shape, [1, 3]);
      assert.match(await textOf(page, `${form} .actions`), /200 OK/);
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
      await s.close();
    }
  });

  test('a GPU plan: devices, memory, a pipeline, live charts (the README’s screenshot)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bento-run-ui-'));
    const models = join(ROOT, 'specs', 'models');
    const specFile = join(dir, 'bentofile.yaml');
    writeFileSync(
      specFile,
      `version: 1
name: demo
models:
  classifier:
    path: ${join(models, 'classifier.onnx')}
    batching: { max_batch_size: 32, max_latency_ms: 5 }
  model1: { path: ${join(models, 'model1.onnx')} }
  model2: { path: ${join(models, 'model2.onnx')} }
services:
  classifier:
    models: [classifier]
    resources: { gpu: 2 }
    workers: 2
  multi_gpu:
    models: [model1, model2]
    resources: { gpu: 2 }
    workers:
      - gpus: [0, 1]
        placement: { model1: 0, model2: 1 }
pipelines:
  two_stage:
    inputs:
      features: { datatype: FP32, shape: [-1, 8] }
    steps:
      embed: { model: model1, inputs: { input: { input: features } } }
      classify: { model: classifier, inputs: { input: { step: embed, output: output } } }
    outputs:
      probabilities: { step: classify, output: probabilities }
`,
    );
    const s = await startUi(specFile, { gpus: '4x-a100-80gb' });
    const page = await browser.newPage();
    const problems = watchProblems(page);
    await page.setViewport({ width: 1360, height: 1720 });
    try {
      await page.goto(`${s.url}/`);
      const expected = [
        ['classifier/0', 'classifier', 'cuda:0 · GPU 0 NVIDIA A100-SXM4-80GB'],
        ['classifier/1', 'classifier', 'cuda:1 · GPU 1 NVIDIA A100-SXM4-80GB'],
        ['multi_gpu/0', 'model1', 'cuda:2 · GPU 2 NVIDIA A100-SXM4-80GB'],
        ['multi_gpu/0', 'model2', 'cuda:3 · GPU 3 NVIDIA A100-SXM4-80GB'],
      ];
      for (const [worker, model, device] of expected) {
        const sel = `[data-session="${worker}/${model}"]`;
        await page.waitForSelector(sel, { timeout: 10_000 });
        assert.match(await textOf(page, sel), new RegExp(device!), `${worker} ${model}`);
      }
      assert.equal((await page.$$('[data-gpu]')).length, 4, 'a memory estimate per GPU');
      await page.waitForSelector('[data-step="two_stage/embed"]');
      assert.match(
        await textOf(page, '[data-pipeline="two_stage"]'),
        /embed[\s\S]*model1[\s\S]*classify/,
      );

      // Traffic for the charts: bursts to the batched classifier, single requests to the others.
      const row = (n: number) => Array.from({ length: n }, (_, i) => (i % 7) / 3);
      const one = (model: string, width: number) =>
        post(`${s.url}/v2/models/${model}/infer`, {
          inputs: [{ name: 'input', shape: [1, width], datatype: 'FP32', data: row(width) }],
        });
      const until = performance.now() + 8000;
      for (let i = 0; performance.now() < until && i < 400; i++) {
        const burst = Array.from({ length: 2 + (i % 5) * 3 }, () => one('classifier', 4));
        const answers = await Promise.all([...burst, one('model1', 8), one('model2', 8)]);
        assert.ok(answers.every((a) => a.status === 200));
        await new Promise((r) => setTimeout(r, 40));
      }
      await page.waitForFunction(
        `document.querySelectorAll('[data-model-card="classifier"] svg.chart polyline').length >= 3`,
        { timeout: 10_000 },
      );
      // The prefilled example (zeros, dynamic dimensions 1) as it is.
      await page.click('[data-model="classifier"] button[type=submit]');
      await page.waitForFunction(
        `/probabilities/.test(document.querySelector('[data-answer="classifier"]')?.textContent ?? '')`,
        { timeout: 10_000 },
      );
      const shot = resolve(ROOT, process.env.BENTO_UI_SCREENSHOT ?? join(dir, 'ui.png'));
      await page.screenshot({ path: shot as `${string}.png` }); // the top: plan, pipeline, charts
      assert.ok(existsSync(shot));
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
      await s.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
