// The llm-sidecar protocol, free of the `vscode` API: spawning the binary, typed `llm/*` requests, `llm/chunk`
// routing by streamId, cancel, and restarting a sidecar that died. The VS Code glue (extension.ts) sits on top;
// the unit tests drive this module directly against the real binary.
import { spawn, ChildProcess } from 'node:child_process';
import {
  CancellationTokenSource,
  createMessageConnection,
  MessageConnection,
  ResponseError,
  StreamMessageReader,
  StreamMessageWriter,
} from 'vscode-jsonrpc/node';

/** One settings object in any of AutoDev's forms (see protocol/settings.schema.json). */
export type Settings = Record<string, unknown>;

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** Which settings a request uses: inline settings and/or a configured entry or profile. */
export interface SettingsSelection {
  settings?: Settings;
  llm?: string;
  modelType?: string;
  profile?: string;
}

export interface Chunk {
  streamId: string | number;
  seq: number;
  text: string;
  kind: 'content' | 'reasoning';
}

export interface CompleteResult {
  text: string;
  reasoning?: string;
  finishReason?: string;
  usage?: unknown;
  chunks: number;
  responseType: 'sse' | 'json' | 'ndjson';
  status: number;
  contentType?: string;
  timings: { firstByteMs?: number; firstChunkMs?: number; totalMs?: number; attempts?: number };
}

export interface Preset {
  name: string;
  aliases: string[];
  description: string;
  urlHint?: string | null;
  docs?: string | null;
  settings: Settings;
}

export interface Problem {
  field: string;
  message: string;
}

export interface ValidateResult {
  ok: boolean;
  problems: Problem[];
  normalized: Settings | null;
}

export interface Suggestion {
  path: string;
  sampleText: string;
}

export interface TestConnectionReport {
  ok: boolean;
  status?: number;
  contentType?: string;
  detectedResponseType?: string;
  firstByteMs?: number;
  totalMs?: number;
  sampleText?: string;
  matched?: boolean;
  suggestions: Suggestion[];
  finishReason?: string;
  error?: { code: number; message: string; data?: Record<string, unknown> };
}

/**
 * A failed request. `kind` is the protocol's `data.kind` (`http_status`, `no_match`, `cancelled`, ...), or
 * `sidecar_exited` when the process died while the request was running, or `rpc` for a JSON-RPC error without a kind.
 */
export class SidecarError extends Error {
  readonly code: number;
  readonly kind: string;
  readonly data: Record<string, unknown>;
  /** The text streamed before the failure (from the error's data, else from the chunks received). */
  readonly partialText: string;
  readonly partialReasoning: string;

  constructor(
    message: string,
    code: number,
    data: Record<string, unknown> | undefined,
    streamed?: { text: string; reasoning: string },
  ) {
    super(message);
    this.name = 'SidecarError';
    this.code = code;
    this.data = data ?? {};
    this.kind = typeof this.data.kind === 'string' ? this.data.kind : 'rpc';
    this.partialText = typeof this.data.partialText === 'string' ? this.data.partialText : streamed?.text ?? '';
    this.partialReasoning =
      typeof this.data.partialReasoning === 'string' ? this.data.partialReasoning : streamed?.reasoning ?? '';
  }

  get suggestions(): Suggestion[] {
    const s = this.data.suggestions;
    return Array.isArray(s) ? (s as Suggestion[]).filter((x) => x && typeof x.path === 'string') : [];
  }

  get status(): number | undefined {
    return typeof this.data.status === 'number' ? this.data.status : undefined;
  }

  get providerMessage(): string | undefined {
    return typeof this.data.providerMessage === 'string' ? this.data.providerMessage : undefined;
  }

  get problems(): Problem[] {
    const p = this.data.problems;
    return Array.isArray(p) ? (p as Problem[]) : [];
  }
}

export const CANCELLED = -32800;
export const REQUEST_FAILED = -32803;
export const INVALID_PARAMS = -32602;

export interface CompleteParams extends SettingsSelection {
  messages: ChatMessage[];
}

/** What `initializationOptions` and `workspace/didChangeConfiguration` configure. */
export interface SidecarConfiguration {
  customLlms?: unknown;
  profiles?: Record<string, Settings>;
  /** The settings of code completion: a settings object (with `fim`), or `{llm}` / `{profile}`. */
  completion?: Record<string, unknown>;
}

