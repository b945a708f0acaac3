// The Markdown of an answer document. Free of the `vscode` API.

export type AnswerState = 'running' | 'done' | 'cancelled' | 'failed';

export interface AnswerView {
  prompt: string;
  reasoning: string;
  text: string;
  state: AnswerState;
  /** A short line shown under the answer when it stopped early (never the error text itself). */
  note?: string;
}

function quote(text: string): string {
  return text
    .split(/\r?\n/)
    .map((line) => (line ? `> ${line}` : '>'))
    .join('\n');
}

export function renderAnswer(view: AnswerView): string {
  const parts: string[] = ['### Prompt', '', quote(view.prompt.trim() || '(empty)'), ''];
  if (view.reasoning) {
    parts.push('### Reasoning', '', quote(view.reasoning), '');
  }
  parts.push('### Answer', '', view.text);
  if (view.state === 'running') parts.push('', '_…_');
  if (view.state === 'cancelled') parts.push('', '---', `_${view.note ?? 'Cancelled: the text above is what arrived before.'}_`);
  if (view.state === 'failed') parts.push('', '---', `_${view.note ?? 'Stopped by an error (see the notification).'}_`);
  return parts.join('\n') + '\n';
}
