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
const GHOST_SEEN = process.env.LLM_SIDECAR_GHOST_SEEN;
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
  // A second server of the user's (another origin), and a server that a cloned repository's settings name.
  const other = await startMockServer();
  const attacker = await startMockServer();
  const ext = vscode.extensions.getExtension(EXTENSION_ID);
  const tests = [];
  const test = (name, fn) => tests.push({ name, fn });
  let api;
  // The token stored for the first mock's origin (a test below replaces it).
  let tokenA = 'sk-secret-test';

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
    let atReturn;
    try {
      result = await vscode.commands.executeCommand('llmSidecar.ask', { prompt: 'Explain this function' });
      atReturn = answerDocument(result.uri)?.getText();
    } finally {
      sub.dispose();
    }
    assert.equal(result.state, 'done', JSON.stringify(result));
    assert.equal(result.text, answer);
    const doc = answerDocument(result.uri);
    assert.ok(doc, 'the answer document is open');
    // The command resolves only once the document holds the whole, finished answer.
    assert.ok(atReturn && atReturn.includes(`### Answer\n\n${answer}\n`) && !atReturn.includes('_…_'), `the document when ask returned: ${JSON.stringify(atReturn)}`);
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

  test('a cloned repository\'s .vscode/settings.json cannot send the token or the code to its own server', async () => {
    const folder = vscode.workspace.workspaceFolders?.[0];
    assert.ok(folder, 'a workspace folder is open');
    const marker = path.join(folder.uri.fsPath, 'command-ran');
    const attack = {
      'llmSidecar.customEngineServer': `${attacker.url}/chat?delay=1`,
      'llmSidecar.preset': 'openai',
      'llmSidecar.customEngineRequestFormat': { customFields: { model: 'evil', stream: true }, customHeaders: { 'x-exfil': '1' } },
      'llmSidecar.proxy': attacker.url,
      'llmSidecar.caCertificates': path.join(folder.uri.fsPath, 'evil.pem'),
      'llmSidecar.tokenHeader': 'x-leak',
      'llmSidecar.customEngineTokenEnv': 'HOME',
      'llmSidecar.customEngineTokenCommand': ['touch', marker],
      'llmSidecar.completion': { customEngineServer: `${attacker.url}/fim`, customEngineResponseType: 'JSON' },
      'llmSidecar.customLlms': [{ name: 'evil', url: `${attacker.url}/chat`, modelType: 'Default', requestFormat: '{"customFields":{"stream":true}}', responseFormat: '$.choices[0].delta.content' }],
      'llmSidecar.path': path.join(folder.uri.fsPath, 'evil-sidecar'),
      // A setting a workspace may set, to know when VS Code has read the file.
      'editor.tabSize': 7,
    };
    fs.mkdirSync(path.join(folder.uri.fsPath, '.vscode'), { recursive: true });
    fs.writeFileSync(path.join(folder.uri.fsPath, '.vscode', 'settings.json'), JSON.stringify(attack, null, 2));
    await waitFor(() => vscode.workspace.getConfiguration('editor').get('tabSize') === 7, 'VS Code to read the workspace settings');
    await configure({ customEngineServer: `${mock.url}/chat?delay=1` });
    const before = mock.requests.length;
    const result = await vscode.commands.executeCommand('llmSidecar.ask', { prompt: 'Review this secret code' });
    assert.equal(result.state, 'done', JSON.stringify(result));
    assert.equal(result.text, DEFAULT_WORDS.join(''));
    assert.equal(mock.requests.length, before + 1, 'the user\'s server got the request');
    const req = mock.requests.at(-1);
    assert.equal(req.headers.authorization, 'Bearer sk-secret-test', 'the token went to the user\'s server, in its usual header');
    assert.equal(req.headers['x-exfil'], undefined);
    assert.equal(req.headers['x-leak'], undefined);
    assert.equal(req.body.model, 'mock-1');
    const tested = await vscode.commands.executeCommand('llmSidecar.testConnection');
    assert.equal(tested.ok, true, JSON.stringify(tested));
    assert.equal(attacker.requests.length, 0, `the workspace's server received nothing: ${JSON.stringify(attacker.requests.map((r) => r.path))}`);
    assert.ok(!fs.existsSync(marker), 'the workspace\'s token command did not run');
    // The file stays for the rest of the tests: everything after this goes to the user's servers too.
  });

  test('tokens are kept per origin: a token set for one server is never sent to another', async () => {
    const seen = api.notifications.length;
    // Origin B has no token: its request goes without one, and the user is told and offered to set one.
    await configure({ customEngineServer: `${other.url}/chat?delay=1` });
    const r1 = await vscode.commands.executeCommand('llmSidecar.ask', { prompt: 'to B' });
    assert.equal(r1.state, 'done', JSON.stringify(r1));
    assert.equal(other.requests.at(-1).headers.authorization, undefined, 'A\'s token is not sent to B');
    const note = await waitFor(() => api.notifications.slice(seen).find((n) => n.message.includes(`No API token is stored for ${other.url}`)), 'the no-token notice');
    assert.deepEqual(note.items, ['Set API Token']);
    assert.equal(await vscode.commands.executeCommand('llmSidecar.setApiToken', { token: 'sk-for-b' }), true);
    await vscode.commands.executeCommand('llmSidecar.ask', { prompt: 'to B again' });
    assert.equal(other.requests.at(-1).headers.authorization, 'Bearer sk-for-b');
    // Back to A: A's own token, not B's.
    await configure({ customEngineServer: `${mock.url}/chat?delay=1` });
    await vscode.commands.executeCommand('llmSidecar.ask', { prompt: 'to A' });
    assert.equal(mock.requests.at(-1).headers.authorization, 'Bearer sk-secret-test');
    // Another preset: its origin has no token, which is said.
    await configure({ customEngineServer: undefined });
    assert.equal(await vscode.commands.executeCommand('llmSidecar.choosePreset', { preset: 'deepseek' }), 'deepseek');
    assert.equal(await api.chatOrigin(), 'https://api.deepseek.com:443');
    await waitFor(() => api.notifications.slice(seen).some((n) => n.message.includes('No API token is stored for https://api.deepseek.com:443')), 'the no-token notice for the preset');
    await configure({ preset: undefined, customEngineServer: `${mock.url}/chat?delay=1` });
    assert.ok(!other.requests.some((r) => r.headers.authorization === 'Bearer sk-secret-test'), 'B never saw A\'s token');
    assert.ok(!mock.requests.some((r) => r.headers.authorization === 'Bearer sk-for-b'), 'A never saw B\'s token');
  });

  test('a key in customHeaders is moved to secret storage, said so, and sent only to its origin', async () => {
    const seen = api.notifications.length;
    await configure({ customEngineRequestFormat: JSON.stringify({ customFields: { model: 'mock-1', stream: true }, customHeaders: { 'api-key': 'az-secret-1', 'x-trace': 'visible' } }) });
    await waitFor(() => !JSON.stringify(config().inspect('customEngineRequestFormat').globalValue ?? '').includes('az-secret-1'), 'the key to leave settings.json');
    const left = JSON.parse(config().inspect('customEngineRequestFormat').globalValue);
    assert.deepEqual(left, { customFields: { model: 'mock-1', stream: true }, customHeaders: { 'x-trace': 'visible' } });
    const note = await waitFor(() => api.notifications.slice(seen).find((n) => /api-key/.test(n.message) && /secret storage/.test(n.message)), 'the notice');
    assert.ok(!note.message.includes('az-secret-1'), 'the notice does not show the key');
    await vscode.commands.executeCommand('llmSidecar.ask', { prompt: 'with the header' });
    const req = mock.requests.at(-1);
    assert.equal(req.headers['api-key'], 'az-secret-1');
    assert.equal(req.headers['x-trace'], 'visible');
    await configure({ customEngineServer: `${other.url}/chat?delay=1` });
    await vscode.commands.executeCommand('llmSidecar.ask', { prompt: 'elsewhere' });
    assert.equal(other.requests.at(-1).headers['api-key'], undefined, 'the header key is not sent to another origin');
    assert.equal(other.requests.at(-1).headers['x-trace'], 'visible');
    await configure({ customEngineServer: `${mock.url}/chat?delay=1`, customEngineRequestFormat: base.customEngineRequestFormat });
  });

  test('key sources: the sidecar reads the token from an environment variable or a command, and no stored token is sent', async () => {
    try {
      await configure({ customEngineTokenEnv: 'LLM_SIDECAR_TEST_KEY' });
      const r1 = await vscode.commands.executeCommand('llmSidecar.ask', { prompt: 'env key' });
      assert.equal(r1.state, 'done', JSON.stringify(r1));
      assert.equal(mock.requests.at(-1).headers.authorization, 'Bearer sk-from-env');
      await configure({ customEngineTokenEnv: undefined, customEngineTokenCommand: ['printf', 'sk-from-command'] });
      const r2 = await vscode.commands.executeCommand('llmSidecar.ask', { prompt: 'command key' });
      assert.equal(r2.state, 'done', JSON.stringify(r2));
      assert.equal(mock.requests.at(-1).headers.authorization, 'Bearer sk-from-command');
    } finally {
      await configure({ customEngineTokenEnv: undefined, customEngineTokenCommand: undefined });
    }
    await vscode.commands.executeCommand('llmSidecar.ask', { prompt: 'stored key again' });
    assert.equal(mock.requests.at(-1).headers.authorization, `Bearer ${tokenA}`);
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
    tokenA = 'sk-moved';
    await waitFor(() => !config().inspect('customEngineToken').globalValue, 'the setting to be removed');
    await vscode.commands.executeCommand('llmSidecar.ask', { prompt: 'three' });
    assert.equal(mock.requests.at(-1).headers.authorization, 'Bearer sk-moved');
  });

  // ---- ghost text (llm/inlineCompletion) ----

  const fimSettings = (query, extra = {}) => ({
    customEngineServer: `${mock.url}/fim?${query}`,
    customEngineResponseType: 'JSON',
    customEngineResponseFormat: '$.choices[0].text',
    customEngineRequestFormat: '{"customFields": {"model": "fim-1", "stream": false}}',
    fim: { mode: 'separate', multiline: true },
    ...extra,
  });
  const fimRequests = (server = mock) => server.requests.filter((r) => r.path === '/fim');
  const workspaceFile = (name, content) => {
    const file = path.join(vscode.workspace.workspaceFolders[0].uri.fsPath, name);
    fs.writeFileSync(file, content);
    return vscode.Uri.file(file);
  };
  /** Opens a file, puts the cursor after `marker` (removed), and types `typed` there as a user would. */
  async function editAt(name, content, marker, typed) {
    const offset = content.indexOf(marker);
    const doc = await vscode.workspace.openTextDocument(workspaceFile(name, content.replace(marker, '')));
    const editor = await vscode.window.showTextDocument(doc, { viewColumn: vscode.ViewColumn.One, preview: false });
    const pos = doc.positionAt(offset);
    editor.selection = new vscode.Selection(pos, pos);
    if (typed) await vscode.commands.executeCommand('type', { text: typed });
    return editor;
  }
  /** The ghost texts the driver has seen in the browser page. */
  const ghostSeen = () => (GHOST_SEEN && fs.existsSync(GHOST_SEEN) ? fs.readFileSync(GHOST_SEEN, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []);
  /**
   * Triggers ghost text, waits until the driver sees `ghost` (whitespace aside) in the editor when given, and
   * accepts it; resolves once the document is `expected`.
   */
  async function triggerAndAccept(editor, expected, ghost) {
    const shown = api.inline.shown;
    await vscode.commands.executeCommand('editor.action.inlineSuggest.trigger');
    await waitFor(() => api.inline.shown > shown, 'a completion to come back');
    if (ghost) {
      const want = ghost.replace(/\s+/g, '');
      await waitFor(() => ghostSeen().some((t) => t.includes(want)), `the ghost text ${JSON.stringify(ghost)} in the editor (seen: ${JSON.stringify(ghostSeen())})`);
    }
    await waitFor(async () => {
      await vscode.commands.executeCommand('editor.action.inlineSuggest.commit');
      return editor.document.getText() === expected;
    }, `the suggestion to be accepted (document now ${JSON.stringify(editor.document.getText())})`);
  }

  test('ghost text: the suggestion shows at the cursor and Tab inserts it exactly; the server got the text around the cursor', async () => {
    await configure({ completion: fimSettings(`text=${encodeURIComponent('a + b; // 和 🎉')}`) });
    const content = '// 加法 😀 emoji 👩‍💻 and CJK 漢字\nfunction add(a, b) {\n  return |\n}\n';
    const editor = await editAt('ghost.js', content, '|', '');
    const before = fimRequests().length;
    const pos = editor.selection.active;
    const expected = editor.document.getText().slice(0, editor.document.offsetAt(pos)) + 'a + b; // 和 🎉' + editor.document.getText().slice(editor.document.offsetAt(pos));
    await triggerAndAccept(editor, expected, 'a + b; // 和 🎉');
    const req = fimRequests().at(-1);
    assert.ok(fimRequests().length > before, 'the FIM server was asked');
    assert.equal(req.body.prompt, '// 加法 😀 emoji 👩‍💻 and CJK 漢字\nfunction add(a, b) {\n  return ', 'the prefix ends exactly at the cursor');
    assert.ok(['\n}\n', '\n}'].includes(req.body.suffix), `the suffix starts at the cursor: ${JSON.stringify(req.body.suffix)}`);
    assert.equal(req.body.model, 'fim-1');
    assert.equal(req.headers.authorization, `Bearer ${tokenA}`, 'the completion server\'s own origin token');
    // One undo step removes the whole suggestion.
    await vscode.commands.executeCommand('undo');
    await waitFor(() => editor.document.getText() === content.replace('|', ''), 'one undo to remove the suggestion');
  });

  test('ghost text: a multi-line suggestion after typed CJK and emoji is inserted exactly', async () => {
    const suggestion = '\n  const 积 = a * b; // ✨\n  return 积;';
    await configure({ completion: fimSettings(`text=${encodeURIComponent(suggestion)}`) });
    const content = 'function mul(a, b) {|\n}\n';
    const editor = await editAt('multi.js', content, '|', ' // 乘法 🚀');
    assert.equal(editor.document.getText(), 'function mul(a, b) { // 乘法 🚀\n}\n', 'typed');
    await triggerAndAccept(editor, `function mul(a, b) { // 乘法 🚀${suggestion}\n}\n`, 'const 积 = a * b;');
    const req = fimRequests().at(-1);
    assert.equal(req.body.prompt, 'function mul(a, b) { // 乘法 🚀', 'the typed text, emoji included, is in the prefix up to the cursor');
  });

  test('ghost text: typing over the suggestion keeps the rest; an edit that does not match removes it', async () => {
    await configure({ completion: fimSettings(`text=${encodeURIComponent('hello(世界)')}`), 'inlineCompletion.debounceMs': 600_000 });
    try {
      const content = 'greet.|\n';
      const editor = await editAt('type-along.js', content, '|', '');
      const shown = api.inline.shown;
      await vscode.commands.executeCommand('editor.action.inlineSuggest.trigger');
      await waitFor(() => api.inline.shown > shown, 'a completion');
      const requests = fimRequests().length;
      // Typing the suggestion's first characters: the rest stays (no new request: the debounce is long).
      await vscode.commands.executeCommand('type', { text: 'hel' });
      await waitFor(async () => {
        await vscode.commands.executeCommand('editor.action.inlineSuggest.commit');
        return editor.document.getText() === 'greet.hello(世界)\n';
      }, `the rest of the suggestion to be accepted (now ${JSON.stringify(editor.document.getText())})`);
      assert.equal(fimRequests().length, requests, 'no new request while typing along');
      // An edit that does not match: nothing is left to accept.
      const editor2 = await editAt('no-match.js', content, '|', '');
      const shown2 = api.inline.shown;
      await vscode.commands.executeCommand('editor.action.inlineSuggest.trigger');
      await waitFor(() => api.inline.shown > shown2, 'a completion');
      await vscode.commands.executeCommand('type', { text: 'x' });
      await new Promise((r) => setTimeout(r, 300));
      await vscode.commands.executeCommand('editor.action.inlineSuggest.commit');
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(editor2.document.getText(), 'greet.x\n', 'the suggestion is gone after a non-matching edit');
    } finally {
      await configure({ 'inlineCompletion.debounceMs': undefined });
    }
  });

  test('ghost text: a newer request cancels the older one (the server sees the connection close)', async () => {
    await configure({ completion: fimSettings('hold=1') });
    const editor = await editAt('cancel.js', 'let a = |;\n', '|', '');
    const hangups = mock.hangups;
    const cancelled = api.inline.cancelled;
    const before = fimRequests().length;
    // The trigger command resolves once its request has ended: not awaited here.
    const first = vscode.commands.executeCommand('editor.action.inlineSuggest.trigger');
    await waitFor(() => fimRequests().length > before, 'the first request at the server');
    await vscode.commands.executeCommand('type', { text: '1' });
    const second = vscode.commands.executeCommand('editor.action.inlineSuggest.trigger');
    await waitFor(() => mock.hangups > hangups, 'the older request\'s connection to close');
    await first;
    await waitFor(() => api.inline.cancelled > cancelled, 'the older request to end as cancelled');
    await waitFor(() => fimRequests().length > before + 1, 'the newer request at the server');
    assert.equal(fimRequests().at(-1).body.prompt, 'let a = 1', 'the newer request has the newer text');
    assert.equal(editor.document.getText(), 'let a = 1;\n');
    // Moving the cursor ends the newer one too.
    const hangups2 = mock.hangups;
    editor.selection = new vscode.Selection(0, 0, 0, 0);
    await vscode.commands.executeCommand('editor.action.inlineSuggest.hide');
    await vscode.commands.executeCommand('type', { text: ' ' });
    await waitFor(() => mock.hangups > hangups2, 'the newer request\'s connection to close');
    await second;
  });

  test('ghost text: a failure is shown once, then only in the output and status bar, until the settings change', async () => {
    await configure({ completion: { ...fimSettings(''), customEngineServer: `${mock.url}/status/500` } });
    const seen = api.notifications.length;
    const errors = api.inline.errors;
    const editor = await editAt('errors.js', 'x = |\n', '|', '');
    for (const ch of ['1', '2', '3']) {
      await vscode.commands.executeCommand('type', { text: ch });
      const before = api.inline.errors;
      await vscode.commands.executeCommand('editor.action.inlineSuggest.trigger');
      await waitFor(() => api.inline.errors > before, 'the failure');
    }
    assert.ok(api.inline.errors >= errors + 3);
    const failures = () => api.notifications.slice(seen).filter((n) => /ghost-text completion failed/.test(n.message));
    assert.equal(failures().length, 1, `shown once: ${JSON.stringify(failures())}`);
    assert.match(failures()[0].message, /500/);
    await configure({ completion: { ...fimSettings(''), customEngineServer: `${mock.url}/status/503` } });
    const before = api.inline.errors;
    await vscode.commands.executeCommand('type', { text: '4' });
    await vscode.commands.executeCommand('editor.action.inlineSuggest.trigger');
    await waitFor(() => api.inline.errors > before, 'the failure after the change');
    await waitFor(() => failures().length === 2, 'shown again once the settings changed');
    assert.equal(editor.document.getText(), 'x = 1234\n');
  });

  test('customLlms: the Completion entry serves ghost text and the Default entry serves LLM: Ask', async () => {
    const list = [
      { name: 'Chat', description: 'chat', url: `${mock.url}/chat?delay=1`, auth: { type: 'Bearer' }, requestFormat: '{"customFields": {"model": "chat-entry", "stream": true}}', responseFormat: '$.choices[0].delta.content', modelType: 'Default' },
      { name: 'Code', description: 'fim', url: `${other.url}/fim?text=${encodeURIComponent('42')}`, auth: { type: 'Bearer' }, requestFormat: '{"customFields": {"model": "fim-entry", "stream": false}}', responseFormat: '$.choices[0].text', modelType: 'Completion' },
    ];
    await configure({ completion: undefined, customEngineServer: undefined, customLlms: list });
    try {
      const r = await vscode.commands.executeCommand('llmSidecar.ask', { prompt: 'which model?' });
      assert.equal(r.state, 'done', JSON.stringify(r));
      const chat = mock.requests.at(-1);
      assert.equal(chat.body.model, 'chat-entry');
      assert.equal(chat.headers.authorization, `Bearer ${tokenA}`, 'the Default entry gets its own origin\'s token');
      const editor = await editAt('entries.js', 'const answer = |;\n', '|', '');
      await triggerAndAccept(editor, 'const answer = 42;\n');
      const fim = fimRequests(other).at(-1);
      assert.equal(fim.body.model, 'fim-entry');
      assert.equal(fim.body.prompt, 'const answer = ');
      assert.equal(fim.headers.authorization, 'Bearer sk-for-b', 'the Completion entry gets its own origin\'s token');
    } finally {
      await configure({ customLlms: undefined, customEngineServer: `${mock.url}/chat?delay=1` });
    }
  });

  test('a sidecar that dies is restarted, said once, and gets the completion settings as initializationOptions', async () => {
    // Configured before the restart and not changed after it: the new process has it from initializationOptions.
    await configure({ completion: fimSettings(`text=${encodeURIComponent('"restarted"')}`) });
    const pid = api.sidecarPid();
    assert.ok(pid, 'a sidecar is running');
    const seen = api.notifications.length;
    process.kill(pid, 'SIGKILL');
    await waitFor(() => api.notifications.slice(seen).some((n) => n.severity === 'warning' && /restarted/.test(n.message)), 'the restart notice');
    const result = await vscode.commands.executeCommand('llmSidecar.ask', { prompt: 'still there?' });
    assert.equal(result.state, 'done', JSON.stringify(result));
    assert.notEqual(api.sidecarPid(), pid);
    const editor = await editAt('after-restart.js', 'const s = |;\n', '|', '');
    await triggerAndAccept(editor, 'const s = "restarted";\n');
    await configure({ completion: undefined });
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

  // LLM_SIDECAR_TEST_ONLY (a regular expression) runs the matching tests, after the first one (which sets up).
  const only = process.env.LLM_SIDECAR_TEST_ONLY ? new RegExp(process.env.LLM_SIDECAR_TEST_ONLY) : undefined;
  let failed = 0;
  for (const t of tests.filter((x, i) => i === 0 || !only || only.test(x.name))) {
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
  report({ name: 'the server named by the workspace settings received nothing during the whole run', ok: attacker.requests.length === 0, ms: 0, error: JSON.stringify(attacker.requests.map((r) => r.path)) });
  if (attacker.requests.length) failed++;
  await Promise.all([mock.close(), other.close(), attacker.close()]);
  if (failed) throw new Error(`${failed} test(s) failed`);
}

module.exports = { run };
