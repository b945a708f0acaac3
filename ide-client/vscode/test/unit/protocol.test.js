// The protocol module (out/protocol.js) against the real llm-sidecar binary and a mock LLM server on 127.0.0.1.
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const fs = require('node:fs');
const { SidecarConnection, SidecarSupervisor, SidecarError } = require('../../out/protocol.js');
const { startMockServer, DEFAULT_WORDS } = require('../mock-llm-server.js');

const BIN = process.env.LLM_SIDECAR_BIN || path.resolve(__dirname, '../../../../target/release/llm-sidecar');
const WAIT_MS = 30_000;

let mock;
let sidecar;
const stderr = [];

before(async () => {
  assert.ok(fs.existsSync(BIN), `llm-sidecar binary not found at ${BIN} (set LLM_SIDECAR_BIN)`);
  mock = await startMockServer();
  sidecar = await SidecarConnection.start({ command: BIN, onStderr: (t) => stderr.push(t) });
});

after(async () => {
  await sidecar?.dispose();
  await mock?.close();
});

function settings(route, extra = {}) {
  return {
    customEngineServer: `${mock.url}${route}`,
    customEngineResponseType: 'SSE',
    customEngineRequestFormat: JSON.stringify({ customFields: { model: 'mock-1', stream: true } }),
    customEngineResponseFormat: '$.choices[0].delta.content',
    retry: { maxRetries: 0 },
    ...extra,
  };
}

const messages = [{ role: 'user', content: 'Say hello' }];

