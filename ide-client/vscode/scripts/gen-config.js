#!/usr/bin/env node
// Generates package.json's contributes.configuration from protocol/settings.schema.json, so the settings UI shows
// the schema's own descriptions and enums.
//   node scripts/gen-config.js           rewrite package.json
//   node scripts/gen-config.js --check   exit 1 if package.json differs from what would be generated
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const schemaPath = process.env.LLM_SIDECAR_SCHEMA || path.join(root, '..', '..', 'protocol', 'settings.schema.json');

/** The settings mirrored from the schema, in the AutoDev dialog's order, then ours. */
const MIRRORED = [
  'customEngineServer',
  'customEngineResponseType',
  'customEngineRequestFormat',
  'customEngineResponseFormat',
  'preset',
  'reasoningFormat',
  'tokenHeader',
  'proxy',
  'caCertificates',
  'customEngineTokenEnv',
  'customEngineTokenCommand',
];

/**
 * The settings that decide where a request and its credentials go (src/trust.ts's USER_ONLY_KEYS): `machine` scope,
 * so that a workspace's .vscode/settings.json cannot set them (a cloned repository must not be able to send the
 * user's token, or code, to a server of its choice, nor make the sidecar run a command).
 */
const USER_ONLY = new Set([
  'customEngineServer',
  'preset',
  'customEngineRequestFormat',
  'tokenHeader',
  'proxy',
  'caCertificates',
  'customEngineTokenEnv',
  'customEngineTokenCommand',
  'customEngineToken',
  'completion',
  'customLlms',
  'path',
]);

function resolveRef(schema, node) {
  if (node && node.$ref) {
    const name = node.$ref.replace('#/$defs/', '');
    return schema.$defs[name];
  }
  return node;
}

/** The non-null alternative of a property: {type, enum?, enumDescriptions?}. */
function shapeOf(schema, prop) {
  if (Array.isArray(prop.type)) {
    const types = prop.type.filter((t) => t !== 'null');
    return { type: types.length === 1 ? types[0] : types };
  }
  if (prop.anyOf) {
    const alt = prop.anyOf.map((a) => resolveRef(schema, a)).find((a) => a.type !== 'null');
    if (alt.oneOf && alt.oneOf.every((o) => 'const' in o)) {
      return {
        type: 'string',
        enum: alt.oneOf.map((o) => o.const),
        enumDescriptions: alt.oneOf.map((o) => o.description),
      };
    }
    if (alt.enum) return { type: 'string', enum: alt.enum };
    if (alt.anyOf) {
      // A request format: a JSON string (as AutoDev's dialog stores it) or an object. The settings UI edits the
      // string form; an object in settings.json is accepted too.
      const types = alt.anyOf.map((a) => resolveRef(schema, a).type);
      return { type: types };
    }
    return { type: alt.type };
  }
  return { type: prop.type };
}

function generate(schema) {
  const properties = {};
  let order = 0;
  for (const key of MIRRORED) {
    const prop = schema.properties[key];
    if (!prop) throw new Error(`settings.schema.json has no property ${key}`);
    const shape = shapeOf(schema, prop);
    const entry = { type: shape.type };
    if (shape.enum) {
      entry.enum = shape.enum;
      entry.enumDescriptions = shape.enumDescriptions;
      entry.default = shape.enum[0];
    } else {
      entry.default = entry.type === 'array' ? [] : '';
    }
    if (Array.isArray(entry.type) && entry.type.includes('object')) {
      entry.type = ['string', 'object'];
      entry.editPresentation = 'multilineText';
    }
    if (prop.items) entry.items = prop.items;
    if (USER_ONLY.has(key)) entry.scope = 'machine';
    entry.markdownDescription = prop.description;
    entry.order = order++;
    properties[`llmSidecar.${key}`] = entry;
  }
  const token = schema.properties.customEngineToken;
  properties['llmSidecar.customEngineToken'] = {
    type: 'string',
    default: '',
    scope: 'machine',
    markdownDescription: token.description,
    markdownDeprecationMessage:
      'Keep the token out of settings.json: run **LLM: Set API Token** to store it in VS Code\'s secret storage. ' +
      'A token here still works until then.',
    order: order++,
  };
  properties['llmSidecar.path'] = {
    type: 'string',
    default: '',
    scope: 'machine',
    markdownDescription:
      'Path of the `llm-sidecar` binary. Empty: the binary bundled with the extension (`bin/<platform>-<arch>/`), ' +
      'else `llm-sidecar` on `PATH`.',
    order: order++,
  };
  properties['llmSidecar.customLlms'] = {
    type: ['array', 'string'],
    default: [],
    scope: 'machine',
    markdownDescription:
      'AutoDev 2.x\'s model list (the array, or the JSON string AutoDev stores): entries `{name, url, auth, ' +
      'requestFormat, responseFormat, modelType}`. The `Completion` entry serves ghost text; the `Default` entry serves ' +
      '**LLM: Ask** when `llmSidecar.customEngineServer` and `llmSidecar.preset` are not set. Tokens are taken from ' +
      'secret storage for each entry\'s origin (**LLM: Set API Token**); a token or key-like header written here is ' +
      'moved there.',
    order: order++,
  };
  properties['llmSidecar.completion'] = {
    type: 'object',
    default: {},
    scope: 'machine',
    markdownDescription:
      'The server for ghost-text completion: a settings object in the form of the chat settings (`customEngineServer` ' +
      'or `preset`, ..., plus `fim`: `{template, mode, maxTokens, stop, ...}`), or `{"llm": "<customLlms name>"}`, or ' +
      '`{"profile": "<name>"}`. Unset: the `customLlms` entry whose `modelType` is `Completion`.',
    order: order++,
  };
  properties['llmSidecar.inlineCompletion.enabled'] = {
    type: 'boolean',
    default: true,
    markdownDescription:
      'Show ghost-text completions while typing. They are requested only when `llmSidecar.completion` or a ' +
      '`Completion` entry in `llmSidecar.customLlms` is configured.',
    order: order++,
  };
  properties['llmSidecar.inlineCompletion.debounceMs'] = {
    type: 'number',
    default: 300,
    minimum: 0,
    markdownDescription: 'How long typing must pause, in milliseconds, before a ghost-text completion is requested.',
    order: order++,
  };
  return { title: 'LLM Sidecar', properties };
}

function main() {
  const schema = JSON.parse(fs.readFileSync(schemaPath, 'utf8'));
  const pkgPath = path.join(root, 'package.json');
  const pkg = JSON.parse(fs.readFileSync(pkgPath, 'utf8'));
  const generated = generate(schema);
  if (process.argv.includes('--check')) {
    const same = JSON.stringify(pkg.contributes.configuration) === JSON.stringify(generated);
    if (!same) {
      console.error('package.json contributes.configuration is out of date: run `npm run gen-config`');
      process.exit(1);
    }
    console.log('contributes.configuration matches protocol/settings.schema.json');
    return;
  }
  if (JSON.stringify(pkg.contributes.configuration) === JSON.stringify(generated)) {
    console.log('contributes.configuration is up to date with protocol/settings.schema.json');
    return;
  }
  pkg.contributes.configuration = generated;
  fs.writeFileSync(pkgPath, JSON.stringify(pkg, null, 2) + '\n');
  console.log(
    `protocol/settings.schema.json changed: regenerated the ${Object.keys(generated.properties).length} settings in package.json (commit it)`,
  );
}

module.exports = { generate, MIRRORED, USER_ONLY };
if (require.main === module) main();
