// Reading the `llmSidecar.*` settings the way a request may use them: user-only keys from the user's own settings
// (workspace values ignored, said once), the secrets of each server's origin added at request time, key-like values
// written in settings moved to secret storage, and the `customLlms` / `completion` configuration sent to the sidecar.
import * as vscode from 'vscode';
import type { Credentials } from './credentials';
import type { Settings } from './protocol';
import { buildSettings, namesServer, OriginSecrets } from './settings';
import { effectiveValue, isKeyLikeHeader, originOf, takeSecretHeaders, USER_ONLY_KEYS, withHeaders } from './trust';

export const SECTION = 'llmSidecar';

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** What a chat request names: inline settings, or a `customLlms` entry by model type. */
export interface ChatSelection {
  settings?: Settings;
  modelType?: string;
}

export interface ConfigHost {
  notify(severity: 'error' | 'warning' | 'info', message: string, items: string[]): Thenable<string | undefined>;
  log(line: string): void;
  /** The server URL of a built-in preset (from `llm/presets`). */
  presetServer(name: string): Promise<string | undefined>;
}

export class Config {
  private readonly warnedIgnored = new Set<string>();

  constructor(
    private readonly credentials: Credentials,
    private readonly host: ConfigHost,
  ) {}

  /** The value a request uses for `llmSidecar.<key>`: for a user-only key, never a workspace or folder value. */
  value<T>(key: string): T | undefined {
    const seen = vscode.workspace.getConfiguration(SECTION).inspect<T>(key);
    const { value, ignored } = effectiveValue(key, seen);
    if (ignored && !this.warnedIgnored.has(key)) {
      this.warnedIgnored.add(key);
      this.host.log(`ignored llmSidecar.${key} from the workspace settings: only your user settings may set it`);
      void this.host.notify(
        'warning',
        `This workspace's settings set llmSidecar.${key}. It is ignored: where requests and your API token go is ` +
          'decided only by your user settings.',
        [],
      );
    }
    return value;
  }

  /** The server URL the chat settings send to: `customEngineServer`, else the preset's. */
  async chatServer(): Promise<string | undefined> {
    const server = this.value<string>('customEngineServer');
    if (typeof server === 'string' && server.trim()) return server.trim();
    const preset = this.value<string>('preset');
    if (typeof preset === 'string' && preset.trim()) return this.host.presetServer(preset.trim());
    return undefined;
  }

  async chatOrigin(): Promise<string | undefined> {
    return originOf(await this.chatServer());
  }

  /** The deprecated token in the user's settings.json (never a workspace's). */
  legacyToken(): string | undefined {
    const t = this.value<string>('customEngineToken');
    return typeof t === 'string' && t.trim() ? t : undefined;
  }

  /**
   * The selection of a chat request: the chat settings with the secrets of their origin; or, when they name no
   * server and a `customLlms` list is configured, the list's `Default` entry.
   */
  async chatSelection(): Promise<ChatSelection> {
    const origin = await this.chatOrigin();
    const secrets: OriginSecrets = await this.credentials.forOrigin(origin);
    if (!secrets.token) secrets.token = this.legacyToken();
    const settings = buildSettings((key) => this.value(key), secrets);
    if (!namesServer(settings) && this.customLlms().length > 0) return { modelType: 'Default' };
    return { settings };
  }

  /** The `customLlms` list as configured (the array, or AutoDev's JSON string parsed). */
  customLlms(): Json[] {
    let list = this.value<unknown>('customLlms');
    if (typeof list === 'string') {
      try {
        list = list.trim() ? JSON.parse(list) : [];
      } catch {
        return [];
      }
    }
    return Array.isArray(list) ? list.filter(isObject) : [];
  }

  /** The `completion` setting when set (a settings object, `{llm}` or `{profile}`). */
  completion(): Json | undefined {
    const c = this.value<unknown>('completion');
    return isObject(c) && Object.keys(c).length > 0 ? c : undefined;
  }

  /** Whether ghost text has a server: the `completion` setting, or a `Completion` entry in `customLlms`. */
  completionConfigured(): boolean {
    return Boolean(this.completion()) || this.customLlms().some((e) => String(e.modelType ?? '').toLowerCase() === 'completion');
  }

  /** `initializationOptions` / `didChangeConfiguration` settings: `customLlms` and `completion`, secrets added. */
  async sidecarConfiguration(): Promise<{ customLlms: Json[]; completion?: Json }> {
    const customLlms: Json[] = [];
    for (const entry of this.customLlms()) customLlms.push(await this.entryWithSecrets(entry));
    const out: { customLlms: Json[]; completion?: Json } = { customLlms };
    const completion = this.completion();
    if (completion) out.completion = await this.completionWithSecrets(completion);
    return out;
  }

  private async entryWithSecrets(entry: Json): Promise<Json> {
    const origin = originOf(entry.url);
    if (!origin) return entry;
    const { token, headers } = await this.credentials.forOrigin(origin);
    const next: Json = { ...entry };
    const auth = isObject(entry.auth) ? { ...entry.auth } : {};
    if (token && !auth.token && !auth.tokenEnv && !auth.tokenCommand) {
      next.auth = { ...auth, token };
    }
    if (headers && Object.keys(headers).length) {
      if (isObject(entry.customRequest)) {
        const h = isObject(entry.customRequest.headers) ? entry.customRequest.headers : {};
        next.customRequest = { ...entry.customRequest, headers: { ...h, ...headers } };
      } else {
        next.requestFormat = JSON.stringify(withHeaders(entry.requestFormat, headers));
      }
    }
    return next;
  }