export interface InlineCompletionParams extends SettingsSelection {
  prefix: string;
  suffix: string;
  language?: string;
  path?: string;
}

export interface InlineCompletionResult {
  items: Array<{ insertText: string }>;
  timings?: { firstByteMs?: number; totalMs?: number };
  cached?: boolean;
}

export interface CompleteOptions {
  /** Called for every `llm/chunk` of this request, in `seq` order. */
  onChunk?: (chunk: Chunk) => void;
  /** Aborting sends `$/cancelRequest`; the promise then rejects with kind `cancelled` and the partial text. */
  signal?: AbortSignal;
}

export interface SidecarOptions {
  command: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Every piece of the sidecar's stderr. */
  onStderr?: (text: string) => void;
  /** An unexpected exit (not `dispose`). */
  onExit?: (code: number | null, signal: NodeJS.Signals | null) => void;
  /** `window/showMessage` from the sidecar (e.g. problems in a configured customLlms list); type 1 error … 4 log. */
  onShowMessage?: (type: number, message: string) => void;
  /** The `initializationOptions` sent with `initialize` (customLlms, profiles, completion). */
  initializationOptions?: SidecarConfiguration;
}

interface Inflight {
  streamId: string;
  text: string;
  reasoning: string;
  onChunk?: (chunk: Chunk) => void;
  fail: (err: SidecarError) => void;
}

export interface ServerInfo {
  name: string;
  version: string;
}

/** One running sidecar process and its JSON-RPC connection. */
export class SidecarConnection {
  readonly process: ChildProcess;
  private readonly connection: MessageConnection;
  private readonly inflight = new Map<string, Inflight>();
  private nextStream = 1;
  private exited = false;
  private disposed = false;
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly exitWaiters: Array<() => void> = [];
  serverInfo: ServerInfo | undefined;

  private constructor(proc: ChildProcess, private readonly options: SidecarOptions) {
    this.process = proc;
    this.connection = createMessageConnection(
      new StreamMessageReader(proc.stdout!),
      new StreamMessageWriter(proc.stdin!),
    );
    this.connection.onNotification('llm/chunk', (params: Chunk) => {
      const entry = this.inflight.get(String(params.streamId));
      if (!entry) return;
      if (params.kind === 'reasoning') entry.reasoning += params.text;
      else entry.text += params.text;
      entry.onChunk?.(params);
    });
    this.connection.onNotification('window/showMessage', (params: { type?: number; message?: string }) => {
      if (typeof params?.message === 'string') this.options.onShowMessage?.(Number(params.type ?? 3), params.message);
    });
    // Writes to a dead process must not crash the host.
    this.connection.onError(() => undefined);
    proc.stdin?.on('error', () => undefined);
    this.connection.listen();
  }

  /** Spawns the binary and waits until it answers `initialize`. */
  static async start(options: SidecarOptions): Promise<SidecarConnection> {
    const proc = spawn(options.command, options.args ?? [], {
      env: options.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      windowsHide: true,
    });
    const spawned = new Promise<void>((resolve, reject) => {
      proc.once('spawn', () => resolve());
      proc.once('error', (err) => reject(err));
    });
    proc.stderr?.setEncoding('utf8');
    proc.stderr?.on('data', (text: string) => options.onStderr?.(text));
    await spawned;
    const conn = new SidecarConnection(proc, options);
    proc.on('exit', (code, signal) => conn.handleExit(code, signal));
    proc.on('error', () => undefined);
    const init = (await Promise.race([
      conn.connection.sendRequest('initialize', {
        processId: process.pid,
        clientInfo: { name: 'llm-sidecar-vscode' },
        initializationOptions: options.initializationOptions ?? {},
      }),
      conn.exitPromise().then(() => {
        throw new SidecarError(
          `llm-sidecar exited before answering initialize (${conn.describeExit()})`,
          -1,
          { kind: 'sidecar_exited' },
        );
      }),
    ])) as { serverInfo?: ServerInfo };
    conn.serverInfo = init?.serverInfo;
    await conn.connection.sendNotification('initialized', {});
    return conn;
  }

  get isRunning(): boolean {
    return !this.exited;
  }

  get running(): number {
    return this.inflight.size;
  }

