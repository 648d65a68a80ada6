/**
 * The command line: argument parsing and wiring of the stages, nothing else.
 * Exit codes (DESIGN.md): 0 success, 2 invalid spec or usage, 1 runtime failure.
 */
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  BentoError,
  EXIT_OK,
  EXIT_RUNTIME,
  EXIT_USAGE,
  PlanError,
  RuntimeError,
  SpecError,
  UsageError,
} from './errors.js';
import { dockerfileCommand, k8sCommand } from './k8s/command.js';
import { createLogger, isLogLevel, type LogFormat, type Logger, type LogLevel } from './log.js';
import { discoverDevices, formatPlanTable, planPlacement, planToJson } from './plan/index.js';
import { type RuntimeEvents, startRuntime } from './runtime/pool.js';
import { type RunningServer, startServer } from './server/http.js';
import { type Diagnostic, diagnosticToJson, formatDiagnostic } from './spec/diagnostics.js';
import { schemaText } from './spec/schema.js';
import { loadSpec } from './spec/validate.js';

export interface CliIO {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: NodeJS.ProcessEnv;
}

const defaultIO: CliIO = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  env: process.env,
};

const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
  format: { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
  cpu: { type: 'boolean' },
  strict: { type: 'boolean' },
  service: { type: 'string', multiple: true },
  'log-level': { type: 'string' },
  'log-format': { type: 'string' },
  output: { type: 'string', short: 'o' },
  replicas: { type: 'string', multiple: true },
  namespace: { type: 'string' },
  image: { type: 'string' },
  'node-selector': { type: 'string', multiple: true },
  'models-pvc': { type: 'string' },
  'models-image': { type: 'string' },
} as const;

type Options = {
  help?: boolean;
  version?: boolean;
  format?: string;
  host?: string;
  port?: string;
  cpu?: boolean;
  strict?: boolean;
  service?: string[];
  'log-level'?: string;
  'log-format'?: string;
  output?: string;
  replicas?: string[];
  namespace?: string;
  image?: string;
  'node-selector'?: string[];
  'models-pvc'?: string;
  'models-image'?: string;
};

interface Command {
  readonly summary: string;
  readonly usage: string;
  /** Options this command accepts besides --help. */
  readonly options: readonly (keyof Options)[];
  readonly run: (files: string[], opts: Options, io: CliIO) => Promise<number> | number;
}

const COMMANDS: Record<string, Command> = {
  validate: {
    summary: 'check specs; exit 0 if valid, 2 if not',
    usage: `bento-run validate SPEC.yaml... [--format text|json]

Checks each spec against the schema and the cross-reference rules, and that its
model files exist and are ONNX models. Prints every problem, one per line, as
  file:line:col: error: path: message
Exit 0 when every spec is valid (warnings allowed), 2 otherwise.`,
    options: ['format'],
    run: validateCommand,
  },
  plan: {
    summary: 'print the placement: service, worker, model, device',
    usage: `bento-run plan SPEC.yaml [--cpu] [--service NAME]... [--strict] [--format text|json]

Validates the spec, discovers GPUs (nvidia-smi, CUDA_VISIBLE_DEVICES), gives services
disjoint blocks of the visible GPUs in declaration order, and prints one row per session:
service, worker, model, local GPU, visible device (the CUDA deviceId), physical GPU, GPU name,
then an estimate of the GPU memory each GPU needs.
  --cpu        plan every worker on the CPU
  --service    plan only this service (repeatable)
  --strict     a GPU memory estimate over a GPU's total is an error, not a warning
Exit 0 when the spec can be placed, 2 when it is invalid or cannot be placed.`,
    options: ['format', 'cpu', 'service', 'strict'],
    run: planCommand,
  },
  serve: {
    summary: 'serve the spec over HTTP (the default command)',
    usage: `bento-run [serve] SPEC.yaml [--host H] [--port P] [--cpu] [--service NAME]...
                [--log-level debug|info|warn|error] [--log-format text|json]

Validates and plans the spec (exit 2 if it is invalid or cannot be placed), starts one
worker thread per planned worker with its own onnxruntime sessions on its device, and
serves the Open Inference Protocol (KServe v2 REST) on HTTP.
  --host, --port  override server.host and server.port (--port 0 picks a free port)
  --cpu           run every worker on the CPU, whatever the spec's GPUs
  --service       serve only this service (repeatable; Kubernetes runs one per pod)
SIGTERM or SIGINT stops accepting, finishes in-flight requests, and exits 0.`,
    options: ['host', 'port', 'cpu', 'service'],
    run: serveCommand,
  },
  doctor: {
    summary: 'check GPUs, the CUDA provider and what a spec needs; exit 0 ok, 1 missing',
    usage: `bento-run doctor [SPEC.yaml] [--cpu] [--service NAME]... [--format text|json]

One line per check, with a fix where one exists: Node.js against package.json's engines,
onnxruntime-node and where it loads from, its CUDA provider files and the libraries they
need (ldd), the GPUs nvidia-smi lists (index, name, memory, driver), CUDA_VISIBLE_DEVICES
and the visible -> physical mapping, and a real CUDA session on each visible GPU, created in
a child process so that a crash or a hang is reported, not fatal. With a spec: whether it is
valid, whether its plan fits (GPU count, gpu_type, memory estimate), and for every GPU
placement whether the CUDA checks passed.
  --cpu        check the spec planned on the CPU
  --service    check only this service (repeatable)
Exit 0 when everything the spec needs is here (or no spec is given), 1 when something it
needs is missing, 2 for an invalid spec or usage.`,
    options: ['format', 'cpu', 'service'],
    // Loaded on demand: only doctor needs its probe and report modules.
    run: async (files, opts, io) =>
      (await import('./doctor/index.js')).doctorCommand(files, opts, io),
  },
  schema: {
    summary: 'print the JSON Schema of bentofile.yaml',
    usage: `bento-run schema

Prints the JSON Schema that validates bentofile.yaml (the file editors use too).`,
    options: [],
    run: (_files, _opts, io) => {
      io.stdout(schemaText());
      return EXIT_OK;
    },
  },
  k8s: k8sCommand,
  dockerfile: dockerfileCommand,
};

