// The answer documents of LLM: Ask: read-only virtual Markdown documents fed by a content provider, and a way to
// wait until a document shows the whole answer.
import * as vscode from 'vscode';
import { AnswerView, renderAnswer } from './render';

export const ANSWER_SCHEME = 'llm-sidecar-answer';

/**
 * The answer documents: read-only virtual Markdown documents. The workbench applies a provider's change by diffing
 * the whole text in a worker and drops a diff still running when the next change comes, so a fast stream could show
 * nothing until it ends. One change per document is in flight at a time: the next is sent once the document has
 * taken the last one (or after a fallback delay).
 */
export class AnswerDocuments implements vscode.TextDocumentContentProvider {
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

  /**
   * Resolves once the open document holds the current rendering of its answer (or is not open: nothing to wait
   * for). The limit only guards against a workbench that never applies the change; it is logged by the caller.
   */
  shown(uri: vscode.Uri, limitMs = 30_000): Promise<boolean> {
    const key = uri.toString();
    const current = () => {
      const view = this.views.get(key);
      const doc = vscode.workspace.textDocuments.find((d) => d.uri.toString() === key);
      return !doc || !view || doc.getText() === renderAnswer(view);
    };
    if (current()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const finish = (ok: boolean) => {
        clearTimeout(timer);
        changed.dispose();
        closed.dispose();
        resolve(ok);
      };
      const check = () => {
        if (current()) finish(true);
      };
      const changed = vscode.workspace.onDidChangeTextDocument((e) => {
        if (e.document.uri.toString() === key) check();
      });
      const closed = vscode.workspace.onDidCloseTextDocument((d) => {
        if (d.uri.toString() === key) finish(true);
      });
      const timer = setTimeout(() => finish(current()), limitMs);
    });
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

