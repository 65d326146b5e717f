/**
 * Text that leaves the server in an API body (error messages, per-frame errors, a worker's last
 * error) loses the absolute paths it may carry (an interpreter, a temp file, a Python module in a
 * stderr line) and any control character a client put in a name it sent (NUL, escapes, newlines
 * become U+FFFD). The originals stay in the log, under the same request id.
 */

/** An absolute POSIX or Windows path, after a start, a space, a quote, `=`, `(`, `[` or `,`. */
const ABSOLUTE_PATH = /(^|[\s'"=([,])(?:\/|[A-Za-z]:\\)[^\s'"()[\],;]+/g;

/** C0 and C1 control characters but tab and newline (a worker's stderr tail keeps its lines), and bidi controls. */
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

export function withoutPaths(text: string): string {
  return text.replace(ABSOLUTE_PATH, '$1<path>').replace(CONTROL, '\ufffd');
}

/** withoutPaths on every string inside a JSON-like value. */
export function publicValue<T>(value: T): T {
  if (typeof value === 'string') return withoutPaths(value) as T;
  if (Array.isArray(value)) return value.map((v) => publicValue(v)) as T;
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, publicValue(v)])) as T;
  }
  return value;
}