function version(): string {
  const pkg = JSON.parse(
    readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8'),
  ) as { version: string };
  return pkg.version;
}

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(width)}  ${c.summary}`);
  return `bento-run ${version()}: serve ONNX models on CPUs and GPUs from one bentofile.yaml

Usage:
  bento-run SPEC.yaml            serve the spec (same as: bento-run serve SPEC.yaml)
  bento-run COMMAND [options]

Commands:
${lines.join('\n')}

Options:
  -h, --help       help for bento-run or a command (bento-run plan --help)
  -v, --version    print the version
  --format json    machine-readable output (validate, plan, doctor)

Exit codes: 0 success, 2 invalid spec or usage, 1 runtime failure.
`;
}

export async function main(argv: readonly string[], io: CliIO = defaultIO): Promise<number> {
  try {
    return await dispatch(argv, io);
  } catch (e) {
    return reportError(e, io, argv.includes('--format=json') || hasJsonFormat(argv));
  }
}

function hasJsonFormat(argv: readonly string[]): boolean {
  const i = argv.indexOf('--format');
  return i >= 0 && argv[i + 1] === 'json';
}

async function dispatch(argv: readonly string[], io: CliIO): Promise<number> {
  const first = argv[0];
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    io.stdout(usage());
    return first === undefined ? EXIT_USAGE : EXIT_OK;
  }
  if (first === '--version' || first === '-v') {
    io.stdout(`${version()}\n`);
    return EXIT_OK;
  }
  // `bento-run spec.yaml` is `bento-run serve spec.yaml`.
  const isSpecPath = /\.ya?ml$/i.test(first) && !(first in COMMANDS);
  const name = isSpecPath ? 'serve' : first;
  const rest = isSpecPath ? argv : argv.slice(1);
  const command = COMMANDS[name];
  if (!command) {
    const hint = first.startsWith('-') ? `unknown option ${first}` : `unknown command \`${first}\``;
    throw new UsageError(`${hint}\n\n${usage()}`);
  }
  let parsed: { values: Options; positionals: string[] };
  try {
    parsed = parseArgs({
      args: [...rest],
      options: OPTIONS,
      allowPositionals: true,
      strict: true,
    }) as {
      values: Options;
      positionals: string[];
    };
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\n\nUsage: ${command.usage}\n`);
  }
  const opts = parsed.values;
  if (opts.help) {
    io.stdout(`Usage: ${command.usage}\n`);
    return EXIT_OK;
  }
  const given = (Object.keys(opts) as (keyof Options)[]).filter((k) => opts[k] !== undefined);
  const allowed = new Set<string>(['help', 'log-level', 'log-format', ...command.options]);
  const stray = given.filter((k) => !allowed.has(k));
  if (stray.length > 0) {
    throw new UsageError(
      `\`${name}\` does not take ${stray.map((s) => `--${s}`).join(', ')}\n\nUsage: ${command.usage}\n`,
    );
  }
  if (opts.format !== undefined && opts.format !== 'text' && opts.format !== 'json') {
    throw new UsageError(`--format must be text or json (got ${opts.format})`);
  }
  return command.run(parsed.positionals, opts, io);
}

