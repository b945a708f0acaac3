// The vscode-free parts of the extension: settings contributed vs the schema, finding the binary, building the
// request settings, rendering the answer document.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { generate, MIRRORED } = require('../../scripts/gen-config.js');
const { findSidecarBinary, MissingBinaryError } = require('../../out/binary.js');
const { buildSettings, MIRRORED_KEYS, TOKEN_SOURCE_KEYS } = require('../../out/settings.js');
const { renderAnswer } = require('../../out/render.js');

const root = path.join(__dirname, '..', '..');
const schema = JSON.parse(fs.readFileSync(path.join(root, '..', '..', 'protocol', 'settings.schema.json'), 'utf8'));
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const props = pkg.contributes.configuration.properties;

test('package.json contributes exactly what gen-config generates from the schema', () => {
  assert.deepEqual(pkg.contributes.configuration, generate(schema));
});

test('every AutoDev dialog key is a setting with the schema\'s description', () => {
  for (const key of ['customEngineServer', 'customEngineResponseType', 'customEngineRequestFormat', 'customEngineResponseFormat', 'preset', 'reasoningFormat']) {
    const p = props[`llmSidecar.${key}`];
    assert.ok(p, `llmSidecar.${key} is contributed`);
    assert.equal(p.markdownDescription, schema.properties[key].description, key);
  }
  assert.deepEqual([...MIRRORED], [...MIRRORED_KEYS, ...TOKEN_SOURCE_KEYS], 'the generator and the request builder mirror the same keys');
  assert.ok(props['llmSidecar.path']);
  assert.ok(props['llmSidecar.customEngineToken'].markdownDeprecationMessage);
});

test('the response type enum is the schema\'s, with its descriptions', () => {
  const def = schema.$defs.ResponseTypeName.oneOf;
  const p = props['llmSidecar.customEngineResponseType'];
  assert.deepEqual(p.enum, def.map((d) => d.const));
  assert.deepEqual(p.enumDescriptions, def.map((d) => d.description));
  assert.deepEqual(p.enum, ['SSE', 'JSON', 'NDJSON']);
});

test('every command is contributed under llmSidecar.*', () => {
  const ids = pkg.contributes.commands.map((c) => c.command).sort();
  assert.deepEqual(ids, ['llmSidecar.ask', 'llmSidecar.cancel', 'llmSidecar.choosePreset', 'llmSidecar.setApiToken', 'llmSidecar.showOutput', 'llmSidecar.testConnection']);
  assert.deepEqual(pkg.contributes.commands.map((c) => c.category), pkg.contributes.commands.map(() => 'LLM'));
});

test('the binary: the setting, then bundled bin/<platform>-<arch>/, then PATH, else a message with the install command', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llm-bin-'));
  try {
    const ext = path.join(dir, 'ext');
    const bundled = path.join(ext, 'bin', 'linux-x64', 'llm-sidecar');
    const onPath = path.join(dir, 'pathdir', 'llm-sidecar');
    const custom = path.join(dir, 'custom-sidecar');
    for (const f of [bundled, onPath, custom]) {
      fs.mkdirSync(path.dirname(f), { recursive: true });
      fs.writeFileSync(f, '#!/bin/sh\n');
      fs.chmodSync(f, 0o755);
    }
    const base = { extensionPath: ext, envPath: path.dirname(onPath), platform: 'linux', arch: 'x64' };
    assert.deepEqual(findSidecarBinary({ ...base, configuredPath: custom }), { path: custom, source: 'setting' });
    assert.deepEqual(findSidecarBinary(base), { path: bundled, source: 'bundled' });
    assert.deepEqual(findSidecarBinary({ ...base, arch: 'arm64' }), { path: onPath, source: 'PATH' });
    assert.throws(() => findSidecarBinary({ ...base, configuredPath: path.join(dir, 'nope') }), (e) => e instanceof MissingBinaryError && /cargo install --path \./.test(e.message));
    assert.throws(() => findSidecarBinary({ extensionPath: ext, envPath: '/nonexistent', platform: 'linux', arch: 'arm64' }), (e) => e instanceof MissingBinaryError && /cargo install --path \./.test(e.message));
    fs.chmodSync(bundled, 0o644);
    assert.equal(findSidecarBinary(base).source, 'PATH', 'a non-executable bundled file is skipped');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('request settings: only what the user set, plus the token', () => {
  const set = { customEngineServer: 'http://127.0.0.1:1/x', customEngineResponseFormat: '', preset: 'deepseek', customEngineRequestFormat: '{"customFields":{"stream":true}}' };
  assert.deepEqual(buildSettings((k) => set[k], { token: 'sk-1' }), {
    customEngineServer: 'http://127.0.0.1:1/x',
    customEngineRequestFormat: '{"customFields":{"stream":true}}',
    preset: 'deepseek',
    customEngineToken: 'sk-1',
  });
  assert.deepEqual(buildSettings(() => undefined), {});
});

test('the answer document shows reasoning quoted above the answer, and keeps partial text when cancelled', () => {
  const doc = renderAnswer({ prompt: 'why?', reasoning: 'step 1\nstep 2', text: 'Because.', state: 'done' });
  assert.ok(doc.indexOf('> step 1\n> step 2') < doc.indexOf('### Answer\n\nBecause.'));
  const cancelled = renderAnswer({ prompt: 'q', reasoning: '', text: 'partial', state: 'cancelled' });
  assert.match(cancelled, /### Answer\n\npartial\n/);
  assert.match(cancelled, /Cancelled/);
  assert.doesNotMatch(cancelled, /Reasoning/);
});