  private exitPromise(): Promise<void> {
    if (this.exited) return Promise.resolve();
    return new Promise((resolve) => this.exitWaiters.push(resolve));
  }

  private describeExit(): string {
    const e = this.exitInfo;
    if (!e) return 'running';
    return e.signal ? `signal ${e.signal}` : `exit code ${e.code}`;
  }

  private handleExit(code: number | null, signal: NodeJS.Signals | null): void {
    this.exited = true;
    this.exitInfo = { code, signal };
    for (const entry of [...this.inflight.values()]) {
      entry.fail(
        new SidecarError(
          `llm-sidecar stopped while answering (${this.describeExit()})`,
          -1,
          { kind: 'sidecar_exited', code, signal },
          { text: entry.text, reasoning: entry.reasoning },
        ),
      );
    }
    this.inflight.clear();
    this.connection.dispose();
    for (const w of this.exitWaiters.splice(0)) w();
    if (!this.disposed) this.options.onExit?.(code, signal);
  }

  private async request<R>(method: string, params: unknown, entry?: Omit<Inflight, 'fail'>, signal?: AbortSignal): Promise<R> {
    if (this.exited) {
      throw new SidecarError(`llm-sidecar is not running (${this.describeExit()})`, -1, { kind: 'sidecar_exited' });
    }
    const source = new CancellationTokenSource();
    const key = entry?.streamId ?? `req-${this.nextStream++}`;
    let fail!: (err: SidecarError) => void;
    const failed = new Promise<never>((_, reject) => {
      fail = reject;
    });
    const record: Inflight = { streamId: key, text: '', reasoning: '', ...entry, fail };
    this.inflight.set(key, record);
    const onAbort = () => source.cancel();
    if (signal) {
      if (signal.aborted) source.cancel();
      else signal.addEventListener('abort', onAbort, { once: true });
    }
    try {
      return await Promise.race([this.connection.sendRequest<R>(method, params, source.token), failed]);
    } catch (err) {
      if (err instanceof SidecarError) throw err;
      if (err instanceof ResponseError) {
        throw new SidecarError(err.message, err.code, err.data as Record<string, unknown> | undefined, record);
      }
      if (this.exited) {
        throw new SidecarError(`llm-sidecar stopped while answering (${this.describeExit()})`, -1, { kind: 'sidecar_exited' }, record);
      }
      throw new SidecarError(err instanceof Error ? err.message : String(err), -1, { kind: 'rpc' }, record);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.inflight.delete(key);
      source.dispose();
    }
  }

  /** `llm/complete`: streams chunks to `onChunk` and resolves with the final result. */
  complete(params: CompleteParams, options: CompleteOptions = {}): Promise<CompleteResult> {
    const streamId = `s${this.nextStream++}`;
    return this.request<CompleteResult>(
      'llm/complete',
      { ...params, streamId },
      { streamId, text: '', reasoning: '', onChunk: options.onChunk },
      options.signal,
    );
  }

  /**
   * `llm/inlineCompletion`: the text to insert between `prefix` and `suffix`. Aborting sends `$/cancelRequest`
   * (the promise then rejects with code -32800).
   */
  inlineCompletion(params: InlineCompletionParams, signal?: AbortSignal): Promise<InlineCompletionResult> {
    return this.request<InlineCompletionResult>('llm/inlineCompletion', params, undefined, signal);
  }

  async presets(): Promise<Preset[]> {
    const r = await this.request<{ presets: Preset[] }>('llm/presets', {});
    return r.presets;
  }

  validateSettings(selection: SettingsSelection): Promise<ValidateResult> {
    return this.request<ValidateResult>('llm/validateSettings', selection);
  }

  testConnection(selection: SettingsSelection & { messages?: ChatMessage[] }, signal?: AbortSignal): Promise<TestConnectionReport> {
    return this.request<TestConnectionReport>('llm/testConnection', selection, undefined, signal);
  }

  /** `workspace/didChangeConfiguration`: replaces the customLlms, profiles and/or completion settings it names. */
  async changeConfiguration(settings: SidecarConfiguration): Promise<void> {
    if (this.exited) return;
    await this.connection.sendNotification('workspace/didChangeConfiguration', { settings });
  }