function reportError(e: unknown, io: CliIO, json: boolean): number {
  if (e instanceof SpecError || e instanceof PlanError) {
    printDiagnostics(e.diagnostics, io, json);
    return e.exitCode;
  }
  if (e instanceof BentoError) {
    io.stderr(`bento-run: ${e.message}\n`);
    if (!e.userError && e.stack) io.stderr(`${e.stack}\n`);
    return e.exitCode;
  }
  io.stderr(
    `bento-run: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
  );
  return EXIT_RUNTIME;
}

function printDiagnostics(ds: readonly Diagnostic[], io: CliIO, json: boolean): void {
  if (json) io.stdout(`${JSON.stringify(ds.map(diagnosticToJson), null, 2)}\n`);
  else for (const d of ds) io.stderr(`${formatDiagnostic(d)}\n`);
}

function requireFiles(files: string[], name: string, one = false): void {
  if (files.length === 0)
    throw new UsageError(`\`${name}\` needs a spec file\n\nUsage: ${COMMANDS[name]?.usage}\n`);
  if (one && files.length > 1)
    throw new UsageError(`\`${name}\` takes one spec file (got ${files.length})`);
}

const count = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;

function validateCommand(files: string[], opts: Options, io: CliIO): number {
  requireFiles(files, 'validate');
  const json = opts.format === 'json';
  const all: Diagnostic[] = [];
  let failed = false;
  for (const file of files) {
    try {
      const { spec, warnings } = loadSpec(file);
      all.push(...warnings);
      if (!json) {
        for (const w of warnings) io.stderr(`${formatDiagnostic(w)}\n`);
        const workers = spec.services.reduce((n, s) => n + s.workers.length, 0);
        io.stdout(
          `${file}: ok (${count(Object.keys(spec.models).length, 'model')}, ${count(spec.services.length, 'service')}, ${count(workers, 'worker')})\n`,
        );
      }
    } catch (e) {
      if (!(e instanceof SpecError)) throw e;
      failed = true;
      all.push(...e.diagnostics);
      if (!json) printDiagnostics(e.diagnostics, io, false);
    }
  }
  if (json) printDiagnostics(all, io, true);
  return failed ? EXIT_USAGE : EXIT_OK;
}

function planCommand(files: string[], opts: Options, io: CliIO): number {
  requireFiles(files, 'plan', true);
  const { spec, warnings } = loadSpec(files[0]!);
  const discovery = discoverDevices({ env: io.env });
  const plan = planPlacement(spec, discovery.devices, {
    cpu: opts.cpu === true,
    services: opts.service ?? [],
    strictMemory: opts.strict === true,
    cudaVisibleDevices: discovery.cudaVisibleDevices,
  });
  if (opts.format === 'json') {
    io.stdout(`${JSON.stringify(planToJson(plan), null, 2)}\n`);
  } else {
    for (const w of warnings) io.stderr(`${formatDiagnostic(w)}\n`);
    io.stdout(formatPlanTable(plan));
  }
  return EXIT_OK;
}

function logOptions(opts: Options): { level: LogLevel; format: LogFormat } {
  const level = opts['log-level'] ?? 'info';
  const format = opts['log-format'] ?? 'text';
  if (!isLogLevel(level))
    throw new UsageError(`--log-level must be debug, info, warn or error (got ${level})`);
  if (format !== 'text' && format !== 'json')
    throw new UsageError(`--log-format must be text or json (got ${format})`);
  return { level, format };
}

function parsePort(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(`--port must be an integer from 0 to 65535 (got ${value})`);
  }
  return port;
}

/** Test switches, read from the environment; each is named for what it does. */
function testSwitches(env: NodeJS.ProcessEnv) {
  return {
    forceCpuSessions: env.BENTO_TEST_FORCE_CPU_SESSIONS === '1',
    loadDelayMs: Number(env.BENTO_TEST_LOAD_DELAY_MS ?? 0) || 0,
    testHooks: env.BENTO_TEST_HOOKS === '1',
  };
}