/** Resolves when `predicate()` is true; polls, with a generous limit instead of a fixed sleep. */
async function waitFor(predicate, what, limitMs = WAIT_MS) {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > limitMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('initialize reports the server', () => {
  assert.equal(sidecar.serverInfo?.name, 'llm-sidecar');
  assert.match(sidecar.serverInfo?.version ?? '', /^\d+\.\d+/);
});

test('chunks stream in seq order and all arrive before the final result', async () => {
  const chunks = [];
  let resolvedAt = -1;
  const result = await sidecar.complete({ settings: settings('/chat?delay=5'), messages }, { onChunk: (c) => chunks.push(c) });
  resolvedAt = chunks.length;
  assert.equal(resolvedAt, DEFAULT_WORDS.length, 'every chunk arrived before the promise resolved');
  assert.deepEqual(chunks.map((c) => c.seq), DEFAULT_WORDS.map((_, i) => i));
  assert.deepEqual(chunks.map((c) => c.text), DEFAULT_WORDS);
  assert.ok(chunks.every((c) => c.kind === 'content'));
  assert.ok(chunks.every((c) => c.streamId === chunks[0].streamId));
  assert.equal(result.text, DEFAULT_WORDS.join(''));
  assert.equal(result.chunks, DEFAULT_WORDS.length);
});

test('the final result carries finishReason, usage, status and response type', async () => {
  const result = await sidecar.complete({ settings: settings('/chat?words=a,b&delay=1'), messages });
  assert.equal(result.text, 'ab');
  assert.equal(result.finishReason, 'stop');
  assert.equal(result.status, 200);
  assert.equal(result.responseType, 'sse');
  assert.deepEqual(result.usage, { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 });
  assert.equal(typeof result.timings.totalMs, 'number');
  const req = mock.requests.at(-1);
  assert.equal(req.body.model, 'mock-1');
  assert.deepEqual(req.body.messages, messages);
});

test('cancel stops the stream, keeps the partial text and closes the HTTP connection', async () => {
  const abort = new AbortController();
  const chunks = [];
  const hangupsBefore = mock.hangups;
  const pending = sidecar.complete(
    { settings: settings('/slow?delay=50'), messages },
    {
      signal: abort.signal,
      onChunk: (c) => {
        chunks.push(c);
        if (chunks.length === 3) abort.abort();
      },
    },
  );
  const err = await pending.then(
    () => assert.fail('a cancelled request must not resolve'),
    (e) => e,
  );
  assert.ok(err instanceof SidecarError, String(err));
  assert.equal(err.code, -32800);
  assert.equal(err.kind, 'cancelled');
  const streamed = chunks.map((c) => c.text).join('');
  assert.ok(err.partialText.startsWith('w0 w1 w2 '), `partial text ${JSON.stringify(err.partialText)}`);
  assert.equal(err.partialText, streamed, 'the partial text is what was streamed');
  await waitFor(() => mock.hangups > hangupsBefore, 'the mock server to see the connection close');
  assert.equal(sidecar.running, 0);
});

test('a wrong JsonPath fails with no_match and suggests the right one', async () => {
  const err = await sidecar
    .complete({ settings: settings('/chat?delay=1', { customEngineResponseFormat: '$.choices[0].delta.text' }), messages })
    .then(() => assert.fail('expected no_match'), (e) => e);
  assert.ok(err instanceof SidecarError);
  assert.equal(err.code, -32803);
  assert.equal(err.kind, 'no_match');
  assert.equal(err.partialText, '');
  assert.equal(err.suggestions[0].path, '$.choices[0].delta.content');
  assert.equal(typeof err.suggestions[0].sampleText, 'string');
});

test('an HTTP error carries the provider message and status', async () => {
  const err = await sidecar.complete({ settings: settings('/status/401'), messages }).then(() => assert.fail('expected an error'), (e) => e);
  assert.equal(err.kind, 'http_status');
  assert.equal(err.status, 401);
  assert.match(err.providerMessage, /Incorrect API key provided/);
  assert.match(err.message, /401/);
});

test('invalid settings list every problem', async () => {
  const err = await sidecar
    .complete({ settings: { customEngineServer: 'not a url', customEngineResponseFormat: '$.a[' }, messages })
    .then(() => assert.fail('expected invalid settings'), (e) => e);
  assert.equal(err.code, -32602);
  assert.equal(err.kind, 'invalid_settings');
  const fields = err.problems.map((p) => p.field);
  assert.ok(fields.includes('customEngineServer'), JSON.stringify(err.problems));
  assert.ok(fields.includes('customEngineResponseFormat'), JSON.stringify(err.problems));
});

test('reasoning chunks come with kind "reasoning", apart from the answer', async () => {
  const chunks = [];
  const result = await sidecar.complete(
    { settings: settings('/reasoning?delay=1', { reasoningFormat: '$.choices[0].delta.reasoning_content' }), messages },
    { onChunk: (c) => chunks.push(c) },
  );
  assert.equal(result.text, 'The answer is 42');
  assert.equal(result.reasoning, 'Thinking about it');
  assert.deepEqual(chunks.filter((c) => c.kind === 'reasoning').map((c) => c.text).join(''), 'Thinking about it');
  assert.deepEqual(chunks.filter((c) => c.kind === 'content').map((c) => c.text).join(''), 'The answer is 42');
  assert.deepEqual(chunks.map((c) => c.seq), chunks.map((_, i) => i));
});

test('two concurrent streams each get only their own chunks', async () => {
  const a = [];
  const b = [];
  const [ra, rb] = await Promise.all([
    sidecar.complete({ settings: settings('/chat?words=a1,a2,a3,a4,a5&delay=15'), messages }, { onChunk: (c) => a.push(c) }),
    sidecar.complete({ settings: settings('/chat?words=b1,b2,b3,b4,b5&delay=15'), messages }, { onChunk: (c) => b.push(c) }),
  ]);
  assert.equal(ra.text, 'a1a2a3a4a5');
  assert.equal(rb.text, 'b1b2b3b4b5');
  assert.deepEqual(a.map((c) => c.text), ['a1', 'a2', 'a3', 'a4', 'a5']);
  assert.deepEqual(b.map((c) => c.text), ['b1', 'b2', 'b3', 'b4', 'b5']);
  assert.notEqual(a[0].streamId, b[0].streamId);
});

test('llm/presets, llm/validateSettings and llm/testConnection', async () => {
  const presets = await sidecar.presets();
  const names = presets.map((p) => p.name);
  for (const n of ['deepseek', 'openai', 'ollama', 'anthropic']) assert.ok(names.includes(n), `preset ${n} in ${names}`);

  const ok = await sidecar.validateSettings({ settings: settings('/chat') });
  assert.equal(ok.ok, true);
  assert.deepEqual(ok.problems, []);
  const bad = await sidecar.validateSettings({ settings: { customEngineServer: `${mock.url}/chat`, customEngineResponseFormat: '$.x.length()' } });
  assert.equal(bad.ok, false);
  assert.equal(bad.problems[0].field, 'customEngineResponseFormat');
  assert.equal(bad.normalized, null);

  const good = await sidecar.testConnection({ settings: settings('/chat?delay=1') });
  assert.equal(good.ok, true);
  assert.equal(good.status, 200);
  assert.equal(good.sampleText, DEFAULT_WORDS.join(''));
  const wrong = await sidecar.testConnection({ settings: settings('/chat?delay=1', { customEngineResponseFormat: '$.choices[0].text' }) });
  assert.equal(wrong.ok, false);
  assert.equal(wrong.error.data.kind, 'no_match');
  assert.equal(wrong.suggestions[0].path, '$.choices[0].delta.content');
});

test('a sidecar that dies mid-stream fails the request with its partial text, and the supervisor restarts it', async () => {
  const restarts = [];
  const sup = new SidecarSupervisor({ command: BIN, initialBackoffMs: 100, onRestart: (r) => restarts.push(r) });
  try {
    const first = await sup.get();
    const pid = first.process.pid;
    const chunks = [];
    const pending = first.complete(
      { settings: settings('/hang'), messages },
      {
        onChunk: (c) => {
          chunks.push(c);
          if (chunks.length === 2) first.process.kill('SIGKILL');
        },
      },
    );
    const err = await pending.then(() => assert.fail('expected a failure'), (e) => e);
    assert.ok(err instanceof SidecarError);
    assert.equal(err.kind, 'sidecar_exited');
    assert.equal(err.partialText, 'partial answer');
    await waitFor(() => restarts.length === 1, 'the restart to be scheduled');
    assert.equal(restarts[0].signal, 'SIGKILL');
    assert.equal(restarts[0].delayMs, 100);
    const second = await sup.get();
    assert.notEqual(second.process.pid, pid);
    const result = await second.complete({ settings: settings('/chat?words=back&delay=1'), messages });
    assert.equal(result.text, 'back');

    // A second death soon after backs off longer.
    second.process.kill('SIGKILL');
    await waitFor(() => restarts.length === 2, 'the second restart');
    assert.equal(restarts[1].delayMs, 200);
    const third = await sup.get();
    assert.equal((await third.complete({ settings: settings('/chat?words=again&delay=1'), messages })).text, 'again');
  } finally {
    await sup.dispose();
  }
});

test('a request to a sidecar that already exited fails at once', async () => {
  const conn = await SidecarConnection.start({ command: BIN });
  await conn.dispose();
  const err = await conn.complete({ settings: settings('/chat'), messages }).then(() => assert.fail('expected failure'), (e) => e);
  assert.equal(err.kind, 'sidecar_exited');
});

test('stderr is forwarded', () => {
  // The sidecar logs at info level to stderr; secrets never appear there.
  assert.ok(stderr.join('').length > 0, 'some stderr output');
});

test('llm/inlineCompletion: the completion settings from initializationOptions, the text between prefix and suffix, cancel closes the connection', async () => {
  const completion = {
    customEngineServer: `${mock.url}/fim?text=${encodeURIComponent('b; // 和 😀')}`,
    customEngineResponseType: 'JSON',
    customEngineResponseFormat: '$.choices[0].text',
    customEngineRequestFormat: '{"customFields": {"model": "fim-1", "stream": false}}',
    fim: { mode: 'separate' },
    retry: { maxRetries: 0 },
  };
  const own = await SidecarConnection.start({ command: BIN, initializationOptions: { completion } });
  try {
    const result = await own.inlineCompletion({ prefix: '// 加法 👩‍💻\nconst x = a + ', suffix: '\nexport x;\n', language: 'javascript', path: 'src/x.js' });
    assert.deepEqual(result.items, [{ insertText: 'b; // 和 😀' }]);
    const req = mock.requests.at(-1);
    assert.equal(req.path, '/fim');
    assert.equal(req.body.prompt, '// 加法 👩‍💻\nconst x = a + ');
    assert.ok(req.body.suffix.startsWith('\nexport x;'), JSON.stringify(req.body.suffix));
    // Changed with workspace/didChangeConfiguration: a held request, cancelled.
    await own.changeConfiguration({ completion: { ...completion, customEngineServer: `${mock.url}/fim?hold=1` } });
    const hangups = mock.hangups;
    const abort = new AbortController();
    const pending = own.inlineCompletion({ prefix: 'let y = ', suffix: '' }, abort.signal);
    await waitFor(() => mock.requests.at(-1)?.query.hold === '1', 'the held request at the server');
    abort.abort();
    await assert.rejects(pending, (e) => e instanceof SidecarError && e.code === -32800);
    await waitFor(() => mock.hangups > hangups, 'the connection to close');
  } finally {
    await own.dispose();
  }
});