  /** Closes stdin (the sidecar exits on EOF) and kills it if it has not exited after `graceMs`. */
  async dispose(graceMs = 2000): Promise<void> {
    this.disposed = true;
    if (this.exited) return;
    this.process.stdin?.end();
    const timer = setTimeout(() => this.process.kill('SIGKILL'), graceMs);
    await this.exitPromise();
    clearTimeout(timer);
  }
}

export interface SupervisorOptions extends SidecarOptions {
  /** First restart delay; doubled after every exit that follows a short run, up to `maxBackoffMs`. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** A process that ran this long resets the backoff. */
  stableMs?: number;
  /** Computes `initializationOptions` afresh for every start (restarts included); wins over the fixed one. */
  configuration?: () => Promise<SidecarConfiguration>;
  /** Called when a restart is scheduled after an unexpected exit. */
  onRestart?: (info: { code: number | null; signal: NodeJS.Signals | null; delayMs: number; restarts: number }) => void;
}

/**
 * Keeps one sidecar running: starts it on first use, and after an unexpected exit starts a new one after a
 * backoff delay. Requests made meanwhile wait for the new process.
 */
export class SidecarSupervisor {
  private current: Promise<SidecarConnection> | undefined;
  private connection: SidecarConnection | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private restartWait: Promise<void> | undefined;
  private endRestartWait: (() => void) | undefined;
  private backoffMs: number;
  private startedAt = 0;
  private disposed = false;
  restarts = 0;

  constructor(private options: SupervisorOptions) {
    this.backoffMs = options.initialBackoffMs ?? 500;
  }

  /** New spawn options (another binary path, initializationOptions) apply from the next start. */
  async reconfigure(options: SupervisorOptions): Promise<void> {
    this.options = options;
    await this.stopCurrent();
  }

  /** The running sidecar, starting (or waiting for the restart of) one if needed. */
  async get(): Promise<SidecarConnection> {
    if (this.disposed) throw new SidecarError('the sidecar has been shut down', -1, { kind: 'sidecar_exited' });
    if (this.restartWait) await this.restartWait;
    if (this.connection?.isRunning) return this.connection;
    if (!this.current) {
      this.current = this.spawn();
      this.current.catch(() => {
        this.current = undefined;
      });
    }
    return this.current;
  }

  get pid(): number | undefined {
    return this.connection?.isRunning ? this.connection.process.pid : undefined;
  }

  /** The running sidecar, if one is running now (none is started). */
  get live(): SidecarConnection | undefined {
    return this.connection?.isRunning ? this.connection : undefined;
  }

  private async spawn(): Promise<SidecarConnection> {
    let conn: SidecarConnection | undefined;
    const initializationOptions = this.options.configuration ? await this.options.configuration() : this.options.initializationOptions;
    conn = await SidecarConnection.start({
      ...this.options,
      initializationOptions,
      onExit: (code, signal) => this.onUnexpectedExit(conn, code, signal),
    });
    this.connection = conn;
    this.startedAt = Date.now();
    return conn;
  }

  private onUnexpectedExit(conn: SidecarConnection | undefined, code: number | null, signal: NodeJS.Signals | null): void {
    this.options.onExit?.(code, signal);
    if (!conn || this.connection !== conn || this.disposed) return;
    this.connection = undefined;
    this.current = undefined;
    const stable = this.options.stableMs ?? 60_000;
    if (Date.now() - this.startedAt >= stable) this.backoffMs = this.options.initialBackoffMs ?? 500;
    const delayMs = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.options.maxBackoffMs ?? 30_000);
    this.restarts++;
    this.options.onRestart?.({ code, signal, delayMs, restarts: this.restarts });
    this.restartWait = new Promise<void>((resolve) => {
      this.endRestartWait = resolve;
      this.restartTimer = setTimeout(() => {
        this.restartTimer = undefined;
        this.restartWait = undefined;
        this.endRestartWait = undefined;
        resolve();
        if (this.disposed) return;
        // Start the new process now, so it is ready before the next request.
        this.get().catch(() => undefined);
      }, delayMs);
    });
  }

  private async stopCurrent(): Promise<void> {
    const conn = this.connection;
    this.connection = undefined;
    this.current = undefined;
    if (this.restartTimer) {
      clearTimeout(this.restartTimer);
      this.restartTimer = undefined;
    }
    this.restartWait = undefined;
    this.endRestartWait?.();
    this.endRestartWait = undefined;
    await conn?.dispose();
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    await this.stopCurrent();
  }
}