/** One log line per runtime event: sessions as they load, workers as they die and return. */
function logRuntimeEvents(
  events: EventEmitter<RuntimeEvents>,
  log: Logger,
): EventEmitter<RuntimeEvents> {
  events.on('session-loaded', (w, r) => {
    log.info(
      `loaded  service=${w.service} worker=${w.worker} model=${r.model} device=${r.device} in ${r.loadMs.toFixed(1)} ms`,
      {
        event: 'session-loaded',
        service: w.service,
        worker: w.worker,
        model: r.model,
        device: r.device,
        load_ms: r.loadMs,
      },
    );
  });
  events.on('worker-exit', (w) => {
    log.warn(
      `worker thread died: service=${w.service} worker=${w.worker}; replacing it on the same device`,
      { event: 'worker-exit', service: w.service, worker: w.worker },
    );
  });
  events.on('worker-ready', (w, _r, restart) => {
    if (restart)
      log.info(`worker back: service=${w.service} worker=${w.worker}, sessions reloaded`, {
        event: 'worker-ready',
        service: w.service,
        worker: w.worker,
      });
  });
  events.on('worker-failed', (w, e) => {
    log.error(`worker could not reload: service=${w.service} worker=${w.worker}: ${e.message}`, {
      event: 'worker-failed',
      service: w.service,
      worker: w.worker,
    });
  });
  return events;
}

async function serveCommand(files: string[], opts: Options, io: CliIO): Promise<number> {
  requireFiles(files, 'serve', true);
  // Listen for the stop signals first: one that arrives while models load still stops cleanly.
  const stop = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  const log = createLogger({ ...logOptions(opts), write: io.stderr });
  const { spec, warnings } = loadSpec(files[0]!);
  const port = parsePort(opts.port, spec.server.port);
  for (const w of warnings) io.stderr(`${formatDiagnostic(w)}\n`);
  const discovery = discoverDevices({ env: io.env });
  const plan = planPlacement(spec, discovery.devices, {
    cpu: opts.cpu === true,
    services: opts.service ?? [],
    cudaVisibleDevices: discovery.cudaVisibleDevices,
  });
  for (const w of plan.warnings) io.stderr(`${formatDiagnostic(w)}\n`);
  // nvidia-smi numbers GPUs in PCI order, CUDA fastest first: make CUDA agree with the plan.
  process.env.CUDA_DEVICE_ORDER ??= 'PCI_BUS_ID';
  const switches = testSwitches(io.env);
  if (switches.forceCpuSessions) {
    log.warn(
      'test switch BENTO_TEST_FORCE_CPU_SESSIONS: every session opens on the CPU, planned devices are kept',
    );
  }
  const events = logRuntimeEvents(new EventEmitter<RuntimeEvents>(), log);
  const runtime = await startRuntime(plan, switches, events).catch((e: unknown) => {
    // A load failure is already a RuntimeError; anything else (a thread that died while it
    // loaded) still gets a plain message rather than an internal-error stack.
    if (e instanceof BentoError) throw e;
    throw new RuntimeError(
      'BENTO_ERR_RUNTIME_WORKER_DIED',
      `a worker thread died while loading its models: ${(e as Error).message}`,
      { cause: e },
    );
  });
  let server: RunningServer;
  try {
    server = await startServer(runtime, {
      host: opts.host ?? spec.server.host,
      port,
      version: version(),
      log,
      maxBodyBytes: spec.server.maxBodyMb * 1024 * 1024,
      testHooks: switches.testHooks,
    });
  } catch (e) {
    await runtime.close();
    const err = e as NodeJS.ErrnoException;
    throw new RuntimeError('BENTO_ERR_RUNTIME_LISTEN', `cannot listen: ${err.message}`, {
      cause: e,
    });
  }
  log.info(`bento-run ${version()} serving ${runtime.models.size} model(s) on ${server.url}`, {
    event: 'listening',
    url: server.url,
    port: server.port,
  });
  const signal = await stop;
  // drain() closes the listener at once; say so only after it has.
  const drained = server.drain();
  log.info(`${signal}: finishing in-flight requests, then stopping`, { event: 'draining', signal });
  await drained;
  await runtime.close();
  log.info('stopped', { event: 'stopped' });
  return EXIT_OK;
}
