#!/usr/bin/env node
// `npm run package`: builds the .vsix with @vscode/vsce. When a sidecar binary is at hand (LLM_SIDECAR_BIN, else
// ../../target/release/llm-sidecar) it is bundled as bin/<platform>-<arch>/llm-sidecar and the package is made for
// that target; otherwise the package is universal and the binary is found through llmSidecar.path or PATH.
//   node scripts/package.js [--no-binary] [--out FILE]
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const root = path.join(__dirname, '..');
const pkg = require(path.join(root, 'package.json'));
const args = process.argv.slice(2);
const outIdx = args.indexOf('--out');
const noBinary = args.includes('--no-binary');

const target = `${process.platform}-${process.arch}`;
const exe = process.platform === 'win32' ? 'llm-sidecar.exe' : 'llm-sidecar';
const binDir = path.join(root, 'bin');
fs.rmSync(binDir, { recursive: true, force: true });

let vsceTarget;
const source = process.env.LLM_SIDECAR_BIN || path.join(root, '..', '..', 'target', 'release', exe);
if (!noBinary && fs.existsSync(source)) {
  const dest = path.join(binDir, target, exe);
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  fs.copyFileSync(source, dest);
  fs.chmodSync(dest, 0o755);
  vsceTarget = target;
  console.log(`bundling ${source} as bin/${target}/${exe}`);
} else {
  console.log('no sidecar binary bundled (universal package)');
}

const out =
  outIdx >= 0 ? path.resolve(args[outIdx + 1]) : path.join(root, `${pkg.name}-${vsceTarget ? `${vsceTarget}-` : ''}${pkg.version}.vsix`);
const vsce = path.join(root, 'node_modules', '@vscode', 'vsce', 'vsce');
// The README's links point into this repository (../../protocol/README.md): kept as written.
const vsceArgs = ['package', '--skip-license', '--allow-missing-repository', '--no-rewrite-relative-links', '--out', out];
if (vsceTarget) vsceArgs.push('--target', vsceTarget);
execFileSync(process.execPath, [vsce, ...vsceArgs], { cwd: root, stdio: 'inherit' });
console.log(`packaged ${out}`);
