/**
 * What every command shares: the IO it writes through, the parsed flags, the shape of a command
 * in the CLI's table, and what tests may inject into `main()`.
 */
import type { RuntimeOptions } from '../runtime/types.js';
import type { ServerOptions } from '../server/http.js';

export interface CliIO {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: NodeJS.ProcessEnv;
  /** stderr is a terminal: `serve` shows its loading progress in place. */
  readonly stderrIsTTY?: boolean;
  /** The terminal's width, for lines updated in place. */
  readonly stderrColumns?: number;
}

/** The flags, as node:util parseArgs gives them; each command says which it takes. */
export interface Options {
  help?: boolean;
  version?: boolean;
  format?: string;
  host?: string;
  port?: string;
  'grpc-port'?: string;
  cpu?: boolean;
  strict?: boolean;
  force?: boolean;
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
  target?: string;
  'storage-uri'?: string;
  'models-volume'?: string;
  'auth-secret'?: string;
}

/** Not flags but code: what a test entry (test/fixtures/bento-run-fixture.ts) passes to `main()`. */
export interface CliInject {
  /** For `serve`'s runtime: e.g. a fixture worker file. */
  readonly runtime?: RuntimeOptions;
  /** For `serve`'s server: routes served besides the protocol's. */
  readonly routes?: ServerOptions['routes'];
  /** For `doctor`: the script its CUDA probe's child process runs. */
  readonly cudaProbeChild?: string;
}

/** A command as the CLI's table lists it; `O` is the flags it reads. */
export interface CommandDefinition<O = Options> {
  readonly summary: string;
  readonly usage: string;
  /** Flags this command accepts besides --help, --log-level and --log-format. */
  readonly options: readonly (keyof O & string)[];
  readonly run: (
    files: string[],
    opts: O,
    io: CliIO,
    inject: CliInject,
  ) => Promise<number> | number;
}
