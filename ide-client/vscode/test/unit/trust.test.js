// Where a request and its credentials may go (out/trust.js, out/settings.js, out/cursor.js), and the scopes of the
// settings in package.json: what a workspace may not set, the origin a secret belongs to, header values that are
// keys, moving the single secret of older versions, and the text around the cursor sent for completion.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const fs = require('node:fs');
const trust = require('../../out/trust.js');
const { buildSettings, namesServer } = require('../../out/settings.js');
const { textAround } = require('../../out/cursor.js');
const { USER_ONLY } = require('../../scripts/gen-config.js');

const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8'));
const props = pkg.contributes.configuration.properties;

test('every setting that decides where a request and its token go is machine or application scope', () => {
  const required = ['customEngineServer', 'preset', 'customEngineRequestFormat', 'tokenHeader', 'proxy', 'caCertificates', 'completion', 'customLlms', 'path', 'customEngineToken'];
  for (const key of required) {
    const p = props[`llmSidecar.${key}`];
    assert.ok(p, `llmSidecar.${key} is contributed`);
    assert.ok(['machine', 'application'].includes(p.scope), `llmSidecar.${key} has scope ${p.scope}`);
  }
  for (const key of trust.USER_ONLY_KEYS) {
    const p = props[`llmSidecar.${key}`];
    if (p) assert.equal(p.scope, 'machine', key);
  }
  assert.deepEqual([...USER_ONLY].sort(), [...trust.USER_ONLY_KEYS].sort(), 'the generator and the reader agree on the user-only keys');
  // What the response looks like may still differ per workspace.
  assert.equal(props['llmSidecar.customEngineResponseFormat'].scope, undefined);
});

test('a workspace or folder value of a user-only key is ignored (and reported); other keys use the most specific', () => {
  const seen = { globalValue: 'https://api.example.com/v1', workspaceValue: 'http://evil.example:9/steal', workspaceFolderValue: 'http://evil2.example/' };
  assert.deepEqual(trust.effectiveValue('customEngineServer', seen), { value: 'https://api.example.com/v1', ignored: true });
  assert.deepEqual(trust.effectiveValue('proxy', { workspaceValue: 'http://evil.example:8080' }), { value: undefined, ignored: true });
  assert.deepEqual(trust.effectiveValue('customLlms', { globalValue: [] }), { value: [], ignored: false });
  assert.deepEqual(trust.effectiveValue('customEngineResponseFormat', { globalValue: '$.a', workspaceValue: '$.b' }), { value: '$.b', ignored: false });
  assert.deepEqual(trust.effectiveValue('customEngineServer', undefined), { value: undefined, ignored: false });
});

test('origins: scheme, host and port, the default port written out', () => {
  assert.equal(trust.originOf('https://api.deepseek.com/v1/chat/completions'), 'https://api.deepseek.com:443');
  assert.equal(trust.originOf('https://api.deepseek.com:443/x'), 'https://api.deepseek.com:443');
  assert.equal(trust.originOf('http://127.0.0.1:8080/chat?x=1'), 'http://127.0.0.1:8080');
  assert.equal(trust.originOf('http://LOCALHOST/api'), 'http://localhost:80');
  assert.equal(trust.originOf('http://[::1]:11434/api/chat'), 'http://[::1]:11434');
  assert.notEqual(trust.originOf('http://127.0.0.1:8080/'), trust.originOf('http://127.0.0.1:8081/'));
  assert.notEqual(trust.originOf('http://api.example.com/'), trust.originOf('https://api.example.com/'));
  for (const bad of ['', '  ', 'not a url', 'file:///etc/passwd', 'ftp://x/', undefined, 42]) assert.equal(trust.originOf(bad), undefined, String(bad));
});

test('header values that are keys', () => {
  for (const h of ['api-key', 'x-api-key', 'X-Goog-Api-Key', 'Authorization', 'proxy-authorization', 'Cookie', 'x-auth-token', 'X-Secret', 'apikey', 'x-password']) {
    assert.ok(trust.isKeyLikeHeader(h), h);
  }
  for (const h of ['anthropic-version', 'content-type', 'user-agent', 'x-request-id', 'accept', 'keep-alive']) assert.ok(!trust.isKeyLikeHeader(h), h);
});

