/**
 * The REST route table: method, path pattern (`:name` captures a segment), handler. The server
 * matches a request against it once; handlers live in handlers.ts, and tests may append routes
 * of their own through ServerOptions.routes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { InferenceCore } from '../core/inference.js';
import type { Logger } from '../log.js';

export interface RouteContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly params: Readonly<Record<string, string>>;
  readonly core: InferenceCore;
  readonly log: Logger;
}

export interface Route {
  readonly method: 'GET' | 'POST';
  /** e.g. `/v2/models/:model/infer` */
  readonly path: string;
  readonly handler: (ctx: RouteContext) => Promise<void> | void;
  /** Served without a token when server.auth is on (health routes). */
  readonly open?: boolean;
}

export type RouteMatch =
  | { readonly route: Route; readonly params: Record<string, string> }
  | { readonly route: null; readonly allowed: readonly string[] };

function matchPath(pattern: readonly string[], parts: readonly string[]) {
  if (pattern.length !== parts.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    if (p.startsWith(':')) params[p.slice(1)] = parts[i]!;
    else if (p !== parts[i]) return null;
  }
  return params;
}

/** Compiles a route table; the matcher answers the route, or the methods the path allows. */
export function createRouter(routes: readonly Route[]) {
  const compiled = routes.map((r) => ({ route: r, pattern: r.path.split('/').slice(1) }));
  return (method: string, parts: readonly string[]): RouteMatch => {
    const m = method === 'HEAD' ? 'GET' : method;
    const allowed: string[] = [];
    for (const c of compiled) {
      const params = matchPath(c.pattern, parts);
      if (!params) continue;
      if (c.route.method === m) return { route: c.route, params };
      allowed.push(c.route.method);
    }
    return { route: null, allowed };
  };
}

/** The model routes, with and without `/versions/:version` as the protocol allows. */
export function modelRoutes(
  method: Route['method'],
  suffix: string,
  handler: Route['handler'],
): Route[] {
  return [
    { method, path: `/v2/models/:model${suffix}`, handler },
    { method, path: `/v2/models/:model/versions/:version${suffix}`, handler },
  ];
}
