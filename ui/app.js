// bento-run's page: polls ui/status.json, draws the plan, the models' charts and a form per
// model, and lists the routes of openapi.json. Plain DOM, no framework; every text from the
// server goes in as text (textContent), never as markup.

const TOKEN_KEY = 'bento-run:token';
const POLL_MS = 1000;
const SVG = 'http://www.w3.org/2000/svg';

const state = {
  token: sessionStorage.getItem(TOKEN_KEY) ?? '',
  since: 0,
  /** model -> chart points, oldest first */
  points: new Map(),
  /** model -> its card's parts */
  cards: new Map(),
  /** model -> example request body */
  examples: new Map(),
  openapi: null,
  timer: 0,
};

class NeedToken extends Error {}

const byId = (id) => document.getElementById(id);

/** An element with attributes (`class`, `text`, others as they are) and children. */
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = String(v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(typeof c === 'string' || typeof c === 'number' ? String(c) : c);
  }
  return e;
}

function svgEl(tag, attrs = {}) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

/** fetch with the token; a 401 shows the token form. */
async function api(path, init = {}) {
  const headers = new Headers(init.headers);
  if (state.token) headers.set('authorization', `Bearer ${state.token}`);
  const res = await fetch(path, { ...init, headers, cache: 'no-store' });
  if (res.status === 401) throw new NeedToken();
  return res;
}

// ---- the token ----------------------------------------------------------------------------

function askForToken(rejected) {
  clearTimeout(state.timer);
  byId('auth').hidden = false;
  byId('token-error').textContent = rejected ? 'that token was refused' : '';
  byId('ready').textContent = 'token needed';
  byId('ready').className = 'badge failed';
  byId('token').focus();
}

function setToken(token) {
  state.token = token;
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
  byId('token-state').hidden = !token;
}

// ---- formatting ---------------------------------------------------------------------------

const fmt = (n, digits = 1) =>
  n === null || n === undefined || Number.isNaN(n)
    ? '–'
    : n >= 100
      ? Math.round(n).toLocaleString('en')
      : n.toFixed(digits);

const shapeText = (shape) => `[${shape.join(', ')}]`;

function deviceText(s) {
  if (s.device === 'cpu') return 'cpu';
  const gpu = s.physicalGpu === null ? '' : ` · GPU ${s.physicalGpu}`;
  return `${s.device}${gpu}${s.gpuName ? ` ${s.gpuName}` : ''}`;
}

