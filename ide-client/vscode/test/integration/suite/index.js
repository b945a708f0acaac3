// The extension's tests, run inside VS Code's real extension host (code-server's), loaded through the workbench's
// extensionTestsPath. Each test drives the real commands against the real sidecar and a mock LLM server on
// 127.0.0.1 that this file starts. Results go to $LLM_SIDECAR_TEST_RESULTS (one JSON line per test) for the driver;
// a failure makes run() reject, which makes the extension host exit with code 1.
'use strict';
const vscode = require('vscode');
const fs = require('node:fs');
const path = require('node:path');
const assert = require('node:assert/strict');
const { startMockServer, DEFAULT_WORDS } = require('../../mock-llm-server.js');

const EXTENSION_ID = 'llm-sidecar.llm-sidecar';
const RESULTS = process.env.LLM_SIDECAR_TEST_RESULTS;
const BIN = process.env.LLM_SIDECAR_BIN;
const WAIT_MS = 60_000;
const G = vscode.ConfigurationTarget.Global;

function report(record) {
  console.log(`[llm-sidecar test] ${JSON.stringify(record)}`);
  if (RESULTS) fs.appendFileSync(RESULTS, JSON.stringify(record) + '\n');
}

async function waitFor(predicate, what, limitMs = WAIT_MS) {
  const start = Date.now();
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() - start > limitMs) throw new Error(`timed out after ${limitMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function config() {
  return vscode.workspace.getConfiguration('llmSidecar');
}

function answerDocument(uri) {
  return vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri);
}

/** The answer document's URI once `llmSidecar.ask` has opened it (before the answer is complete). */
async function openedAnswer(before) {
  return waitFor(() => {
    const doc = vscode.workspace.textDocuments.find((d) => d.uri.scheme === 'llm-sidecar-answer' && !before.has(d.uri.toString()));
    return doc && doc.uri.toString();
  }, 'the answer document to open');
}

function answerUris() {
  return new Set(vscode.workspace.textDocuments.filter((d) => d.uri.scheme === 'llm-sidecar-answer').map((d) => d.uri.toString()));
}

async function run() {
  const mock = await startMockServer();
  const ext = vscode.extensions.getExtension(EXTENSION_ID);
  const tests = [];
  const test = (name, fn) => tests.push({ name, fn });
  let api;

  const base = {
    customEngineServer: `${mock.url}/chat?delay=40`,
    customEngineResponseType: 'SSE',
    customEngineRequestFormat: '{"customFields": {"model": "mock-1", "stream": true}}',
    customEngineResponseFormat: '$.choices[0].delta.content',
  };
  async function configure(values) {
    for (const [k, v] of Object.entries(values)) await config().update(k, v, G);
  }

  test('the extension activates and its commands are registered', async () => {
    assert.ok(ext, `extension ${EXTENSION_ID} is loaded`);
    api = await ext.activate();
    assert.ok(Array.isArray(api.notifications));
    const commands = await vscode.commands.getCommands(true);
    for (const c of ['ask', 'cancel', 'setApiToken', 'choosePreset', 'testConnection', 'showOutput']) {
      assert.ok(commands.includes(`llmSidecar.${c}`), `llmSidecar.${c} registered`);
    }
    assert.ok(BIN, 'LLM_SIDECAR_BIN is set for the test');
    await configure({ path: BIN, ...base });
    assert.equal(await vscode.commands.executeCommand('llmSidecar.setApiToken', { token: 'sk-secret-test' }), true);
  });

  test('LLM: Ask streams the answer chunk by chunk into a Markdown document beside the editor', async () => {
    const sample = await vscode.workspace.openTextDocument({ language: 'javascript', content: 'function add(a, b) {\n  return a + b;\n}\n' });
    const editor = await vscode.window.showTextDocument(sample, vscode.ViewColumn.One);
    editor.selection = new vscode.Selection(0, 0, 2, 1);
    const before = answerUris();
    const versions = [];
    const sub = vscode.workspace.onDidChangeTextDocument((e) => {
      if (e.document.uri.scheme === 'llm-sidecar-answer') versions.push({ at: Date.now() - t0, text: e.document.getText() });
    });
    // A chunk every 200 ms: the workbench applies a provider's changes one at a time and merges those that arrive
    // while it is still applying one, so faster chunks may reach the document in fewer steps.
    const words = ['One', ' two', ' three', ' four', ' five', ' six', ' seven', ' eight', ' nine', ' ten.'];
    const answer = words.join('');
    await configure({ customEngineServer: `${mock.url}/chat?delay=200&words=${encodeURIComponent(words.join(','))}` });
    const requestsBefore = mock.requests.length;
    const t0 = Date.now();
    let result;
    try {
      result = await vscode.commands.executeCommand('llmSidecar.ask', { prompt: 'Explain this function' });
    } finally {
      sub.dispose();
    }
    assert.equal(result.state, 'done', JSON.stringify(result));
    assert.equal(result.text, answer);
    const doc = answerDocument(result.uri);
    assert.ok(doc, 'the answer document is open');
    assert.equal(doc.languageId, 'markdown');
    // The document follows the provider asynchronously: wait for the final rendering.
    await waitFor(() => doc.getText().includes(`### Answer\n\n${answer}\n`) && !doc.getText().includes('_…_'), 'the whole answer in the document, finished');
    // Chunk by chunk: the document showed growing prefixes of the answer before the end.
    const shown = versions.map((v) => ({ at: v.at, answer: (v.text.split('### Answer\n\n')[1] || '').replace(/\n[\s\S]*$/, '') }));
    const partials = new Set(shown.map((v) => v.answer).filter((t) => t && t !== answer));
    assert.ok(partials.size >= 2, `the document showed partial answers while streaming: ${JSON.stringify(shown)}, answer after ${Date.now() - t0} ms`);
    for (const p of partials) assert.ok(answer.startsWith(p), `partial ${JSON.stringify(p)} is a prefix`);
    // Beside the editor.
    const answerEditor = vscode.window.visibleTextEditors.find((e) => e.document.uri.toString() === result.uri);
    assert.ok(answerEditor, 'the answer is visible');
    assert.notEqual(answerEditor.viewColumn, editor.viewColumn);
    // The request: the selection went with the prompt, and the token came from secret storage.
    const req = mock.requests[requestsBefore];
    assert.equal(req.headers.authorization, 'Bearer sk-secret-test');
    assert.match(req.body.messages[0].content, /Explain this function[\s\S]*```javascript\nfunction add\(a, b\)/);
    assert.equal(req.body.model, 'mock-1');
  });

  test('LLM: Cancel stops a slow answer and the partial text stays', async () => {
    await configure({ customEngineServer: `${mock.url}/slow?delay=150` });
    const hangups = mock.hangups;
    const before = answerUris();
    const pending = vscode.commands.executeCommand('llmSidecar.ask', { prompt: 'Write a long story' });
    const uri = await openedAnswer(before);
    await waitFor(() => answerDocument(uri)?.getText().includes('w2 '), 'three chunks in the document');
    assert.equal(await vscode.commands.executeCommand('llmSidecar.cancel'), 1, 'one answer was running');
    const result = await pending;
    assert.equal(result.state, 'cancelled', JSON.stringify(result));
    assert.ok(result.text.startsWith('w0 w1 w2 '), result.text);
    await waitFor(() => answerDocument(uri)?.getText().includes('Cancelled'), 'the cancelled note');
    const text = answerDocument(uri).getText();
    assert.ok(text.includes(`### Answer\n\n${result.text}\n`), text);
    await waitFor(() => mock.hangups > hangups, 'the LLM connection to be closed');
    // Nothing more arrives after the cancel.
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(answerDocument(uri).getText(), text);
    assert.ok(!api.notifications.some((n) => n.severity === 'error' && /cancel/i.test(n.message)), 'a cancel is not an error');
  });

  test('closing the answer document cancels its request', async () => {
    const before = answerUris();
    const pending = vscode.commands.executeCommand('llmSidecar.ask', { prompt: 'Another long story' });
    const uri = await openedAnswer(before);
    await waitFor(() => answerDocument(uri)?.getText().includes('w1 '), 'two chunks');
    const tab = vscode.window.tabGroups.all.flatMap((g) => g.tabs).find((t) => t.input instanceof vscode.TabInputText && t.input.uri.toString() === uri);
    assert.ok(tab, 'the answer has a tab');
    await vscode.window.tabGroups.close(tab);
    const result = await pending;
    assert.equal(result.state, 'cancelled');
    assert.ok(result.text.startsWith('w0 w1 '), result.text);
  });

  test('a wrong JsonPath gives a notification with the suggested path, and "Use suggested path" writes it', async () => {
    await configure({ customEngineServer: `${mock.url}/chat?delay=5`, customEngineResponseFormat: '$.choices[0].delta.text' });
    const seen = api.notifications.length;
    const result = await vscode.commands.executeCommand('llmSidecar.ask', { prompt: 'Hello?' });
    assert.equal(result.state, 'failed');
    assert.equal(result.error.kind, 'no_match');
    const note = api.notifications.slice(seen).find((n) => n.severity === 'error');
    assert.ok(note, 'an error notification');
    assert.match(note.message, /\$\.choices\[0\]\.delta\.text/, 'it names the configured path (the server\'s message)');
    assert.match(note.message, /Suggested path: \$\.choices\[0\]\.delta\.content/);
    assert.deepEqual(note.items, ['Use suggested path']);
    const doc = answerDocument(result.uri);
    assert.ok(!doc.getText().includes('delta.text'), 'the error is not in the answer');
    // The driver clicks the notification's button in the browser, as a user would.
    await vscode.commands.executeCommand('notifications.showList');
    await waitFor(() => config().get('customEngineResponseFormat') === '$.choices[0].delta.content', 'the suggested path in the setting');
    const again = await vscode.commands.executeCommand('llmSidecar.ask', { prompt: 'Hello again' });
    assert.equal(again.state, 'done');
    assert.equal(again.text, DEFAULT_WORDS.join(''));
  });

  test('an HTTP error is a notification with the provider message and status, not answer text', async () => {
    await configure({ customEngineServer: `${mock.url}/status/401` });
    const seen = api.notifications.length;
    const result = await vscode.commands.executeCommand('llmSidecar.ask', { prompt: 'Hello?' });
    assert.equal(result.state, 'failed');
    assert.equal(result.error.kind, 'http_status');
    const note = api.notifications.slice(seen).find((n) => n.severity === 'error');
    assert.ok(note);
    assert.match(note.message, /401/);
    assert.match(note.message, /Incorrect API key provided/);
    assert.ok(!answerDocument(result.uri).getText().includes('Incorrect API key'));
  });

  test('reasoning is shown quoted above the answer', async () => {
    await configure({ customEngineServer: `${mock.url}/reasoning?delay=5`, reasoningFormat: '$.choices[0].delta.reasoning_content' });
    try {
      const result = await vscode.commands.executeCommand('llmSidecar.ask', { prompt: 'Think' });
      assert.equal(result.state, 'done');
      assert.equal(result.text, 'The answer is 42');
      assert.equal(result.reasoning, 'Thinking about it');
      const text = answerDocument(result.uri).getText();
      await waitFor(() => answerDocument(result.uri).getText().includes('### Answer\n\nThe answer is 42'), 'the answer');
      const t = answerDocument(result.uri).getText();
      assert.ok(t.indexOf('> Thinking about it') >= 0 && t.indexOf('> Thinking about it') < t.indexOf('### Answer'), t || text);
    } finally {
      await configure({ reasoningFormat: undefined });
    }
  });

  test('LLM: Test Connection reports success, and no_match with a suggestion', async () => {
    await configure({ customEngineServer: `${mock.url}/chat?delay=1` });
    const ok = await vscode.commands.executeCommand('llmSidecar.testConnection');
    assert.equal(ok.ok, true, JSON.stringify(ok));
    assert.equal(ok.sampleText, DEFAULT_WORDS.join(''));
    await configure({ customEngineResponseFormat: '$.choices[0].message.content' });
    const seen = api.notifications.length;
    const bad = await vscode.commands.executeCommand('llmSidecar.testConnection');
    assert.equal(bad.ok, false);
    assert.equal(bad.suggestions[0].path, '$.choices[0].delta.content');
    const note = api.notifications.slice(seen).find((n) => n.severity === 'error');
    assert.match(note.message, /Suggested path: \$\.choices\[0\]\.delta\.content/);
    await vscode.commands.executeCommand('notifications.showList');
    await waitFor(() => config().get('customEngineResponseFormat') === '$.choices[0].delta.content', 'the suggested path in the setting');
  });

  test('LLM: Choose Preset lists llm/presets and writes the setting', async () => {
    assert.equal(await vscode.commands.executeCommand('llmSidecar.choosePreset', { preset: 'deepseek' }), 'deepseek');
    assert.equal(config().get('preset'), 'deepseek');
    await configure({ preset: undefined });
  });

  test('LLM: Choose Preset without an argument offers llm/presets in a quick pick', async () => {
    const pending = vscode.commands.executeCommand('llmSidecar.choosePreset');
    let chosen;
    pending.then((r) => (chosen = { value: r }));
    // Accept the quick pick's first item once it is open, as a user pressing Enter.
    await waitFor(async () => {
      if (chosen) return true;
      await vscode.commands.executeCommand('workbench.action.acceptSelectedQuickOpenItem');
      await new Promise((r) => setTimeout(r, 300));
      return Boolean(chosen);
    }, 'the preset quick pick to be accepted');
    assert.ok(['openai', 'deepseek', 'ollama', 'anthropic', 'gemini', 'qwen', 'groq', 'mistral'].includes(chosen.value), String(chosen.value));
    assert.equal(config().get('preset'), chosen.value);
    await configure({ preset: undefined });
  });

  test('a token in settings still works, with a one-time warning offering to move it', async () => {
    await vscode.commands.executeCommand('llmSidecar.setApiToken', { token: '' });
    await configure({ customEngineToken: 'sk-legacy-setting', customEngineServer: `${mock.url}/chat?delay=1` });
    const seen = api.notifications.length;
    const r1 = await vscode.commands.executeCommand('llmSidecar.ask', { prompt: 'one' });
    assert.equal(r1.state, 'done');
    assert.equal(mock.requests.at(-1).headers.authorization, 'Bearer sk-legacy-setting');
    const r2 = await vscode.commands.executeCommand('llmSidecar.ask', { prompt: 'two' });
    assert.equal(r2.state, 'done');
    const warnings = api.notifications.slice(seen).filter((n) => n.severity === 'warning' && /customEngineToken/.test(n.message));
    assert.equal(warnings.length, 1, 'warned once');
    assert.deepEqual(warnings[0].items, ['Move to Secret Storage']);
    // Setting the token through the command moves it out of settings.
    await vscode.commands.executeCommand('llmSidecar.setApiToken', { token: 'sk-moved' });
    await waitFor(() => !config().inspect('customEngineToken').globalValue, 'the setting to be removed');
    await vscode.commands.executeCommand('llmSidecar.ask', { prompt: 'three' });
    assert.equal(mock.requests.at(-1).headers.authorization, 'Bearer sk-moved');
  });

  test('a sidecar that dies is restarted, said once', async () => {
    const pid = api.sidecarPid();
    assert.ok(pid, 'a sidecar is running');
    const seen = api.notifications.length;
    process.kill(pid, 'SIGKILL');
    await waitFor(() => api.notifications.slice(seen).some((n) => n.severity === 'warning' && /restarted/.test(n.message)), 'the restart notice');
    const result = await vscode.commands.executeCommand('llmSidecar.ask', { prompt: 'still there?' });
    assert.equal(result.state, 'done', JSON.stringify(result));
    assert.notEqual(api.sidecarPid(), pid);
    process.kill(api.sidecarPid(), 'SIGKILL');
    await waitFor(async () => {
      const r = await vscode.commands.executeCommand('llmSidecar.ask', { prompt: 'and now?' });
      return r.state === 'done';
    }, 'an answer after the second restart');
    const notices = api.notifications.slice(seen).filter((n) => /restarted/.test(n.message));
    assert.equal(notices.length, 1, 'said once');
  });

  test('a missing binary is a clear notification with the install command', async () => {
    await configure({ path: path.join(path.dirname(BIN), 'no-such-llm-sidecar') });
    try {
      const seen = api.notifications.length;
      const result = await vscode.commands.executeCommand('llmSidecar.ask', { prompt: 'hi' });
      assert.equal(result.state, 'failed');
      assert.equal(result.error.kind, 'missing_binary');
      const note = api.notifications.slice(seen).find((n) => n.severity === 'error');
      assert.match(note.message, /cargo install --path \./);
    } finally {
      await configure({ path: BIN });
    }
    const result = await vscode.commands.executeCommand('llmSidecar.ask', { prompt: 'hi' });
    assert.equal(result.state, 'done');
  });

  let failed = 0;
  for (const t of tests) {
    const start = Date.now();
    try {
      await t.fn();
      report({ name: t.name, ok: true, ms: Date.now() - start });
    } catch (err) {
      failed++;
      report({ name: t.name, ok: false, ms: Date.now() - start, error: String(err && err.stack ? err.stack : err) });
    }
  }
  await vscode.commands.executeCommand('llmSidecar.cancel');
  await mock.close();
  if (failed) throw new Error(`${failed} test(s) failed`);
}

module.exports = { run };
