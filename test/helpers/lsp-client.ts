/**
 * A small LSP client over stdio, for tests that drive a real language server (yaml-language-server)
 * the way an editor does: initialize, answer the server's configuration requests, open documents,
 * wait for their diagnostics, ask for completions and hovers, shut down.
 *
 * Everything waits on events (responses, notifications, process exit), never on fixed sleeps, and
 * every wait has a timeout that fails with a message saying what did not arrive, plus the tail of
 * what the server logged.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  createMessageConnection,
  type MessageConnection,
  StreamMessageReader,
  StreamMessageWriter,
} from 'vscode-jsonrpc/node.js';

// The few LSP types the tests use (the protocol package is not a dependency of this project).
export interface Position {
  /** 0-based. */
  line: number;
  /** 0-based, in UTF-16 code units. */
  character: number;
}
export interface Range {
  start: Position;
  end: Position;
}
export interface Diagnostic {
  range: Range;
  /** 1 error, 2 warning, 3 information, 4 hint. */
  severity?: number;
  code?: number | string;
  source?: string;
  /** A string by the protocol; typed `unknown` so a test can check that a server really sent one. */
  message: unknown;
}
export interface MarkupContent {
  kind: 'markdown' | 'plaintext';
  value: string;
}
export interface CompletionItem {
  label: string;
  kind?: number;
  detail?: string;
  documentation?: string | MarkupContent;
  insertText?: string;
  textEdit?: { range: Range; newText: string } | { insert: Range; replace: Range; newText: string };
}
export interface CompletionList {
  isIncomplete: boolean;
  items: CompletionItem[];
}
type MarkedString = string | { language: string; value: string };
export interface Hover {
  contents: MarkupContent | MarkedString | MarkedString[];
  range?: Range;
}
interface PublishDiagnosticsParams {
  uri: string;
  version?: number;
  diagnostics: Diagnostic[];
}
interface ConfigurationItem {
  scopeUri?: string;
  section?: string;
}

/** The `yaml` settings section, as the VS Code YAML extension sends it (the subset used here). */
export interface YamlSettings {
  validate?: boolean;
  completion?: boolean;
  hover?: boolean;
  /** Schema URL or path -> glob(s) of the files it applies to. */
  schemas?: Record<string, string | string[]>;
  schemaStore?: { enable: boolean; url?: string };
  kubernetesCRDStore?: { enable: boolean; url?: string };
  [setting: string]: unknown;
}

export interface LspClientOptions {
  /** Server script, run with this Node (`process.execPath`). Default: yaml-language-server's. */
  serverScript?: string;
  /** Extra server arguments; `--stdio` is always passed. */
  serverArgs?: string[];
  /** Node options put before the script, e.g. `--import=<file URL>` to preload a module. */
  nodeArgs?: string[];
  /** Working directory of the server process. */
  cwd?: string;
  /** `rootUri` sent in `initialize`. Default null. */
  rootUri?: string | null;
  /**
   * The `yaml` section answered to `workspace/configuration`. Merged over the defaults: validate,
   * completion and hover on, the schema store and the Kubernetes CRD store off (no network).
   */
  yaml?: YamlSettings;
  /** Longest wait for any one response or notification, in ms. Default 20 000. */
  timeoutMs?: number;
  /**
   * Whether `start` waits until the server has asked for, and been answered, the `yaml` settings
   * section (yaml-language-server asks right after `initialized`), so that documents opened next
   * are validated with these settings. Default true.
   */
  waitForConfiguration?: boolean;
}

export const DEFAULT_YAML_SETTINGS: YamlSettings = {
  validate: true,
  completion: true,
  hover: true,
  schemaStore: { enable: false },
  kubernetesCRDStore: { enable: false },
};

/** Path of yaml-language-server's executable script, as installed for this project. */
export function yamlLanguageServerScript(): string {
  const require = createRequire(import.meta.url);
  return join(
    dirname(require.resolve('yaml-language-server/package.json')),
    'bin',
    'yaml-language-server',
  );
}

/** The `file://` URI of an absolute path, as editors send it. */
export function fileUri(path: string): string {
  return pathToFileURL(path).href;
}

/** The text of a hover, whatever shape the server chose. */
export function hoverText(hover: Hover | null): string {
  if (hover === null) return '';
  const parts = Array.isArray(hover.contents) ? hover.contents : [hover.contents];
  return parts.map((p) => (typeof p === 'string' ? p : p.value)).join('\n');
}

interface DiagnosticsWaiter {
  resolve: (diagnostics: Diagnostic[]) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

const LOG_LINES_KEPT = 40;
const STDERR_KEPT = 256 * 1024;

export class LspClient {
  /** Every `workspace/configuration` section the server asked for, in order. */
  readonly configurationRequests: string[] = [];
  /** Server->client requests other than `workspace/configuration`, answered null. */
  readonly otherServerRequests: string[] = [];
  /** The latest diagnostics the server published, by URI. */
  readonly diagnostics = new Map<string, Diagnostic[]>();