/** Each input (or output) on one line: long data stays readable. */
function bodyText(body) {
  const key = Array.isArray(body.inputs)
    ? 'inputs'
    : Array.isArray(body.outputs)
      ? 'outputs'
      : null;
  if (!key) return JSON.stringify(body, null, 2);
  const head = Object.entries(body)
    .filter(([k]) => k !== key)
    .map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)},\n`)
    .join('');
  const items = body[key].map((t) => `    ${JSON.stringify(t)}`).join(',\n');
  return `{\n${head}  ${JSON.stringify(key)}: [\n${items}\n  ]\n}`;
}

/** The smallest request of the right shape, from the feed's signature. */
function exampleFromSignature(inputs) {
  return {
    inputs: inputs.map((s) => {
      const shape = s.shape.map((d) => (d < 0 ? 1 : d));
      const n = shape.reduce((a, b) => a * b, 1);
      const v = s.datatype === 'BOOL' ? false : s.datatype === 'BYTES' ? 'a' : 0;
      return { name: s.name, shape, datatype: s.datatype, data: new Array(n).fill(v) };
    }),
  };
}

// ---- the plan -----------------------------------------------------------------------------

function stateBadge(s) {
  return el('span', { class: `badge ${s}`, text: s });
}

function renderMemory(feed) {
  const box = byId('memory');
  box.replaceChildren();
  if (feed.cpuOnly) {
    box.append(el('p', { class: 'muted', text: '--cpu: every worker runs on the CPU.' }));
  }
  for (const m of feed.memory) {
    const pct = m.totalMiB > 0 ? Math.min(100, (100 * m.estimatedMiB) / m.totalMiB) : 0;
    const bar = svgEl('svg', { viewBox: '0 0 100 6', preserveAspectRatio: 'none', class: 'bar' });
    bar.append(svgEl('rect', { x: 0, y: 0, width: 100, height: 6, class: 'bar-bg' }));
    bar.append(
      svgEl('rect', { x: 0, y: 0, width: pct, height: 6, class: m.fits ? 'bar-fg' : 'bar-over' }),
    );
    box.append(
      el(
        'div',
        { class: 'card gpu', 'data-gpu': m.device },
        el(
          'div',
          { class: 'card-title' },
          el('span', { class: 'chip cuda', text: m.device }),
          ` GPU ${m.physicalGpu} · ${m.gpuName}`,
        ),
        bar,
        el('div', {
          class: m.fits ? 'muted' : 'error',
          text: `≈ ${fmt(m.estimatedMiB, 0)} of ${fmt(m.totalMiB, 0)} MiB (estimate) · ${m.sessions} session${m.sessions === 1 ? '' : 's'}${m.fits ? '' : ' · does not fit'}`,
        }),
      ),
    );
  }
}

function renderWorker(w) {
  const sessions = el('ul', { class: 'sessions' });
  for (const s of w.sessions) {
    sessions.append(
      el(
        'li',
        { 'data-session': `${w.service}/${w.worker}/${s.model}` },
        el('span', { class: 'model-name', text: s.model }),
        el('span', { class: `chip ${s.device === 'cpu' ? 'cpu' : 'cuda'}`, text: deviceText(s) }),
        el('span', {
          class: s.loaded ? 'muted' : 'pending',
          text: s.loaded ? `loaded in ${fmt(s.loadMs, 0)} ms` : 'loading',
        }),
      ),
    );
  }
  return el(
    'div',
    {
      class: `card worker ${w.state}`,
      'data-worker': `${w.service}/${w.worker}`,
      'data-state': w.state,
    },
    el('div', { class: 'card-title' }, `worker ${w.worker} `, stateBadge(w.state)),
    el('div', {
      class: w.restarts > 0 ? 'warn' : 'muted',
      text: `restarts ${w.restarts} · in flight ${w.inFlight} · done ${w.completed.toLocaleString('en')}`,
    }),
    sessions,
  );
}

function renderServices(feed) {
  const box = byId('services');
  box.replaceChildren();
  for (const s of feed.services) {
    const where = s.gpus.length > 0 ? `visible GPUs ${s.gpus.join(', ')}` : 'CPU';
    box.append(
      el(
        'div',
        { class: 'service', 'data-service': s.name },
        el(
          'h3',
          {},
          `service ${s.name} `,
          el('span', {
            class: 'muted',
            text: `${s.workers.length} worker${s.workers.length === 1 ? '' : 's'} · ${where} · ≤ ${s.maxConcurrency} in flight · ${s.timeoutS} s timeout`,
          }),
        ),
        el('div', { class: 'cards' }, s.workers.map(renderWorker)),
      ),
    );
  }
}

function renderPipelines(feed) {
  const box = byId('pipelines');
  byId('pipelines-section').hidden = feed.pipelines.length === 0;
  box.replaceChildren();
  for (const p of feed.pipelines) {
    const steps = el('div', { class: 'steps' });
    p.steps.forEach((s, i) => {
      if (i > 0) steps.append(el('span', { class: 'arrow', text: '→' }));
      steps.append(
        el(
          'div',
          {
            class: `card step ${s.ready ? 'ready' : 'loading'}`,
            'data-step': `${p.name}/${s.step}`,
          },
          el('div', { class: 'card-title', text: s.step }),
          el(
            'div',
            {},
            el('span', { class: 'model-name', text: s.model }),
            el('span', {
              class: 'muted',
              text: ` · service ${s.service}`,
            }),
          ),
          el(
            'div',
            {},
            s.devices.map((d) =>
              el('span', { class: `chip ${d === 'cpu' ? 'cpu' : 'cuda'}`, text: d }),
            ),
          ),
        ),
      );
    });
    box.append(
      el(
        'div',
        { class: 'pipeline', 'data-pipeline': p.name },
        el('h3', {}, `${p.name} `, stateBadge(p.ready ? 'ready' : 'loading')),
        steps,
      ),
    );
  }
}

// ---- charts -------------------------------------------------------------------------------

const W = 240;
const H = 56;

/** A small line chart of `lines` ([{key, cls}]) over [t0, t1]; gaps where sampling paused. */
function chart(title, points, lines, unit, t0, t1, gapMs) {
  const values = points.flatMap((p) => lines.map((l) => p[l.key])).filter((v) => v !== null);
  const max = Math.max(1e-9, ...values) * 1.15;
  const x = (t) => (t1 > t0 ? ((t - t0) / (t1 - t0)) * W : W);
  const y = (v) => H - 2 - (v / max) * (H - 6);
  const svg = svgEl('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img' });
  svg.append(svgEl('line', { x1: 0, y1: H - 1.5, x2: W, y2: H - 1.5, class: 'axis' }));
  for (const l of lines) {
    let run = [];
    const flush = () => {
      if (run.length === 1) run.push([run[0][0] + 1, run[0][1]]);
      if (run.length > 1) {
        svg.append(
          svgEl('polyline', { points: run.map((p) => p.join(',')).join(' '), class: l.cls }),
        );
      }
      run = [];
    };
    let prev = null;
    for (const p of points) {
      const v = p[l.key];
      if (v === null || (prev && p.t - prev.t > gapMs)) flush();
      if (v !== null) run.push([x(p.t).toFixed(1), y(v).toFixed(1)]);
      prev = p;
    }
    flush();
  }
  const last = points[points.length - 1];
  const now = lines
    .map((l) => `${l.label ?? ''}${fmt(last ? last[l.key] : null, l.digits ?? 1)}`)
    .join(' / ');
  return el(
    'figure',
    { class: 'chart-box' },
    el(
      'figcaption',
      {},
      el('span', { text: title }),
      el('span', { class: 'value', text: `${now} ${unit}` }),
    ),
    svg,
    el('div', { class: 'chart-scale muted', text: `max ${fmt(max / 1.15, 2)}` }),
  );
}

function renderCharts(card, model, feed) {
  const points = state.points.get(model.name) ?? [];
  const t1 = feed.time;
  const t0 = Math.max(t1 - feed.windowMs, (points[0]?.t ?? t1) - feed.intervalMs);
  const gap = feed.intervalMs * 3.5;
  const span = Math.round((t1 - t0) / 1000);
  card.windowLabel.textContent =
    points.length > 0
      ? `last ${span >= 120 ? `${Math.round(span / 60)} min` : `${span} s`}`
      : 'no points yet';
  const batched = model.maxBatchSize > 0;
  card.charts.replaceChildren(
    chart('requests', points, [{ key: 'rate', cls: 'l1' }], '/s', t0, t1, gap),
    chart(
      'latency p50 / p99',
      points,
      [
        { key: 'p50', cls: 'l1', digits: 2 },
        { key: 'p99', cls: 'l2', digits: 2 },
      ],
      'ms',
      t0,
      t1,
      gap,
    ),
    batched
      ? chart(
          'batch size (mean / max ≤)',
          points,
          [
            { key: 'batch', cls: 'l1' },
            { key: 'batchMax', cls: 'l2', digits: 0 },
          ],
          'rows',
          t0,
          t1,
          gap,
        )
      : el(
          'figure',
          { class: 'chart-box' },
          el('figcaption', {}, el('span', { text: 'batch size' })),
          el('p', { class: 'muted', text: 'no batching: one request per run' }),
        ),
    chart('errors', points, [{ key: 'errors', cls: 'l3' }], '/s', t0, t1, gap),
  );
}

// ---- models and their forms ---------------------------------------------------------------

async function sendInference(model, card) {
  const started = performance.now();
  card.answer.textContent = 'sending…';
  card.answer.className = 'answer';
  let text;
  let res;
  try {
    res = await api(`v2/models/${encodeURIComponent(model)}/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: card.body.value,
    });
    text = await res.text();
  } catch (e) {
    if (e instanceof NeedToken) askForToken(state.token !== '');
    card.answer.textContent = e instanceof NeedToken ? 'this server needs a token' : String(e);
    card.answer.className = 'answer error';
    return;
  }
  const ms = performance.now() - started;
  let shown = text;
  try {
    shown = bodyText(JSON.parse(text));
  } catch {
    // NaN and Infinity come as bare tokens, which JSON.parse refuses: show the text as it came.
  }
  if (shown.length > 20000)
    shown = `${shown.slice(0, 20000)}\n… (${text.length.toLocaleString('en')} characters in all)`;
  card.status.textContent = `${res.status} ${res.statusText} · ${fmt(ms, 1)} ms`;
  card.status.className = res.ok ? 'ok' : 'error';
  card.answer.textContent = shown;
  card.answer.className = res.ok ? 'answer' : 'answer error';
}

