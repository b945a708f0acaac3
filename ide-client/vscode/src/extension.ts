// VS Code glue: commands, settings, secret storage, the answer documents, the status bar and notifications, over
// the vscode-free protocol module.
import * as vscode from 'vscode';
import { findSidecarBinary, MissingBinaryError } from './binary';
import {
  ChatMessage,
  CompleteResult,
  Preset,
  SidecarError,
  SidecarSupervisor,
  Suggestion,
  TestConnectionReport,
} from './protocol';
import { AnswerView, renderAnswer } from './render';
import { buildSettings } from './settings';

const SECTION = 'llmSidecar';
const SECRET_KEY = 'llmSidecar.customEngineToken';
const TOKEN_WARNING_SHOWN = 'llmSidecar.tokenWarningShown';
const ANSWER_SCHEME = 'llm-sidecar-answer';
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
}

interface RunningAsk {
  id: number;
  uri: vscode.Uri;
  abort: AbortController;
}

/**
 * The answer documents: read-only virtual Markdown documents. The workbench applies a provider's change by diffing
 * the whole text in a worker and drops a diff still running when the next change comes, so a fast stream could show
 * nothing until it ends. One change per document is in flight at a time: the next is sent once the document has
 * taken the last one (or after a fallback delay).
 */
class AnswerDocuments implements vscode.TextDocumentContentProvider {
  private readonly views = new Map<string, AnswerView>();
  private readonly sent = new Map<string, { text: string; inflight: boolean; dirty: boolean; timer?: NodeJS.Timeout }>();
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  private readonly subscription: vscode.Disposable;
  readonly onDidChange = this.changed.event;

  constructor() {
    this.subscription = vscode.workspace.onDidChangeTextDocument((e) => {
      if (e.document.uri.scheme === ANSWER_SCHEME) this.settled(e.document.uri);
    });
  }

  provideTextDocumentContent(uri: vscode.Uri): string {
    const view = this.views.get(uri.toString());
    const text = view ? renderAnswer(view) : '';
    const state = this.sent.get(uri.toString());
    if (state) state.text = text;
    else this.sent.set(uri.toString(), { text, inflight: false, dirty: false });
    return text;
  }

  set(uri: vscode.Uri, view: AnswerView): void {
    this.views.set(uri.toString(), view);
    this.push(uri);
  }

  private push(uri: vscode.Uri): void {
    const key = uri.toString();
    const state = this.sent.get(key);
    if (!state) return; // not opened yet: it gets the current text when it is
    if (state.inflight) {
      state.dirty = true;
      return;
    }
    const view = this.views.get(key);
    if (!view || renderAnswer(view) === state.text) return;
    state.inflight = true;
    state.dirty = false;
    state.timer = setTimeout(() => this.settled(uri), 3000);
    this.changed.fire(uri);
  }

  private settled(uri: vscode.Uri): void {
    const state = this.sent.get(uri.toString());
    if (!state || !state.inflight) return;
    clearTimeout(state.timer);
    state.inflight = false;
    if (state.dirty) this.push(uri);
  }

  forget(uri: vscode.Uri): void {
    const state = this.sent.get(uri.toString());
    if (state) clearTimeout(state.timer);
    this.sent.delete(uri.toString());
    this.views.delete(uri.toString());
  }

  dispose(): void {
    for (const state of this.sent.values()) clearTimeout(state.timer);
    this.subscription.dispose();
    this.changed.dispose();
  }
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
  readonly notifications: NotificationRecord[] = [];

