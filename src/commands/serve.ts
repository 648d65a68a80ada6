/**
 * `bento-run [serve] SPEC.yaml`: spec -> plan -> runtime -> server, then serve until SIGTERM or
 * SIGINT, and drain.
 */
import { EventEmitter } from 'node:events';
import { BentoError, RuntimeError, UsageError } from '../errors.js';
import { createLogger, isLogLevel, type LogFormat, type LogLevel } from '../log.js';
import { discoverDevices, planOnDevices } from '../plan/index.js';
import { type RuntimeEvents, startRuntime } from '../runtime/pool.js';
import { createAuthenticator, isLoopback, loadTokens } from '../server/auth.js';
import { type RunningGrpcServer, startGrpcServer } from '../server/grpc/server.js';
import { type RunningServer, startServer } from '../server/http.js';
import { formatDiagnostic } from '../spec/diagnostics.js';
import { loadSpec } from '../spec/validate.js';
import { uiRoutes } from '../ui/routes.js';
import { packageVersion } from '../util/package.js';
import { requireFiles } from './common.js';
import { logRuntimeEvents, showLoadProgress } from './progress.js';
import { drainAndStop, firstStopSignal } from './shutdown.js';
import type { CliInject, CliIO, CommandDefinition, Options } from './types.js';

const USAGE = `bento-run [serve] SPEC.yaml [--host H] [--port P] [--grpc-port P|false] [--cpu]
                [--service NAME]... [--log-level debug|info|warn|error] [--log-format text|json]

Validates and plans the spec (exit 2 if it is invalid or cannot be placed), starts one
worker thread per planned worker with its own onnxruntime sessions on its device, and
serves the Open Inference Protocol on HTTP (KServe v2 REST) and gRPC (Triton's service).
  --host, --port  override server.host and server.port (--port 0 picks a free port)
  --grpc-port     override server.grpc_port (default 8001; 0 picks a free port; false: off)
  --cpu           run every worker on the CPU, whatever the spec's GPUs
  --service       serve only this service (repeatable; Kubernetes runs one per pod)
SIGTERM or SIGINT stops accepting and gives in-flight requests server.drain_timeout_s
(default 30) to finish; then it closes every connection and exits, 0 when nothing was cut.
A second signal exits at once.`;

function logOptions(opts: Options): { level: LogLevel; format: LogFormat } {
  const level = opts['log-level'] ?? 'info';
  const format = opts['log-format'] ?? 'text';
  if (!isLogLevel(level))
    throw new UsageError(`--log-level must be debug, info, warn or error (got ${level})`);
  if (format !== 'text' && format !== 'json')
    throw new UsageError(`--log-format must be text or json (got ${format})`);
  return { level, format };
}

function parsePort(value: string | undefined, fallback: number, flag = '--port'): number {
  if (value === undefined) return fallback;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(`${flag} must be an integer from 0 to 65535 (got ${value})`);
  }
  return port;
}

/** --grpc-port: a port, or false; null: gRPC off. */
function parseGrpcPort(value: string | undefined, fallback: number | null): number | null {
  if (value === 'false' || value === 'off') return null;
  return value === undefined ? fallback : parsePort(value, 0, '--grpc-port');
}