test('key-like header values are split out of a request format, in the form it came in; key sources stay', () => {
  const asString = JSON.stringify({ customHeaders: { 'api-key': 'az-1', 'anthropic-version': '2023-06-01', 'x-api-key': { env: 'K' } }, customFields: { model: 'm' } });
  const split = trust.takeSecretHeaders(asString);
  assert.deepEqual(split.secrets, { 'api-key': 'az-1' });
  assert.equal(typeof split.rest, 'string');
  assert.deepEqual(JSON.parse(split.rest), { customHeaders: { 'anthropic-version': '2023-06-01', 'x-api-key': { env: 'K' } }, customFields: { model: 'm' } });
  const obj = trust.takeSecretHeaders({ customHeaders: { Authorization: 'Bearer x' } });
  assert.deepEqual(obj, { rest: {}, secrets: { Authorization: 'Bearer x' } });
  assert.equal(trust.takeSecretHeaders('{"customHeaders": {"accept": "x"}}'), undefined);
  assert.equal(trust.takeSecretHeaders('not json'), undefined);
  assert.equal(trust.takeSecretHeaders(undefined), undefined);
  // Put back at request time.
  assert.deepEqual(trust.withHeaders(split.rest, split.secrets).customHeaders, { 'anthropic-version': '2023-06-01', 'x-api-key': { env: 'K' }, 'api-key': 'az-1' });
  assert.deepEqual(trust.withHeaders(undefined, { 'api-key': 'k' }), { customHeaders: { 'api-key': 'k' } });
  assert.equal(trust.withHeaders('{"a":', { 'api-key': 'k' }), '{"a":', 'a format that is not JSON is left for the sidecar to report');
});

test('request settings: the token and headers of the origin; no token when the sidecar reads its own', () => {
  const set = { customEngineServer: 'http://127.0.0.1:1/x', customEngineRequestFormat: '{"customFields":{"model":"m"}}' };
  const s = buildSettings((k) => set[k], { token: 'sk-1', headers: { 'api-key': 'h-1' } });
  assert.equal(s.customEngineToken, 'sk-1');
  assert.deepEqual(s.customEngineRequestFormat, { customFields: { model: 'm' }, customHeaders: { 'api-key': 'h-1' } });
  const env = { ...set, customEngineTokenEnv: 'MY_KEY' };
  const e = buildSettings((k) => env[k], { token: 'sk-1' });
  assert.equal(e.customEngineTokenEnv, 'MY_KEY');
  assert.equal(e.customEngineToken, undefined);
  const cmd = { ...set, customEngineTokenCommand: ['pass', 'show', 'x'] };
  assert.equal(buildSettings((k) => cmd[k], { token: 'sk-1' }).customEngineToken, undefined);
  assert.equal(buildSettings((k) => ({ customEngineTokenCommand: [] })[k], { token: 'sk-1' }).customEngineToken, 'sk-1', 'an empty command is unset');
  assert.ok(namesServer({ preset: 'deepseek' }));
  assert.ok(!namesServer({ customEngineResponseFormat: '$.x' }));
});

test('the single secret of older versions moves to the configured origin, once, and never over a token already there', async () => {
  const map = new Map();
  const store = { get: async (k) => map.get(k), store: async (k, v) => void map.set(k, v), delete: async (k) => void map.delete(k) };
  assert.equal(await trust.migrateLegacySecret(store, 'https://a.example:443'), false, 'nothing to move');
  map.set(trust.LEGACY_SECRET_KEY, 'sk-old');
  assert.equal(await trust.migrateLegacySecret(store, undefined), false, 'no origin yet: kept for later');
  assert.equal(map.get(trust.LEGACY_SECRET_KEY), 'sk-old');
  assert.equal(await trust.migrateLegacySecret(store, 'https://a.example:443'), true);
  assert.equal(map.get(trust.tokenSecretKey('https://a.example:443')), 'sk-old');
  assert.equal(map.has(trust.LEGACY_SECRET_KEY), false);
  assert.equal(await trust.migrateLegacySecret(store, 'https://b.example:443'), false, 'once');
  assert.equal(map.get(trust.tokenSecretKey('https://b.example:443')), undefined, 'not copied to another origin');
  map.set(trust.LEGACY_SECRET_KEY, 'sk-older');
  await trust.migrateLegacySecret(store, 'https://a.example:443');
  assert.equal(map.get(trust.tokenSecretKey('https://a.example:443')), 'sk-old', 'a token already stored wins');
  assert.notEqual(trust.tokenSecretKey('http://h:1'), trust.tokenSecretKey('http://h:2'));
  assert.notEqual(trust.headerSecretKey('http://h:1', 'api-key'), trust.headerSecretKey('http://h:2', 'api-key'));
});

test('the text around the cursor: bounded at line starts and ends, never splitting a surrogate pair', () => {
  const text = '第一行 😀\nconst x = 1;\n// 注释 🎉\nfoo(|)\nbar();\nbaz();\n';
  const at = text.indexOf('|');
  assert.deepEqual(textAround(text, at), { prefix: text.slice(0, at), suffix: text.slice(at) });
  const bounded = textAround(text, at, 12, 6);
  assert.equal(bounded.prefix, 'foo(');
  assert.equal(bounded.suffix, '|)\n');
  // A bound that falls inside an emoji in a single long line moves past it.
  const line = 'ab😀cd😀ef';
  const mid = line.length;
  const p = textAround(line, mid, line.length - 3, 0).prefix; // would start at the emoji's second half
  assert.ok(!/^[\udc00-\udfff]/.test(p), JSON.stringify(p));
  const s = textAround('😀😀', 0, 0, 1).suffix;
  assert.equal(s, '', 'a suffix bound inside an emoji ends before it');
});
