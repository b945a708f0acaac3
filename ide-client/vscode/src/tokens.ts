// The API tokens as the user handles them: which origin a token is for (LLM: Set API Token), saying when the server's
// origin has none, and the deprecated token in settings.json (warned about once, moved on request).
import * as vscode from 'vscode';
import { ChatSelection, Config, SECTION } from './config';
import type { Credentials } from './credentials';
import { originOf } from './trust';

const TOKEN_WARNING_SHOWN = 'llmSidecar.tokenWarningShown';

export interface TokensHost {
  notify(severity: 'error' | 'warning' | 'info', message: string, items: string[]): Thenable<string | undefined>;
  log(line: string): void;
  presetServer(name: string): Promise<string | undefined>;
}

export class Tokens {
  private readonly noTokenSaid = new Set<string>();

  constructor(
    private readonly credentials: Credentials,
    private readonly config: Config,
    private readonly state: vscode.Memento,
    private readonly host: TokensHost,
  ) {}

  /**
   * When the server's origin has no token (and no token source is set), says so once per origin and session, and
   * offers to set one.
   */
  async sayIfNoToken(): Promise<void> {
    const origin = await this.config.chatOrigin();
    if (!origin || this.noTokenSaid.has(origin)) return;
    if (this.config.value('customEngineTokenEnv') || this.config.value('customEngineTokenCommand')) return;
    if ((await this.credentials.token(origin)) || this.config.legacyToken()) return;
    this.noTokenSaid.add(origin);
    const set = 'Set API Token';
    void this.host.notify(
      'info',
      `No API token is stored for ${origin}. Tokens are kept per server, so no other server's token is sent there. ` +
        'If the server needs one, set it.',
      [set],
    ).then((pick) => {
      if (pick === set) void vscode.commands.executeCommand('llmSidecar.setApiToken');
    });
  }

  /**
   * What a chat request names, with the token of its server's origin. Moves the single secret of older versions to
   * that origin once, and warns once about a token left in settings.json.
   */
  async selection(): Promise<ChatSelection> {
    const origin = await this.config.chatOrigin();
    if (await this.credentials.migrateLegacy(origin)) this.host.log(`the stored API token now belongs to ${origin}`);
    const legacy = this.config.legacyToken();
    if (legacy && !(origin && (await this.credentials.token(origin))) && !this.state.get<boolean>(TOKEN_WARNING_SHOWN)) {
      await this.state.update(TOKEN_WARNING_SHOWN, true);
      const move = 'Move to Secret Storage';
      void this.host.notify(
        'warning',
        'llmSidecar.customEngineToken keeps your API token in settings.json. It still works; move it to VS Code\'s secret storage?',
        [move],
      ).then(async (pick) => {
        if (pick === move) await this.moveLegacyToken(legacy);
      });
    }
    return this.config.chatSelection();
  }

  /** Stores the token of settings.json for the server's origin and removes it from the user's settings. */
  private async moveLegacyToken(token: string): Promise<boolean> {
    const origin = await this.config.chatOrigin();
    if (!origin) {
      void this.host.notify('error', 'Set llmSidecar.customEngineServer or choose a preset first: the token is kept for that server.', []);
      return false;
    }
    await this.credentials.setToken(origin, token);
    const config = vscode.workspace.getConfiguration(SECTION);
    if (config.inspect('customEngineToken')?.globalValue !== undefined) {
      await config.update('customEngineToken', undefined, vscode.ConfigurationTarget.Global);
    }
    void this.host.notify('info', `The API token is now in secret storage for ${origin} and was removed from settings.`, []);
    return true;
  }

  /** The origins the settings send to: the chat server's, the completion server's, every customLlms entry's. */
  private async knownOrigins(): Promise<string[]> {
    const origins = [await this.config.chatOrigin()];
    const completion = this.config.completion();
    if (completion) {
      const server =
        typeof completion.customEngineServer === 'string'
          ? completion.customEngineServer
          : typeof completion.preset === 'string'
            ? await this.host.presetServer(completion.preset)
            : undefined;
      origins.push(originOf(server));
    }
    for (const e of this.config.customLlms()) origins.push(originOf(e.url));
    return [...new Set(origins.filter((o): o is string => Boolean(o)))];
  }

  /**
   * Stores the API token of a server's origin (`origin` may be any URL of it). Without one: the chat server's
   * origin, or a pick among the configured servers' origins when there are several.
   */
  async setApiToken(args?: { token?: string; origin?: string }): Promise<boolean> {
    let origin = typeof args?.origin === 'string' ? originOf(args.origin) : undefined;
    if (args?.origin !== undefined && !origin) {
      void this.host.notify('error', `Not an http(s) URL: ${args.origin}`, []);
      return false;
    }
    if (!origin) {
      const known = await this.knownOrigins();
      const chat = await this.config.chatOrigin();
      if (known.length > 1 && typeof args?.token !== 'string') {
        origin = await vscode.window.showQuickPick(known, { title: 'LLM: Set API Token', placeHolder: 'The server the token is for' });
        if (!origin) return false;
      } else {
        origin = chat ?? known[0];
      }
    }
    if (!origin) {
      void this.host.notify('error', 'Set llmSidecar.customEngineServer or choose a preset first: each token is kept for its server.', []);
      return false;
    }
    let token = typeof args?.token === 'string' ? args.token : undefined;
    if (token === undefined) {
      token = await vscode.window.showInputBox({
        title: `LLM: Set API Token for ${origin}`,
        prompt: `The API token for ${origin}, kept in VS Code's secret storage and sent only there. Empty removes it.`,
        password: true,
        ignoreFocusOut: true,
      });
      if (token === undefined) return false;
    }
    token = token.trim();
    await this.credentials.setToken(origin, token);
    const legacy = this.config.legacyToken();
    if (token && legacy && origin === (await this.config.chatOrigin())) {
      await vscode.workspace.getConfiguration(SECTION).update('customEngineToken', undefined, vscode.ConfigurationTarget.Global);
    }
    void this.host.notify('info', token ? `API token for ${origin} saved in secret storage.` : `API token for ${origin} removed.`, []);
    return true;
  }
}