async function serve(
  files: string[],
  opts: Options,
  io: CliIO,
  inject: CliInject,
): Promise<number> {
  requireFiles(files, { name: 'serve', usage: USAGE }, true);
  // Listen for the stop signals first: one that arrives while models load still stops cleanly.
  const stop = firstStopSignal();
  const logging = logOptions(opts);
  const services = opts.service ?? [];
  // The other services' model files need not be here: a pod gets only its own (KServe).
  const { spec, warnings } = loadSpec(files[0]!, { services });
  const port = parsePort(opts.port, spec.server.port);
  const grpcPort = parseGrpcPort(opts['grpc-port'], spec.server.grpcPort);
  const host = opts.host ?? spec.server.host;
  const auth = spec.server.auth ? createAuthenticator(loadTokens(spec.server.auth, io.env)) : null;
  for (const w of warnings) io.stderr(`${formatDiagnostic(w)}\n`);
  const plan = planOnDevices(spec, discoverDevices({ env: io.env }), {
    cpu: opts.cpu === true,
    services,
  });
  for (const w of plan.warnings) io.stderr(`${formatDiagnostic(w)}\n`);
  // nvidia-smi numbers GPUs in PCI order, CUDA fastest first: make CUDA agree with the plan.
  process.env.CUDA_DEVICE_ORDER ??= 'PCI_BUS_ID';

  const events = new EventEmitter<RuntimeEvents>();
  // Progress lines on a terminal, for people; JSON logs are for machines and get none.
  const progress = showLoadProgress(events, {
    write: io.stderr,
    isTTY: io.stderrIsTTY === true && logging.format === 'text',
    ...(io.stderrColumns === undefined ? {} : { columns: io.stderrColumns }),
  });
  const log = createLogger({ ...logging, write: progress.write });
  logRuntimeEvents(events, log);
  const runtime = await startRuntime(plan, inject.runtime ?? {}, events).catch((e: unknown) => {
    progress.stop();
    // A load failure is already a RuntimeError; anything else (a thread that died while it
    // loaded) still gets a plain message rather than an internal-error stack.
    if (e instanceof BentoError) throw e;
    throw new RuntimeError(
      'BENTO_ERR_RUNTIME_WORKER_DIED',
      `a worker thread died while loading its models: ${(e as Error).message}`,
      { cause: e },
    );
  });
  progress.stop();
  let server: RunningServer;
  let grpc: RunningGrpcServer | null = null;
  const maxBodyBytes = spec.server.maxBodyMb * 1024 * 1024;
  const extra = inject.routes;
  try {
    server = await startServer(runtime, {
      host,
      port,
      version: packageVersion(),
      log,
      maxBodyBytes,
      auth,
      tls: spec.server.tls,
      routes: (core) => [
        ...uiRoutes({ enabled: spec.server.ui, version: packageVersion() }),
        ...(typeof extra === 'function' ? extra(core) : (extra ?? [])),
      ],
    });
    if (grpcPort !== null) {
      grpc = await startGrpcServer(server.core, {
        host,
        port: grpcPort,
        maxMessageBytes: maxBodyBytes,
        log,
        version: packageVersion(),
        auth,
        tls: spec.server.tls,
      }).catch(async (e: unknown) => {
        await server.drain(0);
        throw e;
      });
    }
  } catch (e) {
    await runtime.close();
    const err = e as NodeJS.ErrnoException;
    throw new RuntimeError('BENTO_ERR_RUNTIME_LISTEN', `cannot listen: ${err.message}`, {
      cause: e,
    });
  }
  if (!auth && !isLoopback(host)) {
    log.warn(
      `serving on ${host} without server.auth: anyone who reaches this address can run inferences and read /metrics and /debug/workers`,
      { event: 'no-auth', host },
    );
  }
  log.info(
    `bento-run ${packageVersion()} serving ${runtime.models.size} model(s) on ${server.url}${grpc ? ` and gRPC ${grpc.address}` : ''}`,
    {
      event: 'listening',
      url: server.url,
      port: server.port,
      ...(grpc ? { grpc_port: grpc.port } : {}),
    },
  );
  const signal = await stop;
  return drainAndStop({
    signal,
    frontends: grpc ? [server, grpc] : [server],
    closeRuntime: () => runtime.close(),
    drainTimeoutS: spec.server.drainTimeoutS,
    log,
  });
}

export const serveCommand: CommandDefinition = {
  summary: 'serve the spec over HTTP (the default command)',
  usage: USAGE,
  options: ['host', 'port', 'grpc-port', 'cpu', 'service'],
  run: serve,
};
