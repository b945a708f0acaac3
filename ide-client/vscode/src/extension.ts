// VS Code glue: commands, settings, secret storage, the answer documents, the status bar and notifications, over
// the vscode-free protocol module.
import * as vscode from 'vscode';
import { findSidecarBinary, MissingBinaryError } from './binary';
import { Config, SECTION, USER_ONLY_SETTINGS } from './config';
import { Credentials } from './credentials';
import { InlineCompletions, InlineStats } from './inline';
import { Tokens } from './tokens';
import {
  ChatMessage,
  CompleteResult,
  Preset,
  SidecarConnection,
  SidecarError,
  SidecarSupervisor,
  Suggestion,
  TestConnectionReport,
} from './protocol';
import { AnswerDocuments, ANSWER_SCHEME } from './answers';
import { AnswerView } from './render';

export const USE_SUGGESTED_PATH = 'Use suggested path';

export interface AskArgs {
  prompt?: string;
}

export interface AskResult {
  uri: string;
  text: string;
  reasoning: string;
  state: 'done' | 'cancelled' | 'failed';
  error?: { kind: string; message: string; code: number };
  result?: CompleteResult;
}

export interface NotificationRecord {
  severity: 'error' | 'warning' | 'info';
  message: string;
  items: string[];
}

/** What `activate` returns: a view for other extensions and the tests (the notifications shown so far). */
export interface ExtensionApi {
  notifications: NotificationRecord[];
  onNotification: vscode.Event<NotificationRecord>;
  sidecarPid(): number | undefined;
  /** Counts of ghost-text requests (made, cancelled, shown, failed, failures notified). */
  inline: InlineStats;
  /** The origin (scheme://host:port) the chat settings send to now. */
  chatOrigin(): Promise<string | undefined>;
}

interface RunningAsk {
  id: number;
  uri: vscode.Uri;
  abort: AbortController;
}