function signatureText(list) {
  return list.map((s) => `${s.name} ${s.datatype} ${shapeText(s.shape)}`).join(', ');
}

function createCard(model) {
  const badge = el('span', { class: 'badge' });
  const charts = el('div', { class: 'charts' });
  const windowLabel = el('span', { class: 'muted' });
  const body = el('textarea', {
    name: 'body',
    rows: 6,
    spellcheck: 'false',
    'aria-label': `request body for ${model.name}`,
  });
  const status = el('span', { class: 'muted' });
  const answer = el('pre', { class: 'answer', 'data-answer': model.name });
  const reset = el('button', { type: 'button', class: 'link', text: 'reset to the example' });
  const form = el(
    'form',
    { class: 'try', 'data-model': model.name },
    el('label', {}, el('span', { text: `POST /v2/models/${model.name}/infer` }), body),
    el('div', { class: 'actions' }, el('button', { type: 'submit', text: 'Send' }), reset, status),
    answer,
  );
  const info = el('div', { class: 'muted' });
  const root = el(
    'article',
    { class: 'model', 'data-model-card': model.name, id: `model-${model.name}` },
    el(
      'h3',
      {},
      el('span', { class: 'model-name', text: model.name }),
      ' ',
      badge,
      ' ',
      windowLabel,
    ),
    info,
    charts,
    el('details', { open: true }, el('summary', { text: 'Try it' }), form),
  );
  const card = { root, badge, charts, windowLabel, body, status, answer, info, example: '' };
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void sendInference(model.name, card);
  });
  reset.addEventListener('click', () => {
    card.body.value = card.example;
  });
  return card;
}

