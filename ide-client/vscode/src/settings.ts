// Building the `settings` object of a request from the extension's settings. Free of the `vscode` API.
import type { Settings } from './protocol';

/** The `llmSidecar.*` keys sent to the sidecar under the same name (AutoDev's dialog keys, then ours). */
export const MIRRORED_KEYS = [
  'customEngineServer',
  'customEngineResponseType',
  'customEngineRequestFormat',
  'customEngineResponseFormat',
  'preset',
  'reasoningFormat',
] as const;

/**
 * `explicit(key)` returns the value the user set (in any scope), or undefined for a key left at its default, so that
 * an unset key never overrides what a preset provides. Empty strings count as unset.
 */
export function buildSettings(explicit: (key: string) => unknown, token: string | undefined): Settings {
  const settings: Settings = {};
  for (const key of MIRRORED_KEYS) {
    const value = explicit(key);
    if (value === undefined || value === null) continue;
    if (typeof value === 'string' && value.trim() === '') continue;
    settings[key] = value;
  }
  if (token) settings.customEngineToken = token;
  return settings;
}
