/**
 * The page at `/` (server.ui): static files shipped in the package's ui/ folder, served as
 * they are (no build step, nothing from elsewhere), and the two JSON documents it reads. The
 * page and its files carry no data and are open; the feed and the OpenAPI document need the
 * token when server.auth is on, as every other data route does.
 */
import { readFileSync } from 'node:fs';
import type { InferenceCore } from '../core/inference.js';
import { send } from '../server/reply.js';
import type { Route, RouteContext } from '../server/routes.js';
import { packageVersion } from '../util/package.js';
import { servedModels, statusFeed } from './feed.js';
import { buildOpenApi } from './openapi.js';
import { createSeries, type Series, type SeriesOptions } from './series.js';

export interface UiOptions {
  /** server.ui: false serves none of these routes (`/` is a 404 again). */
  readonly enabled: boolean;
  /** Shown on the page and in the OpenAPI document (default: the package's). */
  readonly version?: string;
  /** The charts' sampling interval and window. */
  readonly series?: SeriesOptions;
}

/** The shipped files: dist/src/ui/routes.js -> the package's ui/ folder. */
const ASSETS = new URL('../../../ui/', import.meta.url);

/** The page may load only its own files and talk only to this server. */
const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

const FILES = [
  { path: '/', file: 'index.html', type: 'text/html; charset=utf-8', headers: PAGE_HEADERS },
  { path: '/ui/app.js', file: 'app.js', type: 'text/javascript; charset=utf-8', headers: {} },
  { path: '/ui/style.css', file: 'style.css', type: 'text/css; charset=utf-8', headers: {} },
  { path: '/ui/favicon.svg', file: 'favicon.svg', type: 'image/svg+xml', headers: {} },
] as const;

function staticRoute(f: (typeof FILES)[number]): Route {
  let body: Buffer | undefined;
  return {
    method: 'GET',
    path: f.path,
    open: true,
    handler({ res }) {
      body ??= readFileSync(new URL(f.file, ASSETS));
      res.writeHead(200, {
        'content-type': f.type,
        'content-length': body.length,
        'cache-control': 'no-cache',
        'x-content-type-options': 'nosniff',
        ...f.headers,
      });
      res.end(body);
    },
  };
}

/** `?since=` as a number of ms (0 when absent or not a number). */
function sinceOf(ctx: RouteContext): number {
  const url = new URL(ctx.req.url ?? '/', 'http://x');
  const since = Number(url.searchParams.get('since') ?? 0);
  return Number.isFinite(since) ? since : 0;
}

/** GET /, its files, /openapi.json and /ui/status.json; none when the UI is off. */
export function uiRoutes(opts: UiOptions): Route[] {
  if (!opts.enabled) return [];
  const version = opts.version ?? packageVersion();
  // One chart history per server (tests run several in one process).
  const series = new WeakMap<InferenceCore, Series>();
  const seriesOf = (core: InferenceCore) => {
    let s = series.get(core);
    if (!s) {
      s = createSeries(opts.series);
      series.set(core, s);
    }
    return s;
  };
  return [
    ...FILES.map(staticRoute),
    {
      method: 'GET',
      path: '/openapi.json',
      handler: (ctx) =>
        send(
          ctx.res,
          200,
          buildOpenApi(servedModels(ctx.core), {
            name: ctx.core.runtime.plan.name,
            version,
          }),
          { 'cache-control': 'no-store' },
        ),
    },
    {
      method: 'GET',
      path: '/ui/status.json',
      handler: async (ctx) => {
        const feed = await statusFeed(ctx.core, seriesOf(ctx.core), {
          version,
          since: sinceOf(ctx),
        });
        send(ctx.res, 200, feed, { 'cache-control': 'no-store' });
      },
    },
  ];
}