class Extension implements vscode.Disposable {
  private readonly output = vscode.window.createOutputChannel('LLM Sidecar');
  private readonly status = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Left, 100);
  private readonly answers = new AnswerDocuments();
  private readonly running = new Map<number, RunningAsk>();
  private readonly notified = new vscode.EventEmitter<NotificationRecord>();
  private readonly disposables: vscode.Disposable[] = [];
  private supervisor: SidecarSupervisor | undefined;
  private supervisorPath: string | undefined;
  private nextAsk = 1;
  private restartAnnounced = false;
  private presetList: Preset[] | undefined;
  private readonly sidecarMessages = new Set<string>();
  private configSync: Promise<void> = Promise.resolve();
  private readonly credentials: Credentials;
  private readonly config: Config;
  private readonly inline: InlineCompletions;
  private readonly tokens: Tokens;
  readonly notifications: NotificationRecord[] = [];

  constructor(private readonly context: vscode.ExtensionContext) {
    this.credentials = new Credentials(context.secrets, context.globalState);
    this.config = new Config(this.credentials, {
      notify: (severity, message, items) => this.notify(severity, message, items),
      log: (line) => this.log(line),
      presetServer: (name) => this.presetServer(name),
    });
    this.tokens = new Tokens(this.credentials, this.config, context.globalState, {
      notify: (severity, message, items) => this.notify(severity, message, items),
      log: (line) => this.log(line),
      presetServer: (name) => this.presetServer(name),
    });
    this.inline = new InlineCompletions({
      sidecar: async () => {
        await this.configSync;
        return this.sidecar().get();
      },
      config: this.config,
      log: (line) => this.log(line),
      notify: (severity, message, items) => this.notify(severity, message, items),
      showOutput: () => this.output.show(true),
    });
    this.status.command = 'llmSidecar.cancel';
    this.status.text = '$(loading~spin) LLM: answering';
    this.status.tooltip = 'An LLM answer is streaming. Click to cancel (LLM: Cancel).';
    this.disposables.push(
      this.output,
      this.status,
      this.answers,
      this.notified,
      vscode.workspace.registerTextDocumentContentProvider(ANSWER_SCHEME, this.answers),
      vscode.window.tabGroups.onDidChangeTabs((e) => this.onTabsChanged(e)),
      // Changes are applied in order, and requests wait for them (see `configSync`).
      vscode.workspace.onDidChangeConfiguration((e) => this.queueSync(() => this.onConfigurationChanged(e))),
      this.credentials,
      this.credentials.onDidChange(() => this.queueSync(() => this.sendConfiguration())),
      this.inline,
      vscode.languages.registerInlineCompletionItemProvider({ pattern: '**' }, this.inline),
    );
  }

  /**
   * Settings or secrets changed: the work that follows (moving keys out of settings, telling the sidecar) runs in
   * order, and a request made after the change waits for it, so that it never goes out with the old configuration.
   */
  private queueSync(work: () => Promise<void>): void {
    this.configSync = this.configSync.then(work).catch((err) => this.log(`applying a settings change: ${err instanceof Error ? err.message : String(err)}`));
  }

  /** Settings changed: a new binary restarts the sidecar; the sidecar gets the new customLlms / completion. */
  private async onConfigurationChanged(e: vscode.ConfigurationChangeEvent): Promise<void> {
    if (!e.affectsConfiguration(SECTION)) return;
    this.inline.settingsChanged();
    if (e.affectsConfiguration(`${SECTION}.path`)) {
      void this.restartForNewBinary();
      return;
    }
    if (USER_ONLY_SETTINGS.some((k) => e.affectsConfiguration(k))) {
      try {
        await this.config.moveSecretsOutOfSettings();
      } catch (err) {
        this.log(`could not move secrets out of settings: ${err instanceof Error ? err.message : String(err)}`);
      }
      await this.sendConfiguration();
      if (e.affectsConfiguration(`${SECTION}.customEngineServer`) || e.affectsConfiguration(`${SECTION}.preset`)) {
        await this.tokens.sayIfNoToken();
      }
    }
  }

  /** `workspace/didChangeConfiguration` with the customLlms list and the completion settings, to a running sidecar. */
  private async sendConfiguration(): Promise<void> {
    const live = this.supervisor?.live;
    if (!live) return;
    try {
      await live.changeConfiguration(await this.config.sidecarConfiguration());
    } catch (err) {
      this.log(`could not send the configuration: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** The server URL of a built-in preset, from `llm/presets` (asked once per session). */
  private async presetServer(name: string): Promise<string | undefined> {
    if (!this.presetList) {
      try {
        // The running sidecar, else a short-lived one: this is also called while the supervisor starts one.
        const live = this.supervisor?.live;
        if (live) {
          this.presetList = await live.presets();
        } else {
          const location = findSidecarBinary({ configuredPath: this.config.value<string>('path') ?? '', extensionPath: this.context.extensionPath });
          const once = await SidecarConnection.start({ command: location.path, env: process.env });
          try {
            this.presetList = await once.presets();
          } finally {
            await once.dispose();
          }
        }
      } catch (err) {
        this.log(`could not list the presets: ${err instanceof Error ? err.message : String(err)}`);
        return undefined;
      }
    }
    const p = this.presetList.find((x) => x.name === name || x.aliases?.includes(name));
    const server = p?.settings?.customEngineServer;
    return typeof server === 'string' ? server : undefined;
  }

  api(): ExtensionApi {
    return {
      notifications: this.notifications,
      onNotification: this.notified.event,
      sidecarPid: () => this.supervisor?.pid,
      inline: this.inline.stats,
      chatOrigin: () => this.config.chatOrigin(),
    };
  }

  // ---- the sidecar process ----

  private log(line: string): void {
    this.output.appendLine(`[${new Date().toISOString()}] ${line}`);
  }

  private sidecar(): SidecarSupervisor {
    const configured = this.config.value<string>('path') ?? '';
    if (this.supervisor && this.supervisorPath === configured) return this.supervisor;
    if (this.supervisor) void this.restartForNewBinary();
    const location = findSidecarBinary({ configuredPath: configured, extensionPath: this.context.extensionPath });
    this.log(`using ${location.path} (from ${location.source})`);
    this.supervisorPath = configured;
    this.supervisor = new SidecarSupervisor({
      command: location.path,
      env: process.env,
      onStderr: (text) => this.output.append(text),
      configuration: () => this.config.sidecarConfiguration(),
      onShowMessage: (type, message) => {
        this.log(`llm-sidecar: ${message}`);
        if (type <= 2 && !this.sidecarMessages.has(message)) {
          this.sidecarMessages.add(message);
          void this.notify(type === 1 ? 'error' : 'warning', `llm-sidecar: ${message}`, []);
        }
      },
      onExit: (code, signal) => this.log(`llm-sidecar exited (${signal ? `signal ${signal}` : `code ${code}`})`),
      onRestart: ({ delayMs, restarts }) => {
        this.log(`restarting llm-sidecar in ${delayMs} ms (restart ${restarts})`);
        if (!this.restartAnnounced) {
          this.restartAnnounced = true;
          void this.notify('warning', 'llm-sidecar stopped unexpectedly and is being restarted. Details are in the "LLM Sidecar" output.', []);
        }
      },
    });
    return this.supervisor;
  }

  private async restartForNewBinary(): Promise<void> {
    const old = this.supervisor;
    this.supervisor = undefined;
    if (old) {
      this.log('llmSidecar.path changed: stopping the running sidecar');
      await old.dispose();
    }
  }

  // ---- notifications ----

  private notify(severity: NotificationRecord['severity'], message: string, items: string[]): Thenable<string | undefined> {
    const record = { severity, message, items };
    this.notifications.push(record);
    this.notified.fire(record);
    if (severity === 'error') return vscode.window.showErrorMessage(message, ...items);
    if (severity === 'warning') return vscode.window.showWarningMessage(message, ...items);
    return vscode.window.showInformationMessage(message, ...items);
  }

  /** Shows a failure as a notification: the provider's message and status, and the fix when there is one. */
  private reportError(err: unknown, what: string): void {
    if (err instanceof MissingBinaryError) {
      this.log(err.message);
      void this.notify('error', err.message, ['Open Settings']).then((pick) => {
        if (pick === 'Open Settings') void vscode.commands.executeCommand('workbench.action.openSettings', `${SECTION}.path`);
      });
      return;
    }
    if (!(err instanceof SidecarError)) {
      const message = err instanceof Error ? err.message : String(err);
      this.log(`${what} failed: ${message}`);
      void this.notify('error', `${what} failed: ${message}`, []);
      return;
    }
    this.log(`${what} failed: [${err.kind}] ${err.message}${Object.keys(err.data).length ? ` ${JSON.stringify(err.data)}` : ''}`);
    if (err.kind === 'no_match') {
      this.offerSuggestion(`${what} failed: ${err.message}`, err.suggestions);
      return;
    }
    let message = `${what} failed: ${err.message}`;
    const status = err.status;
    if (status !== undefined && !message.includes(String(status))) message += ` (HTTP ${status})`;
    if (err.problems.length) {
      message = `${what}: the settings have problems: ${err.problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`;
      void this.notify('error', message, ['Open Settings']).then((pick) => {
        if (pick === 'Open Settings') void vscode.commands.executeCommand('workbench.action.openSettings', SECTION);
      });
      return;
    }
    void this.notify('error', message, ['Show Output']).then((pick) => {
      if (pick === 'Show Output') this.output.show(true);
    });
  }

  /** A `no_match`: names the server's message and offers to write the suggested JsonPath into the setting. */
  private offerSuggestion(message: string, suggestions: Suggestion[]): void {
    const best = suggestions[0];
    if (!best) {
      void this.notify('error', message, []);
      return;
    }
    for (const s of suggestions) this.log(`suggested path ${s.path} would have produced ${JSON.stringify(s.sampleText)}`);
    const full = `${message} Suggested path: ${best.path} (would have produced "${best.sampleText}").`;
    void this.notify('error', full, [USE_SUGGESTED_PATH]).then(async (pick) => {
      if (pick !== USE_SUGGESTED_PATH) return;
      await this.writeSetting('customEngineResponseFormat', best.path);
      void this.notify('info', `llmSidecar.customEngineResponseFormat is now ${best.path}`, []);
    });
  }

  /**
   * Writes a setting where the user has it (folder, workspace), else in the user settings. A user-only setting
   * (where requests go) is always written to the user settings.
   */
  private async writeSetting(key: string, value: unknown): Promise<void> {
    const config = vscode.workspace.getConfiguration(SECTION);
    const seen = config.inspect(key);
    const userOnly = USER_ONLY_SETTINGS.includes(`${SECTION}.${key}`);
    const target =
      !userOnly && seen?.workspaceFolderValue !== undefined
        ? vscode.ConfigurationTarget.WorkspaceFolder
        : !userOnly && seen?.workspaceValue !== undefined
          ? vscode.ConfigurationTarget.Workspace
          : vscode.ConfigurationTarget.Global;
    await config.update(key, value, target);
  }

  // ---- commands ----

  async ask(args?: AskArgs): Promise<AskResult | undefined> {
    let prompt = typeof args?.prompt === 'string' ? args.prompt : undefined;
    if (prompt === undefined) {
      prompt = await vscode.window.showInputBox({
        title: 'LLM: Ask',
        prompt: 'Ask about the selected code (or anything)',
        ignoreFocusOut: true,
      });
      if (!prompt) return undefined;
    }
    const editor = vscode.window.activeTextEditor;
    let content = prompt;
    if (editor && editor.document.uri.scheme !== ANSWER_SCHEME && !editor.selection.isEmpty) {
      const code = editor.document.getText(editor.selection);
      content = `${prompt}\n\n\`\`\`${editor.document.languageId}\n${code}\n\`\`\``;
    }
    const messages: ChatMessage[] = [{ role: 'user', content }];

    const id = this.nextAsk++;
    const uri = vscode.Uri.from({ scheme: ANSWER_SCHEME, path: `/LLM answer ${id}.md` });
    const view: AnswerView = { prompt, reasoning: '', text: '', state: 'running' };
    const abort = new AbortController();
    this.running.set(id, { id, uri, abort });
    this.updateStatus();
    this.answers.set(uri, view);
    try {
      const doc = await vscode.workspace.openTextDocument(uri);
      await vscode.window.showTextDocument(doc, { viewColumn: vscode.ViewColumn.Beside, preview: false, preserveFocus: true });

      await this.configSync;
      const sidecar = await this.sidecar().get();
      const result = await sidecar.complete(
        { ...(await this.tokens.selection()), messages },
        {
          signal: abort.signal,
          onChunk: (chunk) => {
            if (chunk.kind === 'reasoning') view.reasoning += chunk.text;
            else view.text += chunk.text;
            this.answers.set(uri, view);
          },
        },
      );
      // The result is the whole answer (a JSON response streams no chunks).
      view.text = result.text;
      view.reasoning = result.reasoning ?? view.reasoning;
      view.state = 'done';
      this.answers.set(uri, view);
      await this.showAnswer(uri, id);
      this.log(`answer ${id}: ${result.chunks} chunks, HTTP ${result.status}, ${result.timings?.totalMs ?? '?'} ms`);
      return { uri: uri.toString(), text: view.text, reasoning: view.reasoning, state: 'done', result };
    } catch (err) {
      if (err instanceof SidecarError) {
        view.text = err.partialText || view.text;
        view.reasoning = err.partialReasoning || view.reasoning;
      }
      const cancelled = err instanceof SidecarError && err.kind === 'cancelled';
      view.state = cancelled ? 'cancelled' : 'failed';
      this.answers.set(uri, view);
      await this.showAnswer(uri, id);
      if (cancelled) this.log(`answer ${id} cancelled after ${view.text.length} characters`);
      else this.reportError(err, 'LLM: Ask');
      const e =
        err instanceof SidecarError
          ? { kind: err.kind, message: err.message, code: err.code }
          : { kind: err instanceof MissingBinaryError ? 'missing_binary' : 'error', message: String((err as Error)?.message ?? err), code: -1 };
      return { uri: uri.toString(), text: view.text, reasoning: view.reasoning, state: cancelled ? 'cancelled' : 'failed', error: e };
    } finally {
      this.running.delete(id);
      this.updateStatus();
    }
  }

  /** Waits until the answer document holds the whole answer, so that `llmSidecar.ask` resolves after it. */
  private async showAnswer(uri: vscode.Uri, id: number): Promise<void> {
    if (!(await this.answers.shown(uri))) this.log(`answer ${id}: the document did not take the last change within 30 s`);
  }

  /** Cancels every running answer; returns how many were running. */
  cancel(): number {
    const n = this.running.size;
    for (const r of this.running.values()) r.abort.abort();
    if (n === 0) vscode.window.setStatusBarMessage('LLM: nothing to cancel', 3000);
    return n;
  }

  private onTabsChanged(e: vscode.TabChangeEvent): void {
    for (const tab of e.closed) {
      const input = tab.input;
      if (!(input instanceof vscode.TabInputText) || input.uri.scheme !== ANSWER_SCHEME) continue;
      const key = input.uri.toString();
      for (const r of this.running.values()) {
        if (r.uri.toString() === key) {
          this.log('answer document closed: cancelling its request');
          r.abort.abort();
        }
      }
    }
  }

  private updateStatus(): void {
    if (this.running.size > 0) {
      this.status.text = this.running.size > 1 ? `$(loading~spin) LLM: answering (${this.running.size})` : '$(loading~spin) LLM: answering';
      this.status.show();
    } else {
      this.status.hide();
    }
  }

  async choosePreset(args?: { preset?: string }): Promise<string | undefined> {
    let presets: Preset[];
    try {
      presets = await (await this.sidecar().get()).presets();
    } catch (err) {
      this.reportError(err, 'LLM: Choose Preset');
      return undefined;
    }
    let chosen: Preset | undefined;
    if (typeof args?.preset === 'string') {
      chosen = presets.find((p) => p.name === args.preset || p.aliases?.includes(args.preset!));
      if (!chosen) {
        void this.notify('error', `No preset named ${args.preset}`, []);
        return undefined;
      }
    } else {
      const current = vscode.workspace.getConfiguration(SECTION).get<string>('preset');
      const pick = await vscode.window.showQuickPick(
        presets.map((p) => ({
          label: p.name,
          description: [p.name === current ? '(current)' : '', p.aliases?.length ? p.aliases.join(', ') : ''].filter(Boolean).join(' '),
          detail: p.urlHint ? `${p.description} (${p.urlHint})` : p.description,
          preset: p,
        })),
        { title: 'LLM: Choose Preset', matchOnDetail: true, placeHolder: 'A built-in starting point; your other llmSidecar settings override it' },
      );
      chosen = pick?.preset;
    }
    if (!chosen) return undefined;
    await this.writeSetting('preset', chosen.name);
    const hints = [chosen.urlHint ? `Set llmSidecar.customEngineServer: ${chosen.urlHint}.` : ''].filter(Boolean);
    void this.notify('info', `Preset ${chosen.name} selected. ${hints.join(' ')}`.trim(), []);
    // The configuration change says so too; this covers a preset chosen again in the same session.
    await this.tokens.sayIfNoToken();
    return chosen.name;
  }

  async testConnection(): Promise<TestConnectionReport | undefined> {
    let report: TestConnectionReport;
    try {
      await this.configSync;
      const sidecar = await this.sidecar().get();
      const selection = await this.tokens.selection();
      report = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: 'LLM: testing the connection…', cancellable: true },
        (_progress, token) => {
          const abort = new AbortController();
          token.onCancellationRequested(() => abort.abort());
          return sidecar.testConnection(selection, abort.signal);
        },
      );
    } catch (err) {
      this.reportError(err, 'LLM: Test Connection');
      return undefined;
    }
    this.log(`test connection: ${JSON.stringify(report)}`);
    if (report.ok) {
      const parts = [
        `HTTP ${report.status}`,
        report.contentType,
        report.detectedResponseType ? `read as ${report.detectedResponseType}` : undefined,
        report.firstByteMs !== undefined ? `first byte ${report.firstByteMs} ms` : undefined,
        report.totalMs !== undefined ? `total ${report.totalMs} ms` : undefined,
      ].filter(Boolean);
      void this.notify('info', `Connection OK (${parts.join(', ')}). Sample answer: "${(report.sampleText ?? '').slice(0, 200)}"`, []);
      return report;
    }
    const error = report.error;
    const message = `LLM: Test Connection failed: ${error?.message ?? 'unknown error'}`;
    if (report.suggestions?.length || error?.data?.kind === 'no_match') {
      const suggestions = report.suggestions?.length ? report.suggestions : new SidecarError('', 0, error?.data).suggestions;
      this.offerSuggestion(message, suggestions);
    } else {
      this.reportError(new SidecarError(error?.message ?? 'unknown error', error?.code ?? -1, error?.data), 'LLM: Test Connection');
    }
    return report;
  }

  /** At startup: key-like values left in settings go to secret storage; the old single token gets its origin. */
  async startup(): Promise<void> {
    try {
      await this.config.moveSecretsOutOfSettings();
      const origin = await this.config.chatOrigin();
      if (await this.credentials.migrateLegacy(origin)) this.log(`the stored API token now belongs to ${origin}`);
    } catch (err) {
      this.log(`startup: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  register(): void {
    const reg = (name: string, fn: (...args: any[]) => unknown) =>
      this.disposables.push(vscode.commands.registerCommand(`${SECTION}.${name}`, fn));
    reg('ask', (args?: AskArgs) => this.ask(args));
    reg('cancel', () => this.cancel());
    reg('setApiToken', (args?: { token?: string; origin?: string }) => this.tokens.setApiToken(args));
    reg('choosePreset', (args?: { preset?: string }) => this.choosePreset(args));
    reg('testConnection', () => this.testConnection());
    reg('showOutput', () => this.output.show(true));
  }

  async shutdown(): Promise<void> {
    for (const r of this.running.values()) r.abort.abort();
    await this.supervisor?.dispose();
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}

let active: Extension | undefined;

export function activate(context: vscode.ExtensionContext): ExtensionApi {
  active = new Extension(context);
  active.register();
  context.subscriptions.push(active);
  void active.startup();
  return active.api();
}

export async function deactivate(): Promise<void> {
  await active?.shutdown();
  active = undefined;
}