  private readonly log: string[] = [];
  private stderrText = '';
  private readonly waiters = new Map<string, DiagnosticsWaiter[]>();
  private readonly exited: Promise<void>;
  private exitInfo: string | null = null;
  private readonly versions = new Map<string, number>();
  private closed = false;
  private yamlSectionServed!: () => void;
  private readonly yamlSectionAsked = new Promise<void>((resolve) => {
    this.yamlSectionServed = resolve;
  });

  private constructor(
    private readonly child: ChildProcess,
    private readonly connection: MessageConnection,
    private readonly yaml: YamlSettings,
    private readonly timeoutMs: number,
  ) {
    this.exited = new Promise((resolve) => {
      child.once('close', (code, signal) => {
        this.exitInfo = signal ? `killed by ${signal}` : `exit code ${code}`;
        this.failAllWaiters(
          new Error(`language server exited (${this.exitInfo})${this.logTail()}`),
        );
        resolve();
      });
    });
    child.once('error', (err) => this.remember(`[spawn error] ${err.message}`));
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      if (this.stderrText.length < STDERR_KEPT) this.stderrText += chunk;
      for (const line of chunk.split('\n'))
        if (line.trim() !== '') this.remember(`[stderr] ${line}`);
    });

    connection.onRequest('workspace/configuration', (params: { items: ConfigurationItem[] }) => {
      return params.items.map((item) => {
        this.configurationRequests.push(item.section ?? '');
        if (item.section === 'yaml') this.yamlSectionServed();
        return this.configurationSection(item.section);
      });
    });
    // client/registerCapability, window/workDoneProgress/create, workspace/codeLens/refresh, ...
    connection.onRequest((method) => {
      this.otherServerRequests.push(method);
      return null;
    });
    connection.onNotification(
      'textDocument/publishDiagnostics',
      (params: PublishDiagnosticsParams) => {
        this.diagnostics.set(params.uri, params.diagnostics);
        const waiting = this.waiters.get(params.uri);
        if (waiting === undefined) return;
        this.waiters.delete(params.uri);
        for (const w of waiting) {
          clearTimeout(w.timer);
          w.resolve(params.diagnostics);
        }
      },
    );
    connection.onNotification('window/logMessage', (params: { type: number; message: string }) => {
      this.remember(`[log ${params.type}] ${params.message}`);
    });
    connection.onNotification('window/showMessage', (params: { type: number; message: string }) => {
      this.remember(`[show ${params.type}] ${params.message}`);
    });
    // Telemetry and custom notifications (yaml/schema/...): ignored.
    connection.onNotification(() => {});
    // After exit the pipes close; writing to them is expected to fail then.
    connection.onError(([error]) => this.remember(`[connection error] ${error.message}`));
    connection.listen();
  }

  /** Spawns the server and runs `initialize` + `initialized`. */
  static async start(options: LspClientOptions = {}): Promise<LspClient> {
    const script = options.serverScript ?? yamlLanguageServerScript();
    const args = [...(options.nodeArgs ?? []), script, '--stdio', ...(options.serverArgs ?? [])];
    const child = spawn(process.execPath, args, {
      cwd: options.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const connection = createMessageConnection(
      new StreamMessageReader(child.stdout!),
      new StreamMessageWriter(child.stdin!),
    );
    const client = new LspClient(
      child,
      connection,
      { ...DEFAULT_YAML_SETTINGS, ...options.yaml },
      options.timeoutMs ?? 20_000,
    );
    try {
      await client.initialize(options.rootUri ?? null);
      if (options.waitForConfiguration ?? true) {
        await withTimeout(
          client.yamlSectionAsked,
          client.timeoutMs,
          () =>
            `the server did not ask for the yaml settings (workspace/configuration) within ` +
            `${client.timeoutMs} ms of initialized${client.logTail()}`,
        );
      }
    } catch (err) {
      await client.shutdown();
      throw err;
    }
    return client;
  }

  private async initialize(rootUri: string | null): Promise<void> {
    await this.request('initialize', {
      processId: process.pid,
      clientInfo: { name: 'bento-run-tests' },
      locale: 'en',
      rootUri,
      workspaceFolders: null,
      capabilities: {
        workspace: { configuration: true, workspaceFolders: false },
        textDocument: {
          synchronization: { dynamicRegistration: false, didSave: false },
          completion: {
            dynamicRegistration: false,
            completionItem: {
              snippetSupport: true,
              documentationFormat: ['markdown', 'plaintext'],
            },
          },
          hover: { dynamicRegistration: false, contentFormat: ['markdown', 'plaintext'] },
          publishDiagnostics: { relatedInformation: true },
        },
      },
    });
    await this.connection.sendNotification('initialized', {});
  }

  private configurationSection(section: string | undefined): unknown {
    switch (section) {
      case 'yaml':
        return this.yaml;
      case 'http':
        return { proxy: '', proxyStrictSSL: false };
      default:
        // '[yaml]' (language-scoped editor settings), 'editor', 'yaml.format', ...: none set.
        return null;
    }
  }

  /**
   * Sends `textDocument/didOpen` and resolves with the first diagnostics published for `uri` after
   * it. `uri` should be the document's real `file://` URI: relative `$schema` modelines resolve
   * against it.
   */
  async open(uri: string, text: string, languageId = 'yaml'): Promise<Diagnostic[]> {
    const published = this.nextDiagnostics(uri, `textDocument/didOpen of ${uri}`);
    this.versions.set(uri, 1);
    await this.connection.sendNotification('textDocument/didOpen', {
      textDocument: { uri, languageId, version: 1, text },
    });
    return published;
  }

  /**
   * Replaces the whole text of an open document, as an unsaved edit. Requests sent afterwards see
   * the new text (the server handles messages in order); its diagnostics come later, debounced.
   */
  async change(uri: string, text: string): Promise<void> {
    const version = (this.versions.get(uri) ?? 1) + 1;
    this.versions.set(uri, version);
    await this.connection.sendNotification('textDocument/didChange', {
      textDocument: { uri, version },
      contentChanges: [{ text }],
    });
  }

  async close(uri: string): Promise<void> {
    this.versions.delete(uri);
    await this.connection.sendNotification('textDocument/didClose', { textDocument: { uri } });
  }

  /** `textDocument/completion`; always a list of items, whichever shape the server answered. */
  async completion(uri: string, position: Position): Promise<CompletionItem[]> {
    const result = await this.request<CompletionList | CompletionItem[] | null>(
      'textDocument/completion',
      { textDocument: { uri }, position },
    );
    if (result === null) return [];
    return Array.isArray(result) ? result : result.items;
  }

  async hover(uri: string, position: Position): Promise<Hover | null> {
    return this.request<Hover | null>('textDocument/hover', { textDocument: { uri }, position });
  }

  /** Everything the server wrote on stderr so far (the first 256 KiB). */
  get stderr(): string {
    return this.stderrText;
  }

  /** What the server logged lately (stderr, window/logMessage), for failure messages. */
  logTail(): string {
    return this.log.length === 0
      ? ''
      : `\nlanguage server log (last lines):\n${this.log.join('\n')}`;
  }

  /** `shutdown` + `exit`, then waits for the process to end; kills it if it does not. Idempotent. */
  async shutdown(): Promise<void> {
    if (this.closed) return this.exited;
    this.closed = true;
    const graceMs = Math.min(this.timeoutMs, 5_000);
    if (this.exitInfo === null) {
      try {
        await this.request('shutdown', undefined, graceMs);
        await this.connection.sendNotification('exit');
      } catch {
        // Unresponsive or already gone: killed below.
      }
      if (!(await settlesWithin(this.exited, graceMs))) this.child.kill('SIGKILL');
      await this.exited;
    }
    this.connection.dispose();
  }

  private request<R>(method: string, params?: unknown, timeoutMs = this.timeoutMs): Promise<R> {
    const sent =
      params === undefined
        ? this.connection.sendRequest<R>(method)
        : this.connection.sendRequest<R>(method, params);
    // A server that dies fails the request at once rather than at the timeout.
    const died = this.exited.then(() => {
      throw new Error(`the language server exited (${this.exitInfo}) before answering`);
    });
    return withTimeout(
      Promise.race([sent, died]),
      timeoutMs,
      () => `no answer to ${method} within ${timeoutMs} ms`,
    ).catch((err: unknown) => {
      const message = err instanceof Error ? err.message : String(err);
      throw new Error(`${method} failed: ${message}${this.logTail()}`);
    });
  }

  private nextDiagnostics(uri: string, after: string): Promise<Diagnostic[]> {
    return new Promise((resolve, reject) => {
      if (this.exitInfo !== null) {
        reject(new Error(`language server already exited (${this.exitInfo})`));
        return;
      }
      const waiter: DiagnosticsWaiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          const list = this.waiters.get(uri) ?? [];
          this.waiters.set(
            uri,
            list.filter((w) => w !== waiter),
          );
          reject(
            new Error(
              `no textDocument/publishDiagnostics for ${uri} within ${this.timeoutMs} ms after ` +
                `${after} (configuration sections asked: ${JSON.stringify(this.configurationRequests)})` +
                this.logTail(),
            ),
          );
        }, this.timeoutMs),
      };
      const list = this.waiters.get(uri) ?? [];
      list.push(waiter);
      this.waiters.set(uri, list);
    });
  }

  private failAllWaiters(error: Error): void {
    for (const list of this.waiters.values()) {
      for (const w of list) {
        clearTimeout(w.timer);
        w.reject(error);
      }
    }
    this.waiters.clear();
  }

  private remember(line: string): void {
    this.log.push(line.length > 2000 ? `${line.slice(0, 2000)}...` : line);
    if (this.log.length > LOG_LINES_KEPT) this.log.shift();
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message())), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const settled = promise.then(
    () => true,
    () => true,
  );
  try {
    return await Promise.race([settled, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
