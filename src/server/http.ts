/**
 * The HTTP front: Open Inference Protocol v2 REST routes, BentoML-style health routes and
 * Prometheus metrics. It talks to the runtime only through the `Runtime` interface; one
 * function maps error kinds to statuses.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BentoError, type ErrorKind, HttpError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Runtime } from '../runtime/pool.js';
import { DEFAULTS } from '../spec/types.js';
import { HEADER_LENGTH, splitBody } from './binary.js';
import { createMetrics } from './metrics.js';
import {
  type EncodedResponse,
  encodeInferResponse,
  modelMetadata,
  parseInferRequest,
} from './protocol.js';

export interface ServerOptions {
  readonly host: string;
  readonly port: number;
  /** Largest request body accepted, in bytes; larger ones get 413. */
  readonly maxBodyBytes?: number;
  readonly version: string;
  readonly log: Logger;
  /** Test switch: enables POST /debug/workers/{service}/{worker}/crash. */
  readonly testHooks?: boolean;
}

export interface RunningServer {
  readonly server: Server;
  readonly url: string;
  readonly port: number;
  /** Stops accepting, waits for in-flight requests, then resolves. */
  drain(): Promise<void>;
}

/** server.max_body_mb's default, for servers started without a spec's value. */
export const DEFAULT_MAX_BODY_BYTES = DEFAULTS.maxBodyMb * 1024 * 1024;

const STATUS: Readonly<Record<ErrorKind, number>> = {
  INVALID_ARGUMENT: 400,
  NOT_FOUND: 404,
  TOO_LARGE: 413,
  UNAVAILABLE: 503,
  TIMEOUT: 504,
  INTERNAL: 500,
};

/** The one place where an error becomes an HTTP status. */
export function statusFor(e: unknown): number {
  return e instanceof BentoError ? STATUS[e.kind] : 500;
}

/** Answers `{"error"}` with the error's status (503 with Retry-After); returns the status. */
function sendError(res: ServerResponse, e: unknown): number {
  const status = statusFor(e);
  if (!res.headersSent) {
    send(
      res,
      status,
      { error: (e as Error).message },
      status === 503 ? { 'retry-after': '1' } : {},
    );
  }
  return status;
}

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** Writes a response, with the binary tensor extension's framing when there are bytes. */
function sendInferResponse(res: ServerResponse, body: EncodedResponse): void {
  if (body.binary.length === 0) {
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body.json),
    });
    res.end(body.json);
    return;
  }
  const header = Buffer.from(body.json, 'utf8');
  const length = body.binary.reduce((n, b) => n + b.length, header.length);
  res.writeHead(200, {
    'content-type': 'application/octet-stream',
    'content-length': length,
    [HEADER_LENGTH]: header.length,
  });
  // One writev for the header and every tensor, without copying them into one buffer.
  res.cork();
  res.write(header);
  for (const b of body.binary) res.write(b);
  res.end(); // flushes what was corked
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const tooLarge = () =>
    new HttpError(
      'BENTO_ERR_HTTP_TOO_LARGE',
      'TOO_LARGE',
      `request body is larger than the limit of ${limit} bytes`,
    );
  const declared = Number(req.headers['content-length'] ?? Number.NaN);
  if (declared > limit) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(tooLarge());
      } else chunks.push(c);
    });
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)));
    req.on('error', reject);
  });
}

function timeout<T>(p: Promise<T>, seconds: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new HttpError(
            'BENTO_ERR_HTTP_TIMEOUT',
            'TIMEOUT',
            `${what} did not finish within ${seconds}s (traffic.timeout_s)`,
          ),
        ),
      seconds * 1000,
    );
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

