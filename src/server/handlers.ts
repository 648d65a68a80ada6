/**
 * The REST routes of the Open Inference Protocol, Triton's extensions, BentoML-style health
 * routes, Prometheus metrics and the worker listing. Each handler decodes, asks the inference
 * core, and encodes; none holds state of its own.
 */

import { modelConfig } from '../core/triton.js';
import { HttpError, InferenceError } from '../errors.js';
import type { ModelInfo } from '../runtime/types.js';
import { HEADER_LENGTH } from '../tensor/binary.js';
import { readBody } from './body.js';
import type { Decoder } from './decoder-pool.js';
import { send, sendError, sendInferResponse } from './reply.js';
import { encodeInferResponse, modelMetadata } from './rest-codec.js';
import { modelRoutes, type Route, type RouteContext } from './routes.js';

/** The extensions `GET /v2` lists: what this server answers. */
export const EXTENSIONS = [
  'binary_tensor_data',
  'model_configuration',
  'statistics',
  'model_repository',
];

export interface RestOptions {
  readonly version: string;
  /** Largest request body accepted, in bytes; larger ones get 413. */
  readonly maxBodyBytes: number;
  readonly decoder: Decoder;
}

/** The model named in the path, at the version asked for (only the one served exists). */
function modelOf(ctx: RouteContext): ModelInfo {
  const m = ctx.core.model(ctx.params.model!);
  const v = ctx.params.version;
  if (v !== undefined && v !== m.version) {
    throw new InferenceError(
      'BENTO_ERR_INFER_MODEL_NOT_FOUND',
      `model \`${m.name}\` has no version ${v.slice(0, 20)} (served: ${m.version})`,
    );
  }
  return m;
}

const ACCEPTED_TYPES = /^(application\/json|application\/octet-stream)\s*(;|$)/i;

/**
 * Only JSON, the binary extension's octet-stream, or no content type: a cross-site form post
 * (text/plain, form encodings) must not run an inference.
 */
function checkContentType(type: string | undefined): void {
  if (type === undefined || ACCEPTED_TYPES.test(type)) return;
  throw new HttpError(
    'BENTO_ERR_HTTP_MEDIA_TYPE',
    `content-type ${JSON.stringify(type.slice(0, 80))} is not accepted for /infer: send application/json, or application/octet-stream with Inference-Header-Content-Length`,
  );
}

async function infer(ctx: RouteContext, opts: RestOptions): Promise<void> {
  const { req, res, core } = ctx;
  let call: ReturnType<typeof core.begin>;
  try {
    checkContentType(req.headers['content-type']);
    modelOf(ctx);
    call = core.begin(ctx.params.model!);
  } catch (e) {
    req.resume();
    core.metrics.requests.inc({ model: ctx.params.model!, status: String(sendError(res, e)) });
    return;
  }
  let status = 200;
  let encodeMs = 0;
  try {
    const body = await readBody(req, opts.maxBodyBytes, call.signal);
    const decodeStart = performance.now();
    const request = await opts.decoder.decode(body, req.headers[HEADER_LENGTH], call.model);
    const result = await call.run(request, performance.now() - decodeStart);
    const encodeStart = performance.now();
    sendInferResponse(res, encodeInferResponse(call.model, request, result.outputs));
    encodeMs = performance.now() - encodeStart;
  } catch (e) {
    // An unread or half-read body cannot be resynchronised: this connection ends with the answer.
    const cut = !req.complete;
    status = sendError(res, e, cut ? { connection: 'close' } : {});
    if (cut) res.once('finish', () => req.socket.destroy());
    if (status >= 500 && status !== 503 && status !== 504)
      ctx.log.warn(`model ${ctx.params.model}: ${(e as Error).message}`);
  } finally {
    call.end(status, encodeMs);
  }
}

function readiness(ctx: RouteContext) {
  return {
    ready: ctx.core.ready(),
    workers: ctx.core.runtime
      .workers()
      .map((w) => ({ service: w.service, worker: w.worker, state: w.state })),
  };
}

function debugWorkers(ctx: RouteContext) {
  const { plan } = ctx.core.runtime;
  return {
    workers: ctx.core.runtime.workers().map((w) => ({
      ...w,
      planned: plan.services
        .find((s) => s.name === w.service)
        ?.workers[w.worker]?.sessions.map((s) => ({
          model: s.model,
          device: s.device,
          deviceId: s.deviceId,
        })),
    })),
  };
}

const notYet = (what: string) => () => {
  throw new HttpError(
    'BENTO_ERR_HTTP_NOT_IMPLEMENTED',
    `${what} is not supported yet: restart bento-run with the changed spec`,
  );
};

export function restRoutes(opts: RestOptions): Route[] {
  const live = (ctx: RouteContext) => send(ctx.res, 200, { live: true });
  const ready = (ctx: RouteContext) => {
    const r = readiness(ctx);
    send(ctx.res, r.ready ? 200 : 503, r);
  };
  return [
    { method: 'GET', path: '/v2/health/live', handler: live, open: true },
    { method: 'GET', path: '/livez', handler: live, open: true },
    { method: 'GET', path: '/v2/health/ready', handler: ready, open: true },
    { method: 'GET', path: '/readyz', handler: ready, open: true },
    {
      method: 'GET',
      path: '/v2',
      handler: (ctx) =>
        send(ctx.res, 200, { name: 'bento-run', version: opts.version, extensions: EXTENSIONS }),
    },
    {
      method: 'GET',
      path: '/metrics',
      handler: async (ctx) => {
        const { registry } = ctx.core.metrics;
        const text = await registry.metrics();
        ctx.res.writeHead(200, { 'content-type': registry.contentType });
        ctx.res.end(text);
      },
    },
    {
      method: 'GET',
      path: '/debug/workers',
      handler: (ctx) => send(ctx.res, 200, debugWorkers(ctx)),
    },
    {
      method: 'GET',
      path: '/v2/models/stats',
      handler: (ctx) => send(ctx.res, 200, { model_stats: ctx.core.stats.snapshot() }),
    },
    {
      method: 'POST',
      path: '/v2/repository/index',
      handler: (ctx) => send(ctx.res, 200, ctx.core.repositoryIndex()),
    },
    { method: 'POST', path: '/v2/repository/models/:model/load', handler: notYet('model load') },
    {
      method: 'POST',
      path: '/v2/repository/models/:model/unload',
      handler: notYet('model unload'),
    },
    ...modelRoutes('POST', '/infer', (ctx) => infer(ctx, opts)),
    ...modelRoutes('GET', '', (ctx) => send(ctx.res, 200, modelMetadata(modelOf(ctx)))),
    ...modelRoutes('GET', '/ready', (ctx) => {
      const m = modelOf(ctx);
      const ok = ctx.core.modelReady(m.name);
      send(ctx.res, ok ? 200 : 503, { name: m.name, ready: ok });
    }),
    ...modelRoutes('GET', '/config', (ctx) =>
      send(ctx.res, 200, modelConfig(ctx.core.runtime.plan, modelOf(ctx))),
    ),
    ...modelRoutes('GET', '/stats', (ctx) =>
      send(ctx.res, 200, { model_stats: ctx.core.stats.snapshot(modelOf(ctx).name) }),
    ),
  ];
}
