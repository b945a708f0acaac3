// A mock LLM server on 127.0.0.1 for the unit and integration tests. It speaks OpenAI-style SSE:
//   POST /chat?words=a,b,c&delay=MS     streams each word as `$.choices[0].delta.content`, then finish_reason/usage
//   POST /reasoning?delay=MS            streams `reasoning_content` pieces, then content pieces
//   POST /slow?delay=MS&count=N          streams "w0 ", "w1 ", ... slowly (for cancel); notes when the client hangs up
//   POST /hang                           streams two pieces, then holds the connection open without sending more
//   POST /status/CODE                    answers CODE with {"error": {"message": "..."}}
//   POST /fim?text=T&delay=MS&hold=1     a completions (FIM) server: T as `choices[0].text` (SSE when the body has
//                                        stream: true, else JSON); hold=1 never answers
//   CONNECT (a proxy tunnel)             recorded, then refused
// Every request is recorded (path, headers, body) in `server.requests`.
'use strict';
const http = require('node:http');

const DEFAULT_WORDS = ['Hello', ' from', ' the', ' mock', ' server', '.'];

function sseEvent(obj) {
  return `data: ${JSON.stringify(obj)}\n\n`;
}

function delta(content, extra = {}) {
  return { id: 'chatcmpl-mock', object: 'chat.completion.chunk', model: 'mock-1', choices: [{ index: 0, delta: { content, ...extra }, finish_reason: null }] };
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Starts the server; resolves to {url, port, requests, hangups, close()}. */
function startMockServer() {
  const requests = [];
  const state = { hangups: 0 };
  const sockets = new Set();
  const server = http.createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (d) => (raw += d));
    req.on('end', () => {
      const url = new URL(req.url, 'http://127.0.0.1');
      let body = null;
      try {
        body = JSON.parse(raw);
      } catch {
        body = raw;
      }
      requests.push({ path: url.pathname, query: Object.fromEntries(url.searchParams), headers: req.headers, body });
      handle(url, req, res, state, body).catch(() => res.destroy());
    });
  });
  // A proxy's tunnel request (CONNECT) is recorded too, then refused.
  server.on('connect', (req, socket) => {
    requests.push({ path: `CONNECT ${req.url}`, query: {}, headers: req.headers, body: null });
    socket.destroy();
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = server.address().port;
      resolve({
        port,
        url: `http://127.0.0.1:${port}`,
        requests,
        get hangups() {
          return state.hangups;
        },
        close() {
          for (const s of sockets) s.destroy();
          return new Promise((r) => server.close(() => r()));
        },
      });
    });
  });
}

async function handle(url, req, res, state, body) {
  const delay = Number(url.searchParams.get('delay') ?? '10');
  const path = url.pathname;
  let closed = false;
  res.on('close', () => {
    if (!res.writableFinished) {
      closed = true;
      state.hangups++;
    }
  });
  const streamHead = () => res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });

  if (path.startsWith('/status/')) {
    const code = Number(path.slice('/status/'.length)) || 500;
    res.writeHead(code, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ error: { message: `Mock refusal ${code}: Incorrect API key provided`, type: 'invalid_request_error' } }));
    return;
  }
  if (path === '/chat') {
    const words = url.searchParams.has('words') ? url.searchParams.get('words').split(',') : DEFAULT_WORDS;
    streamHead();
    for (const w of words) {
      if (closed) return;
      res.write(sseEvent(delta(w)));
      await sleep(delay);
    }
    res.write(sseEvent({ id: 'chatcmpl-mock', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }], usage: { prompt_tokens: 5, completion_tokens: words.length, total_tokens: 5 + words.length } }));
    res.end('data: [DONE]\n\n');
    return;
  }
  if (path === '/reasoning') {
    streamHead();
    for (const r of ['Thinking', ' about', ' it']) {
      res.write(sseEvent(delta(null, { reasoning_content: r })));
      await sleep(delay);
    }
    for (const c of ['The', ' answer', ' is', ' 42']) {
      res.write(sseEvent(delta(c)));
      await sleep(delay);
    }
    res.write(sseEvent({ id: 'chatcmpl-mock', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }));
    res.end('data: [DONE]\n\n');
    return;
  }
  if (path === '/slow') {
    const count = Number(url.searchParams.get('count') ?? '600');
    streamHead();
    for (let i = 0; i < count; i++) {
      if (closed) return;
      res.write(sseEvent(delta(`w${i} `)));
      await sleep(Number(url.searchParams.get('delay') ?? '100'));
    }
    res.end('data: [DONE]\n\n');
    return;
  }
  if (path === '/fim') {
    // A FIM (completions API) server: answers `text` as `choices[0].text`, as SSE when the body asks for a stream,
    // else as one JSON document. hold=1 never answers (the client's cancel closes the connection).
    if (url.searchParams.get('hold') === '1') {
      await new Promise((resolve) => res.on('close', resolve));
      return;
    }
    const text = url.searchParams.get('text') ?? 'completion';
    if (body && typeof body === 'object' && body.stream === true) {
      streamHead();
      for (const piece of text.match(/[\s\S]{1,4}/gu) ?? []) {
        if (closed) return;
        res.write(sseEvent({ id: 'cmpl-mock', object: 'text_completion', choices: [{ index: 0, text: piece, finish_reason: null }] }));
        await sleep(delay);
      }
      res.write(sseEvent({ id: 'cmpl-mock', choices: [{ index: 0, text: '', finish_reason: 'stop' }] }));
      res.end('data: [DONE]\n\n');
      return;
    }
    await sleep(delay);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ id: 'cmpl-mock', object: 'text_completion', choices: [{ index: 0, text, finish_reason: 'stop' }] }));
    return;
  }
  if (path === '/hang') {
    streamHead();
    res.write(sseEvent(delta('partial')));
    res.write(sseEvent(delta(' answer')));
    return; // never ends; closed by the client or by close()
  }
  res.writeHead(404, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify({ error: { message: `no route ${path}` } }));
}

module.exports = { startMockServer, DEFAULT_WORDS };

if (require.main === module) {
  startMockServer().then((s) => console.log(s.url));
}