  private async completionWithSecrets(completion: Json): Promise<Json> {
    if (!('customEngineServer' in completion) && !('preset' in completion)) return completion; // {llm} or {profile}
    const server =
      typeof completion.customEngineServer === 'string' && completion.customEngineServer.trim()
        ? completion.customEngineServer
        : typeof completion.preset === 'string'
          ? await this.host.presetServer(completion.preset)
          : undefined;
    const { token, headers } = await this.credentials.forOrigin(originOf(server));
    const next: Json = { ...completion };
    if (token && !next.customEngineToken && !next.customEngineTokenEnv && !next.customEngineTokenCommand) next.customEngineToken = token;
    if (headers && Object.keys(headers).length) next.customEngineRequestFormat = withHeaders(next.customEngineRequestFormat, headers);
    return next;
  }

  /**
   * Moves key-like values written in the user's settings to secret storage for the origin they are sent to: header
   * values in `customEngineRequestFormat`, in `completion` and in `customLlms` entries, and `customLlms` tokens.
   * Says what moved. Returns the number of values moved.
   */
  async moveSecretsOutOfSettings(): Promise<number> {
    const config = vscode.workspace.getConfiguration(SECTION);
    const moved: string[] = [];
    const write = (key: string, value: unknown) => config.update(key, value, vscode.ConfigurationTarget.Global);

    const format = this.value<unknown>('customEngineRequestFormat');
    const split = takeSecretHeaders(format);
    if (split) {
      const origin = await this.chatOrigin();
      if (origin) {
        await this.credentials.storeHeaders(origin, split.secrets);
        await write('customEngineRequestFormat', split.rest === '' ? undefined : split.rest);
        moved.push(...Object.keys(split.secrets).map((h) => `header ${h} of llmSidecar.customEngineRequestFormat (for ${origin})`));
      } else {
        this.host.log('key-like headers in llmSidecar.customEngineRequestFormat stay in settings until a server is set');
      }
    }

    const completion = this.completion();
    if (completion) {
      const next = { ...completion };
      const server =
        typeof completion.customEngineServer === 'string' && completion.customEngineServer.trim()
          ? completion.customEngineServer
          : typeof completion.preset === 'string'
            ? await this.host.presetServer(completion.preset)
            : undefined;
      const origin = originOf(server);
      const cs = takeSecretHeaders(completion.customEngineRequestFormat);
      if (origin && cs) {
        await this.credentials.storeHeaders(origin, cs.secrets);
        if (cs.rest === '') delete next.customEngineRequestFormat;
        else next.customEngineRequestFormat = cs.rest;
        moved.push(...Object.keys(cs.secrets).map((h) => `header ${h} of llmSidecar.completion (for ${origin})`));
      }
      if (origin && typeof completion.customEngineToken === 'string' && completion.customEngineToken.trim()) {
        await this.credentials.setToken(origin, completion.customEngineToken.trim());
        delete next.customEngineToken;
        moved.push(`the token of llmSidecar.completion (for ${origin})`);
      }
      if (JSON.stringify(next) !== JSON.stringify(completion)) await write('completion', next);
    }

    const list = this.customLlms();
    let listChanged = false;
    const nextList: Json[] = [];
    for (const entry of list) {
      const origin = originOf(entry.url);
      const next: Json = { ...entry };
      if (origin) {
        const auth = isObject(entry.auth) ? { ...entry.auth } : undefined;
        if (auth && typeof auth.token === 'string' && auth.token.trim()) {
          await this.credentials.setToken(origin, auth.token.trim());
          delete auth.token;
          next.auth = auth;
          moved.push(`the token of customLlms entry ${String(entry.name ?? '?')} (for ${origin})`);
        }
        const rf = takeSecretHeaders(entry.requestFormat);
        if (rf) {
          await this.credentials.storeHeaders(origin, rf.secrets);
          next.requestFormat = typeof rf.rest === 'string' ? rf.rest : JSON.stringify(rf.rest);
          moved.push(...Object.keys(rf.secrets).map((h) => `header ${h} of customLlms entry ${String(entry.name ?? '?')} (for ${origin})`));
        }
        if (isObject(entry.customRequest) && isObject(entry.customRequest.headers)) {
          const headers = entry.customRequest.headers;
          const secrets: Record<string, string> = {};
          const kept: Json = {};
          for (const [name, value] of Object.entries(headers)) {
            if (isKeyLikeHeader(name) && typeof value === 'string' && value.trim()) secrets[name] = value;
            else kept[name] = value;
          }
          if (Object.keys(secrets).length) {
            await this.credentials.storeHeaders(origin, secrets);
            next.customRequest = { ...entry.customRequest, headers: kept };
            moved.push(...Object.keys(secrets).map((h) => `header ${h} of customLlms entry ${String(entry.name ?? '?')} (for ${origin})`));
          }
        }
      }
      if (JSON.stringify(next) !== JSON.stringify(entry)) listChanged = true;
      nextList.push(next);
    }
    if (listChanged) {
      const raw = this.value<unknown>('customLlms');
      await write('customLlms', typeof raw === 'string' ? JSON.stringify(nextList) : nextList);
    }

    if (moved.length) {
      this.host.log(`moved to secret storage: ${moved.join('; ')}`);
      void this.host.notify(
        'info',
        `Moved ${moved.join(', ')} from settings.json to VS Code's secret storage. ` +
          'It is sent only to that origin, at request time.',
        [],
      );
    }
    return moved.length;
  }
}

/** The user-only keys, as `llmSidecar.<key>` (for `affectsConfiguration`). */
export const USER_ONLY_SETTINGS = USER_ONLY_KEYS.map((k) => `${SECTION}.${k}`);