  constructor(private readonly context: vscode.ExtensionContext) {
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
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration(`${SECTION}.path`)) void this.restartForNewBinary();
      }),
    );
  }

  api(): ExtensionApi {
    return {
      notifications: this.notifications,
      onNotification: this.notified.event,
      sidecarPid: () => this.supervisor?.pid,
    };
  }

  // ---- the sidecar process ----

  private log(line: string): void {
    this.output.appendLine(`[${new Date().toISOString()}] ${line}`);
  }

  private sidecar(): SidecarSupervisor {
    const configured = vscode.workspace.getConfiguration(SECTION).get<string>('path') ?? '';
    if (this.supervisor && this.supervisorPath === configured) return this.supervisor;
    if (this.supervisor) void this.restartForNewBinary();
    const location = findSidecarBinary({ configuredPath: configured, extensionPath: this.context.extensionPath });
    this.log(`using ${location.path} (from ${location.source})`);
    this.supervisorPath = configured;
    this.supervisor = new SidecarSupervisor({
      command: location.path,
      env: process.env,
      onStderr: (text) => this.output.append(text),
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

  /** Writes a setting where the user has it (folder, workspace), else in the user settings. */
  private async writeSetting(key: string, value: unknown): Promise<void> {
    const config = vscode.workspace.getConfiguration(SECTION);
    const seen = config.inspect(key);
    const target =
      seen?.workspaceFolderValue !== undefined
        ? vscode.ConfigurationTarget.WorkspaceFolder
        : seen?.workspaceValue !== undefined
          ? vscode.ConfigurationTarget.Workspace
          : vscode.ConfigurationTarget.Global;
    await config.update(key, value, target);
  }

  // ---- settings and the token ----

  private async token(): Promise<string | undefined> {
    const secret = await this.context.secrets.get(SECRET_KEY);
    if (secret) return secret;
    const legacy = vscode.workspace.getConfiguration(SECTION).get<string>('customEngineToken');
    if (legacy) {
      if (!this.context.globalState.get<boolean>(TOKEN_WARNING_SHOWN)) {
        await this.context.globalState.update(TOKEN_WARNING_SHOWN, true);
        const move = 'Move to Secret Storage';
        void this.notify(
          'warning',
          'llmSidecar.customEngineToken keeps your API token in settings.json. It still works; move it to VS Code\'s secret storage?',
          [move],
        ).then(async (pick) => {
          if (pick === move) await this.moveLegacyToken(legacy);
        });
      }
      return legacy;
    }
    return undefined;
  }

  private async moveLegacyToken(token: string): Promise<void> {
    await this.context.secrets.store(SECRET_KEY, token);
    const config = vscode.workspace.getConfiguration(SECTION);
    const seen = config.inspect('customEngineToken');
    if (seen?.globalValue !== undefined) await config.update('customEngineToken', undefined, vscode.ConfigurationTarget.Global);
    if (seen?.workspaceValue !== undefined) await config.update('customEngineToken', undefined, vscode.ConfigurationTarget.Workspace);
    if (seen?.workspaceFolderValue !== undefined) {
      await config.update('customEngineToken', undefined, vscode.ConfigurationTarget.WorkspaceFolder);
    }
    void this.notify('info', 'The API token is now in secret storage and was removed from settings.', []);
  }

  private async settings() {
    const config = vscode.workspace.getConfiguration(SECTION);
    const explicit = (key: string) => {
      const seen = config.inspect(key);
      return seen?.workspaceFolderValue ?? seen?.workspaceValue ?? seen?.globalValue;
    };
    return buildSettings(explicit, await this.token());
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

      const sidecar = await this.sidecar().get();
      const result = await sidecar.complete(
        { settings: await this.settings(), messages },
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

  async setApiToken(args?: { token?: string }): Promise<boolean> {
    let token = typeof args?.token === 'string' ? args.token : undefined;
    if (token === undefined) {
      token = await vscode.window.showInputBox({
        title: 'LLM: Set API Token',
        prompt: 'The API token of the LLM server (kept in VS Code\'s secret storage). Empty removes it.',
        password: true,
        ignoreFocusOut: true,
      });
      if (token === undefined) return false;
    }
    if (token) await this.context.secrets.store(SECRET_KEY, token);
    else await this.context.secrets.delete(SECRET_KEY);
    const legacy = vscode.workspace.getConfiguration(SECTION).get<string>('customEngineToken');
    if (token && legacy) await this.moveLegacyToken(token);
    void this.notify('info', token ? 'API token saved in secret storage.' : 'API token removed.', []);
    return true;
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
    const needsToken = !(await this.token());
    const hints = [
      chosen.urlHint ? `Set llmSidecar.customEngineServer: ${chosen.urlHint}.` : '',
      needsToken ? 'Set the token with LLM: Set API Token if the server needs one.' : '',
    ].filter(Boolean);
    void this.notify('info', `Preset ${chosen.name} selected. ${hints.join(' ')}`.trim(), []);
    return chosen.name;
  }

  async testConnection(): Promise<TestConnectionReport | undefined> {
    let report: TestConnectionReport;
    try {
      const sidecar = await this.sidecar().get();
      const settings = await this.settings();
      report = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: 'LLM: testing the connection…', cancellable: true },
        (_progress, token) => {
          const abort = new AbortController();
          token.onCancellationRequested(() => abort.abort());
          return sidecar.testConnection({ settings }, abort.signal);
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

  register(): void {
    const reg = (name: string, fn: (...args: any[]) => unknown) =>
      this.disposables.push(vscode.commands.registerCommand(`${SECTION}.${name}`, fn));
    reg('ask', (args?: AskArgs) => this.ask(args));
    reg('cancel', () => this.cancel());
    reg('setApiToken', (args?: { token?: string }) => this.setApiToken(args));
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
  return active.api();
}

export async function deactivate(): Promise<void> {
  await active?.shutdown();
  active = undefined;
}
