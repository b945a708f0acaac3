// The secrets, kept per origin (scheme://host:port) in VS Code's SecretStorage: the API token and key-like header
// values of each server. A secret stored for one origin is only ever given out for that origin.
import * as vscode from 'vscode';
import type { OriginSecrets } from './settings';
import { headerSecretKey, migrateLegacySecret, tokenSecretKey } from './trust';

/** globalState key: the names (not the values) of the header secrets stored per origin. */
const HEADER_INDEX = 'llmSidecar.secretHeaders';

export class Credentials {
  private readonly changed = new vscode.EventEmitter<string>();
  /** Fires with the origin whose secrets changed. */
  readonly onDidChange = this.changed.event;

  constructor(
    private readonly secrets: vscode.SecretStorage,
    private readonly state: vscode.Memento,
  ) {}

  token(origin: string): Thenable<string | undefined> {
    return this.secrets.get(tokenSecretKey(origin));
  }

  /** Stores the token of `origin`; an empty token removes it. */
  async setToken(origin: string, token: string): Promise<void> {
    if (token) await this.secrets.store(tokenSecretKey(origin), token);
    else await this.secrets.delete(tokenSecretKey(origin));
    this.changed.fire(origin);
  }

  private index(): Record<string, string[]> {
    return this.state.get<Record<string, string[]>>(HEADER_INDEX) ?? {};
  }

  /** The header secrets of `origin`, by header name. */
  async headers(origin: string): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const name of this.index()[origin] ?? []) {
      const value = await this.secrets.get(headerSecretKey(origin, name));
      if (value) out[name] = value;
    }
    return out;
  }

  async storeHeaders(origin: string, headers: Record<string, string>): Promise<void> {
    const index = this.index();
    const names = new Set(index[origin] ?? []);
    for (const [name, value] of Object.entries(headers)) {
      await this.secrets.store(headerSecretKey(origin, name), value);
      // One entry per header, whatever its case.
      for (const n of [...names]) if (n.toLowerCase() === name.toLowerCase()) names.delete(n);
      names.add(name);
    }
    await this.state.update(HEADER_INDEX, { ...index, [origin]: [...names] });
    this.changed.fire(origin);
  }

  /** Removes every secret of `origin` (its token and its headers). */
  async clear(origin: string): Promise<void> {
    const index = this.index();
    for (const name of index[origin] ?? []) await this.secrets.delete(headerSecretKey(origin, name));
    delete index[origin];
    await this.state.update(HEADER_INDEX, index);
    await this.secrets.delete(tokenSecretKey(origin));
    this.changed.fire(origin);
  }

  async forOrigin(origin: string | undefined): Promise<OriginSecrets> {
    if (!origin) return {};
    return { token: await this.token(origin), headers: await this.headers(origin) };
  }

  /** Moves the single secret of older versions to `origin`, once (see trust.ts). */
  async migrateLegacy(origin: string | undefined): Promise<boolean> {
    const moved = await migrateLegacySecret(this.secrets, origin);
    if (moved && origin) this.changed.fire(origin);
    return moved;
  }

  dispose(): void {
    this.changed.dispose();
  }
}
