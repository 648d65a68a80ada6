/**
 * The command line: argument parsing, dispatch to the commands (src/commands/, one file each)
 * and error reporting, nothing else.
 * Exit codes (DESIGN.md): 0 success, 2 invalid spec or usage, 1 runtime failure.
 */
import { parseArgs } from 'node:util';
import { printDiagnostics } from './commands/common.js';
import { doctorCommand } from './commands/doctor.js';
import { initCommand } from './commands/init.js';
import { planCommand } from './commands/plan.js';
import { schemaCommand } from './commands/schema.js';
import { serveCommand } from './commands/serve.js';
import type { CliInject, CliIO, CommandDefinition, Options } from './commands/types.js';
import { validateCommand } from './commands/validate.js';
import {
  BentoError,
  EXIT_OK,
  EXIT_RUNTIME,
  EXIT_USAGE,
  PlanError,
  SpecError,
  UsageError,
} from './errors.js';
import { dockerfileCommand, k8sCommand } from './k8s/command.js';
import { packageVersion } from './util/package.js';

export const defaultIO: CliIO = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  env: process.env,
  stderrIsTTY: process.stderr.isTTY === true,
  ...(process.stderr.columns === undefined ? {} : { stderrColumns: process.stderr.columns }),
};

/** Every flag any command takes; each command lists the ones it accepts. */
const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
  format: { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
  'grpc-port': { type: 'string' },
  target: { type: 'string' },
  'storage-uri': { type: 'string' },
  'models-volume': { type: 'string' },
  'auth-secret': { type: 'string' },
  cpu: { type: 'boolean' },
  strict: { type: 'boolean' },
  force: { type: 'boolean' },
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

const COMMANDS: Record<string, CommandDefinition> = {
  init: initCommand,
  validate: validateCommand,
  plan: planCommand,
  serve: serveCommand,
  doctor: doctorCommand,
  schema: schemaCommand,
  k8s: k8sCommand,
  dockerfile: dockerfileCommand,
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(width)}  ${c.summary}`);
  return `bento-run ${packageVersion()}: serve ONNX models on CPUs and GPUs from one bentofile.yaml

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

/**
 * Runs the command line `argv` (without node and the script) and resolves with the exit code.
 * `inject` is for test entries only: what they put in place of the shipped runtime and routes.
 */
export async function main(
  argv: readonly string[],
  io: CliIO = defaultIO,
  inject: CliInject = {},
): Promise<number> {
  try {
    return await dispatch(argv, io, inject);
  } catch (e) {
    return reportError(e, io, argv.includes('--format=json') || hasJsonFormat(argv));
  }
}

function hasJsonFormat(argv: readonly string[]): boolean {
  const i = argv.indexOf('--format');
  return i >= 0 && argv[i + 1] === 'json';
}

function parse(command: CommandDefinition, args: readonly string[]) {
  try {
    return parseArgs({
      args: [...args],
      options: OPTIONS,
      allowPositionals: true,
      strict: true,
    }) as { values: Options; positionals: string[] };
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\n\nUsage: ${command.usage}\n`);
  }
}

async function dispatch(argv: readonly string[], io: CliIO, inject: CliInject): Promise<number> {
  const first = argv[0];
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    io.stdout(usage());
    return first === undefined ? EXIT_USAGE : EXIT_OK;
  }
  if (first === '--version' || first === '-v') {
    io.stdout(`${packageVersion()}\n`);
    return EXIT_OK;
  }
  // `bento-run spec.yaml` is `bento-run serve spec.yaml`.
  const isSpecPath = /\.ya?ml$/i.test(first) && !(first in COMMANDS);
  const name = isSpecPath ? 'serve' : first;
  const command = COMMANDS[name];
  if (!command) {
    const hint = first.startsWith('-') ? `unknown option ${first}` : `unknown command \`${first}\``;
    throw new UsageError(`${hint}\n\n${usage()}`);
  }
  const { values: opts, positionals } = parse(command, isSpecPath ? argv : argv.slice(1));
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
  return command.run(positionals, opts, io, inject);
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
