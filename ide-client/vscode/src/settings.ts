// Building the `settings` object of a request from the extension's settings and the secrets of the request's origin.
// Free of the `vscode` API.
import type { Settings } from './protocol';
import { withHeaders } from './trust';

/** The `llmSidecar.*` keys sent to the sidecar under the same name (AutoDev's dialog keys, then ours). */
export const MIRRORED_KEYS = [
  'customEngineServer',
  'customEngineResponseType',
  'customEngineRequestFormat',
  'customEngineResponseFormat',
  'preset',
  'reasoningFormat',
  'tokenHeader',
  'proxy',
  'caCertificates',
] as const;

/** The settings that make the sidecar read the token itself, so that no token is sent over the pipe. */
export const TOKEN_SOURCE_KEYS = ['customEngineTokenEnv', 'customEngineTokenCommand'] as const;

/** The secrets kept for the origin a request goes to. */
export interface OriginSecrets {
  token?: string;
  /** Key-like header values (`api-key`, `x-api-key`, ...), sent in the request format's customHeaders. */
  headers?: Record<string, string>;
}

function isSet(value: unknown): boolean {
  if (value === undefined || value === null) return false;
  if (typeof value === 'string' && value.trim() === '') return false;
  if (Array.isArray(value) && value.length === 0) return false;
  return true;
}

/**
 * `explicit(key)` returns the value the user set, or undefined for a key left at its default, so that an unset key
 * never overrides what a preset provides. Empty strings and lists count as unset. The secrets are those of the origin
 * the settings send to; a token is not added when a token source (env, command) is set.
 */
export function buildSettings(explicit: (key: string) => unknown, secrets: OriginSecrets = {}): Settings {
  const settings: Settings = {};
  for (const key of [...MIRRORED_KEYS, ...TOKEN_SOURCE_KEYS]) {
    const value = explicit(key);
    if (isSet(value)) settings[key] = value;
  }
  const ownSource = TOKEN_SOURCE_KEYS.some((k) => k in settings);
  if (secrets.token && !ownSource) settings.customEngineToken = secrets.token;
  if (secrets.headers && Object.keys(secrets.headers).length) {
    settings.customEngineRequestFormat = withHeaders(settings.customEngineRequestFormat, secrets.headers);
  }
  return settings;
}

/** Whether the settings name a server of their own (else a `customLlms` entry may serve the request). */
export function namesServer(settings: Settings): boolean {
  return isSet(settings.customEngineServer) || isSet(settings.preset);
}
