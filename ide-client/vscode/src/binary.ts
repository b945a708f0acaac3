// Finding the llm-sidecar binary: the `llmSidecar.path` setting, else the binary bundled in the extension
// (bin/<platform>-<arch>/), else `llm-sidecar` on PATH. Free of the `vscode` API.
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface BinaryLocation {
  path: string;
  source: 'setting' | 'bundled' | 'PATH';
}

export const INSTALL_HINT =
  'Install it with `cargo install --path .` from the llm-sidecar repository (or build it with ' +
  '`cargo build --release` and set `llmSidecar.path` to target/release/llm-sidecar).';

export class MissingBinaryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MissingBinaryError';
  }
}

function isExecutable(file: string, platform: NodeJS.Platform): boolean {
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) return false;
    if (platform === 'win32') return true;
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export interface FindOptions {
  configuredPath?: string;
  extensionPath?: string;
  envPath?: string;
  platform?: NodeJS.Platform;
  arch?: string;
}

export function findSidecarBinary(options: FindOptions = {}): BinaryLocation {
  const platform = options.platform ?? process.platform;
  const arch = options.arch ?? process.arch;
  const exe = platform === 'win32' ? 'llm-sidecar.exe' : 'llm-sidecar';
  const configured = options.configuredPath?.trim();
  if (configured) {
    const expanded = configured.startsWith('~/') ? path.join(process.env.HOME ?? '', configured.slice(2)) : configured;
    if (isExecutable(expanded, platform)) return { path: expanded, source: 'setting' };
    throw new MissingBinaryError(
      `The llm-sidecar binary set in llmSidecar.path (${configured}) does not exist or is not executable. ${INSTALL_HINT}`,
    );
  }
  if (options.extensionPath) {
    const bundled = path.join(options.extensionPath, 'bin', `${platform}-${arch}`, exe);
    if (isExecutable(bundled, platform)) return { path: bundled, source: 'bundled' };
  }
  const envPath = options.envPath ?? process.env.PATH ?? '';
  for (const dir of envPath.split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, exe);
    if (isExecutable(candidate, platform)) return { path: candidate, source: 'PATH' };
  }
  throw new MissingBinaryError(
    `llm-sidecar was not found: llmSidecar.path is not set, the extension has no bundled binary for ${platform}-${arch}, ` +
      `and there is no llm-sidecar on PATH. ${INSTALL_HINT}`,
  );
}
