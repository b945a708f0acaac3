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
];

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
      entry.default = '';
    }
    if (Array.isArray(entry.type) && entry.type.includes('object')) {
      entry.type = ['string', 'object'];
      entry.editPresentation = 'multilineText';
    }
    entry.markdownDescription = prop.description;
    entry.order = order++;
    properties[`llmSidecar.${key}`] = entry;
  }
  const token = schema.properties.customEngineToken;
  properties['llmSidecar.customEngineToken'] = {
    type: 'string',
    default: '',
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

module.exports = { generate, MIRRORED };
if (require.main === module) main();
