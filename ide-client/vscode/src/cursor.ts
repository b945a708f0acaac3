// The text around the cursor that a code completion is asked for: a bounded prefix and suffix, cut at line ends and
// never inside a surrogate pair. Free of the `vscode` API.

/** Default bounds, in UTF-16 code units (the sidecar trims further by `fim.prefixLines` / `fim.suffixLines`). */
export const MAX_PREFIX = 32_000;
export const MAX_SUFFIX = 16_000;

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

/**
 * `text` split at `offset` (UTF-16 code units, as VS Code's `offsetAt` counts). A prefix longer than `maxPrefix`
 * starts at the first line start within the bound (or mid-line when one line is longer); a suffix longer than
 * `maxSuffix` ends at the last line end within it. No cut splits a surrogate pair.
 */
export function textAround(text: string, offset: number, maxPrefix = MAX_PREFIX, maxSuffix = MAX_SUFFIX): { prefix: string; suffix: string } {
  const at = Math.max(0, Math.min(offset, text.length));
  let start = Math.max(0, at - maxPrefix);
  if (start > 0) {
    const nl = text.indexOf('\n', start - 1);
    if (nl >= 0 && nl < at) start = nl + 1;
    else if (isHighSurrogate(text.charCodeAt(start - 1))) start++;
  }
  let end = Math.min(text.length, at + maxSuffix);
  if (end < text.length) {
    const nl = text.lastIndexOf('\n', end - 1);
    if (nl >= at) end = nl + 1;
    else if (isHighSurrogate(text.charCodeAt(end - 1))) end--;
  }
  return { prefix: text.slice(start, at), suffix: text.slice(at, end) };
}
