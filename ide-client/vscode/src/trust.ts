// Where a request and its credentials may go: which settings only the user (not a workspace) may set, the origin a
// secret belongs to, and which header values are keys to keep out of settings. Free of the `vscode` API.

/**
 * The settings that decide where a request and its credentials go. They are `machine` scope in package.json, so a
 * workspace's `.vscode/settings.json` cannot set them; the extension also ignores workspace and folder values of
 * them itself (older VS Code versions and remote setups may still report them).
 */
export const USER_ONLY_KEYS = [
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
] as const;

const USER_ONLY = new Set<string>(USER_ONLY_KEYS);

/** What `WorkspaceConfiguration.inspect` reports for one key (the fields this module reads). */
export interface Inspected<T = unknown> {
  globalValue?: T;
  workspaceValue?: T;
  workspaceFolderValue?: T;
}

/**
 * The value the extension uses for `key`: the user's own (global) value for a user-only key, else the most
 * specific value set. `ignored` is true when a workspace or folder value of a user-only key was dropped.
 */
export function effectiveValue<T>(key: string, seen: Inspected<T> | undefined): { value: T | undefined; ignored: boolean } {
  if (!seen) return { value: undefined, ignored: false };
  if (USER_ONLY.has(key)) {
    const ignored = seen.workspaceValue !== undefined || seen.workspaceFolderValue !== undefined;
    return { value: seen.globalValue, ignored };
  }
  return { value: seen.workspaceFolderValue ?? seen.workspaceValue ?? seen.globalValue, ignored: false };
}

/** `scheme://host:port` of an http(s) URL (the default port written out), or undefined for anything else. */
export function originOf(url: unknown): string | undefined {
  if (typeof url !== 'string' || !url.trim()) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url.trim());
  } catch {
    return undefined;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return undefined;
  const port = parsed.port || (parsed.protocol === 'https:' ? '443' : '80');
  return `${parsed.protocol}//${parsed.hostname}:${port}`;
}

/** A header whose value is a credential: authorization, cookies, and any name with key, token, secret or password. */
export function isKeyLikeHeader(name: string): boolean {
  const n = name.trim().toLowerCase();
  if (n === 'authorization' || n === 'proxy-authorization' || n === 'cookie') return true;
  return /key|token|secret|password/.test(n);
}

/** The SecretStorage key of the API token of an origin. */
export function tokenSecretKey(origin: string): string {
  return `llmSidecar.token:${origin}`;
}

/** The SecretStorage key of a header value kept for an origin. */
export function headerSecretKey(origin: string, header: string): string {
  return `llmSidecar.header:${origin}:${header.toLowerCase()}`;
}

/** The one SecretStorage key of the versions before tokens were kept per origin. */
export const LEGACY_SECRET_KEY = 'llmSidecar.customEngineToken';

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A request format in either form (JSON string or object) as an object, or undefined when it is not one. */
export function parseRequestFormat(value: unknown): Json | undefined {
  if (isObject(value)) return value;
  if (typeof value !== 'string' || !value.trim()) return undefined;
  try {
    const parsed = JSON.parse(value);
    return isObject(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Splits the key-like header values with a plain string value out of a request format. A key source object
 * (`{"env": ...}`, `{"command": [...]}`) is not a secret itself and stays. Returns undefined when there is nothing
 * to take; else the format without those headers, in the form it came in (string or object), and the headers.
 */
export function takeSecretHeaders(format: unknown): { rest: unknown; secrets: Record<string, string> } | undefined {
  const parsed = parseRequestFormat(format);
  if (!parsed || !isObject(parsed.customHeaders)) return undefined;
  const secrets: Record<string, string> = {};
  const kept: Json = {};
  for (const [name, value] of Object.entries(parsed.customHeaders)) {
    if (isKeyLikeHeader(name) && typeof value === 'string' && value.trim()) secrets[name] = value;
    else kept[name] = value;
  }
  if (Object.keys(secrets).length === 0) return undefined;
  const next: Json = { ...parsed };
  if (Object.keys(kept).length) next.customHeaders = kept;
  else delete next.customHeaders;
  const rest = typeof format === 'string' ? (Object.keys(next).length ? JSON.stringify(next) : '') : next;
  return { rest, secrets };
}

/** Adds header values to a request format (either form); the result is an object (the sidecar takes both). */
export function withHeaders(format: unknown, headers: Record<string, string>): unknown {
  if (Object.keys(headers).length === 0) return format;
  const parsed = parseRequestFormat(format);
  if (!parsed && typeof format === 'string' && format.trim()) return format; // not JSON: the sidecar reports it
  const base = parsed ?? {};
  const customHeaders = isObject(base.customHeaders) ? { ...base.customHeaders } : {};
  return { ...base, customHeaders: { ...customHeaders, ...headers } };
}

/** The SecretStorage operations this module needs (VS Code's `SecretStorage` has them). */
export interface SecretStore {
  get(key: string): PromiseLike<string | undefined>;
  store(key: string, value: string): PromiseLike<void>;
  delete(key: string): PromiseLike<void>;
}

/**
 * Moves the single token of older versions to `origin` (the origin of the server configured now), once: a token
 * already stored for that origin wins. Returns true when the legacy secret was moved (or dropped), false when there
 * was none or no origin is known yet (then it stays, to be moved once one is).
 */
export async function migrateLegacySecret(store: SecretStore, origin: string | undefined): Promise<boolean> {
  const legacy = await store.get(LEGACY_SECRET_KEY);
  if (!legacy || !origin) return false;
  if (!(await store.get(tokenSecretKey(origin)))) await store.store(tokenSecretKey(origin), legacy);
  await store.delete(LEGACY_SECRET_KEY);
  return true;
}
