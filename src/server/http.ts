/**
 * The REST frontend's server: listening, routing a request to its handler, refusing what Node's
 * HTTP parser refuses as JSON, and draining on shutdown within a bound.
 */
import { readFileSync } from 'node:fs';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { createInferenceCore, type InferenceCore } from '../core/inference.js';
import { HttpError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Runtime } from '../runtime/types.js';
import { DEFAULTS } from '../spec/types.js';
import { type Authenticator, unauthenticated } from './auth.js';
import { createDecoder } from './decoder-pool.js';
import { restRoutes } from './handlers.js';
import { sendError } from './reply.js';
import { createRouter, type Route } from './routes.js';

export interface ServerOptions {
  readonly host: string;
  readonly port: number;
  /** Largest request body accepted, in bytes; larger ones get 413. */
  readonly maxBodyBytes?: number;
  readonly version: string;
  readonly log: Logger;
  /** With server.auth: every route but the open (health) ones needs a bearer token. */
  readonly auth?: Authenticator | null;
  /** Threads that decode large JSON bodies (default: one per core; 0: on the HTTP thread). */
  readonly decoderThreads?: number;
  /** Long JSON number lists read from the bytes, not by JSON.parse (default true). */
  readonly liftJsonLists?: boolean;
  /** PEM files: serve HTTPS. */
  readonly tls?: { readonly cert: string; readonly key: string } | null;
  /** Routes served besides the protocol's (matched after them). */
  readonly routes?: readonly Route[] | ((core: InferenceCore) => readonly Route[]);
}

export interface RunningServer {
  readonly server: Server;
  readonly core: InferenceCore;
  readonly url: string;
  readonly port: number;
  /**
   * Stops accepting and refuses new requests; resolves true once every request in flight has
   * been answered, or false when `timeoutS` passed first and the rest were cut. Either way every
   * connection is closed at the end, idle, half-sent or trickling ones included.
   */
  drain(timeoutS?: number): Promise<boolean>;
}

/** server.max_body_mb's default, for servers started without a spec's value. */
export const DEFAULT_MAX_BODY_BYTES = DEFAULTS.maxBodyMb * 1024 * 1024;

/** The path's segments, URL-decoded; 400 for a malformed escape. */
function pathParts(raw: string): { path: string; parts: string[] } {
  const query = raw.indexOf('?');
  const path = (query < 0 ? raw : raw.slice(0, query)).replace(/\/+$/, '') || '/';
  try {
    return { path, parts: path.split('/').slice(1).map(decodeURIComponent) };
  } catch {
    throw new HttpError('BENTO_ERR_HTTP_BAD_REQUEST', `malformed URL: ${raw.slice(0, 200)}`);
  }
}

/** What Node's parser refuses never reaches a route: answer it as JSON too, then close. */
function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const headers = err.code === 'HPE_HEADER_OVERFLOW';
  const timeout = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
  const status = headers ? 431 : timeout ? 408 : 400;
  const body = JSON.stringify({
    error: headers
      ? 'request headers are larger than the limit of 16 KiB'
      : timeout
        ? 'the request was not received in time'
        : `malformed HTTP request: ${err.message}`,
    code: headers ? 'BENTO_ERR_HTTP_HEADERS_TOO_LARGE' : 'BENTO_ERR_HTTP_BAD_REQUEST',
  });
  const reason = headers
    ? 'Request Header Fields Too Large'
    : timeout
      ? 'Request Timeout'
      : 'Bad Request';
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

export async function startServer(runtime: Runtime, opts: ServerOptions): Promise<RunningServer> {
  const core = createInferenceCore(runtime);
  const decoder = createDecoder({
    ...(opts.decoderThreads === undefined ? {} : { threads: opts.decoderThreads }),
    ...(opts.liftJsonLists === undefined ? {} : { lift: opts.liftJsonLists }),
  });
  const extra = typeof opts.routes === 'function' ? opts.routes(core) : (opts.routes ?? []);
  const match = createRouter([
    ...restRoutes({
      version: opts.version,
      maxBodyBytes: opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
      decoder,
    }),
    ...extra,
  ]);
  let inFlight = 0;
  let draining = false;
  let idle: (() => void) | undefined;

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const { path, parts } = pathParts(req.url ?? '/');
    const m = match(method, parts);
    if (m.route && opts.auth && !m.route.open && !opts.auth(req.headers.authorization)) {
      req.resume();
      sendError(res, unauthenticated(), { 'www-authenticate': 'Bearer realm="bento-run"' });
      return;
    }
    if (m.route) return m.route.handler({ req, res, params: m.params, core, log: opts.log });
    if (m.allowed.length > 0) {
      const last = parts[parts.length - 1] ?? '';
      const e = new HttpError(
        'BENTO_ERR_HTTP_METHOD',
        `use ${m.allowed.join(' or ')} for /${last} (${path.slice(0, 200)})`,
      );
      sendError(res, e, { allow: m.allowed.join(', ') });
      return;
    }
    throw new HttpError('BENTO_ERR_HTTP_NOT_FOUND', `no route for ${method} ${path.slice(0, 200)}`);
  }

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    inFlight++;
    if (draining) res.setHeader('connection', 'close');
    res.on('close', () => {
      inFlight--;
      if (inFlight === 0) idle?.();
    });
    route(req, res).catch((e: unknown) => {
      req.resume();
      const status = sendError(res, e);
      if (status >= 500) opts.log.error(`${req.method} ${req.url}: ${(e as Error).stack ?? e}`);
    });
  };
  const server: Server = opts.tls
    ? createHttpsServer(
        { cert: readFileSync(opts.tls.cert), key: readFileSync(opts.tls.key) },
        handle,
      )
    : createHttpServer(handle);
  server.on('clientError', answerClientError);
  server.keepAliveTimeout = 65_000; // longer than common load balancers' idle timeouts
  // A client that never finishes its headers holds nothing for long.
  server.headersTimeout = 30_000;
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
    core,
    port: address.port,
    url: `${opts.tls ? 'https' : 'http'}://${host}:${address.port}`,
    async drain(timeoutS = DEFAULTS.drainTimeoutS) {
      draining = true;
      server.close();
      server.closeIdleConnections();
      void core.drain();
      const answered = new Promise<boolean>((resolve) => {
        idle = () => resolve(true);
        if (inFlight === 0) resolve(true);
      });
      let timer: NodeJS.Timeout | undefined;
      const cut = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutS * 1000);
      });
      const clean = await Promise.race([answered, cut]);
      clearTimeout(timer);
      // Connections with no request we know of: idle keep-alives, and clients that sent nothing,
      // half their headers, or are trickling a request Node has not handed over yet.
      server.closeAllConnections();
      await decoder.close();
      return clean;
    },
  };
}