function setExample(card, model) {
  const example = state.examples.get(model.name) ?? exampleFromSignature(model.inputs);
  const text = bodyText(example);
  // Keep what the user typed; refresh only an untouched example.
  if (card.body.value === '' || card.body.value === card.example) card.body.value = text;
  card.example = text;
}

function renderModels(feed) {
  const box = byId('models');
  for (const m of feed.models) {
    let card = state.cards.get(m.name);
    if (!card) {
      card = createCard(m);
      state.cards.set(m.name, card);
      box.append(card.root);
    }
    card.badge.textContent = m.ready ? 'ready' : 'unavailable';
    card.badge.className = `badge ${m.ready ? 'ready' : 'failed'}`;
    const batching =
      m.maxBatchSize > 0
        ? `batching ≤ ${m.maxBatchSize} rows, ≤ ${m.maxLatencyMs} ms`
        : 'no batching';
    const where =
      m.platform === 'ensemble'
        ? 'a pipeline: its steps run on their models’ workers'
        : `service ${m.service} · ${batching} · on ${m.workers.join(', ')}`;
    card.info.textContent = `${where} · version ${m.version} · in: ${signatureText(m.inputs)} · out: ${signatureText(m.outputs)}`;
    setExample(card, m);
    renderCharts(card, m, feed);
  }
  for (const [name, card] of state.cards) {
    if (!feed.models.some((m) => m.name === name)) {
      card.root.remove();
      state.cards.delete(name);
    }
  }
}

// ---- the API ------------------------------------------------------------------------------

/** `name` in a summary as code, the rest as text. */
function codeSpans(text) {
  return text.split('`').map((part, i) => (i % 2 === 1 ? el('code', { text: part }) : part));
}