export async function startServer(runtime: Runtime, opts: ServerOptions): Promise<RunningServer> {
  const metrics = createMetrics(runtime);
  const limit = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const services = new Map(runtime.plan.services.map((s) => [s.name, s]));
  const inFlightByService = new Map<string, number>();
  let inFlight = 0;
  let draining = false;
  let drained: (() => void) | undefined;

  const notFound = (what: string) => new HttpError('BENTO_ERR_HTTP_NOT_FOUND', 'NOT_FOUND', what);
  const modelOr404 = (name: string) => {
    const m = runtime.models.get(name);
    if (!m)
      throw notFound(
        `unknown model \`${name}\` (models: ${[...runtime.models.keys()].join(', ')})`,
      );
    return m;
  };

  async function infer(req: IncomingMessage, res: ServerResponse, name: string) {
    const started = performance.now();
    const model = modelOr404(name);
    const service = services.get(model.service)!;
    const busy = inFlightByService.get(service.name) ?? 0;
    if (busy >= service.maxConcurrency) {
      req.resume();
      const e = new HttpError(
        'BENTO_ERR_HTTP_OVERLOADED',
        'UNAVAILABLE',
        `service \`${service.name}\` is at its limit of ${service.maxConcurrency} requests in flight (traffic.max_concurrency); retry later`,
      );
      metrics.requests.inc({ model: name, status: String(sendError(res, e)) });
      return;
    }
    inFlightByService.set(service.name, busy + 1);
    metrics.inFlight.inc({ service: service.name });
    let status = 200;
    try {
      const body = await readBody(req, limit);
      let parts: ReturnType<typeof splitBody>;
      try {
        parts = splitBody(body, req.headers[HEADER_LENGTH]);
      } catch (e) {
        throw new HttpError('BENTO_ERR_HTTP_BAD_REQUEST', 'INVALID_ARGUMENT', (e as Error).message);
      }
      const binary = parts.binary;
      let json: unknown;
      try {
        json = JSON.parse(parts.json.toString('utf8'));
      } catch (e) {
        throw new HttpError(
          'BENTO_ERR_HTTP_BAD_REQUEST',
          'INVALID_ARGUMENT',
          `request body is not valid JSON: ${(e as Error).message}`,
        );
      }
      const request = parseInferRequest(json, model, binary);
      const sent = performance.now();
      const result = await timeout(
        runtime.infer(name, request.inputs, request.outputs),
        service.timeoutS,
        `inference on model \`${name}\``,
      );
      // The device of the worker that ran it: a model may sit on several (workers.yaml).
      const { device } = result;
      metrics.inferenceSeconds.observe({ model: name, device }, result.inferMs / 1000);
      metrics.workerRequests.inc({
        service: result.service,
        worker: String(result.worker),
        device,
      });
      metrics.queueSeconds.observe(
        { model: name },
        Math.max(0, performance.now() - sent - result.inferMs) / 1000,
      );
      sendInferResponse(res, encodeInferResponse(name, request, result.outputs));
    } catch (e) {
      status = sendError(res, e);
      if (status >= 500) opts.log.warn(`model ${name}: ${(e as Error).message}`);
    } finally {
      inFlightByService.set(service.name, (inFlightByService.get(service.name) ?? 1) - 1);
      metrics.inFlight.dec({ service: service.name });
      metrics.requests.inc({ model: name, status: String(status) });
      metrics.requestSeconds.observe({ model: name }, (performance.now() - started) / 1000);
    }
  }

  function readiness() {
    const ready = runtime.ready() && !draining;
    return {
      ready,
      workers: runtime
        .workers()
        .map((w) => ({ service: w.service, worker: w.worker, state: w.state })),
    };
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = req.url ?? '/';
    const query = raw.indexOf('?');
    const path = (query < 0 ? raw : raw.slice(0, query)).replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    let parts: string[];
    try {
      parts = path.split('/').slice(1).map(decodeURIComponent);
    } catch {
      throw new HttpError(
        'BENTO_ERR_HTTP_BAD_REQUEST',
        'INVALID_ARGUMENT',
        `malformed URL: ${raw}`,
      );
    }
    const get = method === 'GET' || method === 'HEAD';

    if (get && (path === '/v2/health/live' || path === '/livez'))
      return send(res, 200, { live: true });
    if (get && (path === '/v2/health/ready' || path === '/readyz')) {
      const r = readiness();
      return send(res, r.ready ? 200 : 503, r);
    }
    if (get && path === '/v2') {
      return send(res, 200, {
        name: 'bento-run',
        version: opts.version,
        extensions: ['binary_tensor_data'],
      });
    }
    if (get && path === '/metrics') {
      const text = await metrics.registry.metrics();
      res.writeHead(200, { 'content-type': metrics.registry.contentType });
      return void res.end(text);
    }
    if (get && path === '/debug/workers') {
      return send(res, 200, {
        workers: runtime.workers().map((w) => ({
          ...w,
          planned: runtime.plan.services
            .find((s) => s.name === w.service)
            ?.workers[w.worker]?.sessions.map((s) => ({
              model: s.model,
              device: s.device,
              deviceId: s.deviceId,
            })),
        })),
      });
    }
    if (
      opts.testHooks &&
      method === 'POST' &&
      parts[0] === 'debug' &&
      parts[1] === 'workers' &&
      parts[4] === 'crash'
    ) {
      await runtime.crashWorker(parts[2] ?? '', Number(parts[3]));
      return send(res, 200, { crashed: `${parts[2]}/${parts[3]}` });
    }
    // /v2/models/{model}[/versions/{v}][/ready|/infer]
    if (parts[0] === 'v2' && parts[1] === 'models' && parts[2] !== undefined) {
      const name = parts[2];
      let rest = parts.slice(3);
      if (rest[0] === 'versions' && rest[1] !== undefined) rest = rest.slice(2);
      const action = rest.join('/');
      if (action === 'infer') {
        if (method !== 'POST')
          return send(res, 405, { error: 'use POST for /infer' }, { allow: 'POST' });
        return infer(req, res, name);
      }
      if (get && action === '') return send(res, 200, modelMetadata(modelOr404(name)));
      if (get && action === 'ready') {
        modelOr404(name);
        const ready = runtime.modelReady(name) && !draining;
        return send(res, ready ? 200 : 503, { name, ready });
      }
    }
    throw notFound(`no route for ${method} ${path}`);
  }

  const server = createServer((req, res) => {
    inFlight++;
    if (draining) res.setHeader('connection', 'close');
    res.on('close', () => {
      inFlight--;
      if (draining && inFlight === 0) {
        // Keep-alive connections whose requests were in flight when the drain began are idle
        // now; left open they would keep the process alive until keepAliveTimeout.
        server.closeIdleConnections();
        drained?.();
      }
    });
    route(req, res).catch((e: unknown) => {
      req.resume();
      const status = sendError(res, e);
      if (status >= 500) opts.log.error(`${req.method} ${req.url}: ${(e as Error).stack ?? e}`);
    });
  });
  server.keepAliveTimeout = 65_000; // longer than common load balancers' idle timeouts
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    server,
    port: address.port,
    url: `http://${host}:${address.port}`,
    drain() {
      draining = true;
      const done = new Promise<void>((resolve) => {
        drained = resolve;
        if (inFlight === 0) resolve();
      });
      server.close();
      server.closeIdleConnections();
      return done;
    },
  };
}
