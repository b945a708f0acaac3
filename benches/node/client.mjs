// The Node alternative to the sidecar, as an extension author would write it:
// fetch + eventsource-parser + jsonpath-plus, one stream, each chunk handed to
// a callback. Usage: node client.mjs URL CHUNKS. Prints one JSON line:
// {"chunks": N, "chars": N, "ns": wall time from request to the last chunk}.
import { createParser } from 'eventsource-parser';
import { JSONPath } from 'jsonpath-plus';

const [url, expected] = process.argv.slice(2);
const path = '$.choices[0].delta.content';
let chunks = 0;
let text = '';
const onChunk = (piece) => {
  chunks += 1;
  text += piece;
};

const started = process.hrtime.bigint();
const response = await fetch(url, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ model: 'bench', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
});
const parser = createParser({
  onEvent(event) {
    if (event.data === '[DONE]') return;
    const found = JSONPath({ path, json: JSON.parse(event.data) });
    for (const piece of found) {
      if (typeof piece === 'string' && piece.length > 0) onChunk(piece);
    }
  },
});
const decoder = new TextDecoder();
for await (const part of response.body) parser.feed(decoder.decode(part, { stream: true }));
const ns = Number(process.hrtime.bigint() - started);
if (chunks !== Number(expected)) {
  console.error(`node client: ${chunks} chunks, expected ${expected}`);
  process.exit(1);
}
console.log(JSON.stringify({ chunks, chars: text.length, ns }));
