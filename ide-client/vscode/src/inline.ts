// Ghost-text completion: an InlineCompletionItemProvider for every file that asks the sidecar's
// `llm/inlineCompletion` for the text between the prefix and the suffix around the cursor. It waits for a pause in
// typing, keeps at most one request in flight per document (a newer one cancels the older with `$/cancelRequest`),
// asks nothing while a selection or the suggest widget is active, and shows the first failure once (then only in the
// output channel and the status bar) until the settings change.
import * as vscode from 'vscode';
import type { Config } from './config';
import { textAround } from './cursor';
import { CANCELLED, SidecarConnection, SidecarError } from './protocol';

export interface InlineHost {
  sidecar(): Promise<SidecarConnection>;
  config: Config;
  log(line: string): void;
  notify(severity: 'error' | 'warning' | 'info', message: string, items: string[]): Thenable<string | undefined>;
  showOutput(): void;
}

/** What happened to inline completion requests so far (for other extensions and the tests). */
export interface InlineStats {
  requests: number;
  cancelled: number;
  shown: number;
  errors: number;
  errorsNotified: number;
}

function sleep(ms: number, token: vscode.CancellationToken): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    const sub = token.onCancellationRequested(done);
    function done() {
      clearTimeout(timer);
      sub.dispose();
      resolve();
    }
  });
}

export class InlineCompletions implements vscode.InlineCompletionItemProvider, vscode.Disposable {
  private readonly inflight = new Map<string, AbortController>();
  private readonly status = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Right, 100);
  private errorNotified = false;
  readonly stats: InlineStats = { requests: 0, cancelled: 0, shown: 0, errors: 0, errorsNotified: 0 };

  constructor(private readonly host: InlineHost) {
    this.status.command = 'llmSidecar.showOutput';
  }

  /** The settings changed: the next failure is shown again. */
  settingsChanged(): void {
    this.errorNotified = false;
    this.status.hide();
  }

  async provideInlineCompletionItems(
    document: vscode.TextDocument,
    position: vscode.Position,
    context: vscode.InlineCompletionContext,
    token: vscode.CancellationToken,
  ): Promise<vscode.InlineCompletionItem[] | undefined> {
    const settings = vscode.workspace.getConfiguration('llmSidecar', document);
    if (!settings.get<boolean>('inlineCompletion.enabled', true)) return undefined;
    if (!this.host.config.completionConfigured()) return undefined;
    // Not while the suggest widget shows an item, nor with a selection.
    if (context.selectedCompletionInfo) return undefined;
    const editor = vscode.window.activeTextEditor;
    if (editor && editor.document === document && editor.selections.some((s) => !s.isEmpty)) return undefined;
    if (context.triggerKind === vscode.InlineCompletionTriggerKind.Automatic) {
      const debounce = Math.max(0, Number(settings.get<number>('inlineCompletion.debounceMs', 300)) || 0);
      await sleep(debounce, token);
      if (token.isCancellationRequested) return undefined;
    }

    const key = document.uri.toString();
    const older = this.inflight.get(key);
    if (older) {
      this.host.log(`inline completion: a newer request for ${document.uri.path} cancels the running one`);
      older.abort(); // one request in flight per document: the newer one wins
    }
    const abort = new AbortController();
    this.inflight.set(key, abort);
    const sub = token.onCancellationRequested(() => abort.abort());
    const { prefix, suffix } = textAround(document.getText(), document.offsetAt(position));
    const path = document.uri.scheme === 'file' ? vscode.workspace.asRelativePath(document.uri, false) : undefined;
    this.stats.requests++;
    try {
      const sidecar = await this.host.sidecar();
      const result = await sidecar.inlineCompletion({ prefix, suffix, language: document.languageId, path }, abort.signal);
      if (token.isCancellationRequested || abort.signal.aborted) return undefined;
      this.status.hide();
      const items = (result.items ?? []).filter((i) => typeof i.insertText === 'string' && i.insertText.length > 0);
      this.stats.shown += items.length ? 1 : 0;
      return items.map((i) => new vscode.InlineCompletionItem(i.insertText, new vscode.Range(position, position)));
    } catch (err) {
      if (abort.signal.aborted || (err instanceof SidecarError && (err.code === CANCELLED || err.kind === 'cancelled'))) {
        this.stats.cancelled++;
        return undefined;
      }
      this.failed(err);
      return undefined;
    } finally {
      sub.dispose();
      if (this.inflight.get(key) === abort) this.inflight.delete(key);
    }
  }

  /** A failure: a notification the first time, then only the output channel and the status bar. */
  private failed(err: unknown): void {
    this.stats.errors++;
    const message = err instanceof Error ? err.message : String(err);
    const detail = err instanceof SidecarError && err.status !== undefined && !message.includes(String(err.status)) ? ` (HTTP ${err.status})` : '';
    this.host.log(`inline completion failed: ${message}${detail}`);
    this.status.text = '$(warning) LLM completion';
    this.status.tooltip = `Ghost-text completion failed: ${message}${detail}. Click for the output.`;
    this.status.show();
    if (this.errorNotified) return;
    this.errorNotified = true;
    this.stats.errorsNotified++;
    void this.host
      .notify('error', `LLM ghost-text completion failed: ${message}${detail}. Further failures go to the "LLM Sidecar" output until the settings change.`, ['Show Output'])
      .then((pick) => {
        if (pick === 'Show Output') this.host.showOutput();
      });
  }

  dispose(): void {
    for (const a of this.inflight.values()) a.abort();
    this.inflight.clear();
    this.status.dispose();
  }
}