function renderApi(doc) {
  const box = byId('api');
  box.replaceChildren();
  const rows = [];
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      rows.push({ path, method: method.toUpperCase(), op });
      const example = op.requestBody?.content?.['application/json']?.example;
      const m = /^\/v2\/models\/([^/]+)\/infer$/.exec(path);
      if (m && example) state.examples.set(decodeURIComponent(m[1]), example);
    }
  }
  const tags = [...new Set(rows.map((r) => r.op.tags?.[0] ?? ''))];
  for (const tag of tags) {
    const table = el('table', { class: 'routes' });
    for (const r of rows.filter((x) => (x.op.tags?.[0] ?? '') === tag)) {
      const open = Array.isArray(r.op.security) && r.op.security.length === 0;
      table.append(
        el(
          'tr',
          {},
          el('td', {}, el('span', { class: `method ${r.method.toLowerCase()}`, text: r.method })),
          el('td', {}, el('code', { text: r.path })),
          el('td', {}, codeSpans(r.op.summary ?? '')),
          el('td', { class: 'muted', text: open ? 'no token' : '' }),
        ),
      );
    }
    box.append(el('h3', { text: tag }), table);
  }
}

async function loadOpenApi() {
  const res = await api('openapi.json');
  if (!res.ok) throw new Error(`openapi.json answered ${res.status}`);
  state.openapi = await res.json();
  renderApi(state.openapi);
}

function downloadOpenApi() {
  if (!state.openapi) return;
  const blob = new Blob([JSON.stringify(state.openapi, null, 2)], { type: 'application/json' });
  const a = el('a', { href: URL.createObjectURL(blob), download: 'openapi.json' });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

// ---- the feed -----------------------------------------------------------------------------

function mergePoints(feed) {
  if (feed.time < state.since) state.points.clear(); // a new server: start over
  for (const [model, points] of Object.entries(feed.series)) {
    const kept = (state.points.get(model) ?? []).concat(points);
    const from = feed.time - feed.windowMs;
    state.points.set(
      model,
      kept.filter((p) => p.t >= from),
    );
  }
  state.since = feed.time;
}

function render(feed) {
  document.title = `bento-run: ${feed.name}`;
  byId('name').textContent = feed.name;
  byId('version').textContent = `v${feed.version}`;
  const restarts = feed.services.flatMap((s) => s.workers).reduce((n, w) => n + w.restarts, 0);
  const ready = byId('ready');
  ready.textContent = feed.ready ? 'ready' : 'not ready';
  ready.className = `badge ${feed.ready ? 'ready' : 'loading'}`;
  byId('connection').textContent =
    `live · ${new Date(feed.time).toLocaleTimeString('en-GB')}${restarts > 0 ? ` · ${restarts} restart${restarts === 1 ? '' : 's'}` : ''}`;
  mergePoints(feed);
  renderMemory(feed);
  renderServices(feed);
  renderPipelines(feed);
  renderModels(feed);
}

async function poll() {
  clearTimeout(state.timer);
  try {
    const res = await api(`ui/status.json?since=${state.since}`);
    if (!res.ok) throw new Error(`ui/status.json answered ${res.status}`);
    render(await res.json());
  } catch (e) {
    if (e instanceof NeedToken) {
      askForToken(state.token !== '');
      return;
    }
    byId('connection').textContent = `cannot reach the server (${e.message}); retrying`;
    byId('ready').className = 'badge failed';
  }
  state.timer = setTimeout(poll, POLL_MS);
}

async function start() {
  byId('auth').hidden = true;
  byId('token-state').hidden = !state.token;
  try {
    await loadOpenApi();
  } catch (e) {
    if (e instanceof NeedToken) {
      askForToken(state.token !== '');
      return;
    }
    byId('api').textContent = `openapi.json could not be read: ${e.message}`;
  }
  await poll();
}

byId('token-form').addEventListener('submit', (e) => {
  e.preventDefault();
  setToken(byId('token').value.trim());
  byId('token').value = '';
  void start();
});
byId('forget-token').addEventListener('click', () => {
  setToken('');
  void start();
});
byId('openapi-download').addEventListener('click', downloadOpenApi);
void start();
