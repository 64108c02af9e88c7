/**
 * Parses os-release style files (also lsb-release and freebsd-version assignments) the way a
 * POSIX shell would read the assignments, without ever evaluating anything: `$(reboot)` stays
 * the literal text `$(reboot)`.
 */
const KEY = /[A-Za-z_][A-Za-z0-9_]*/y;
/** Inside double quotes a backslash only escapes these characters (POSIX 2.2.3). */
const DOUBLE_QUOTE_ESCAPES = new Set(['$', '`', '"', '\\', '\n']);
/**
 * Runs of characters that stand for themselves, outside quotes and inside double quotes: taken
 * whole, so a value costs a copy per run, not a string per character (a 1 MB value read from a
 * strange os-release took ~300 ms, most of it garbage collection).
 */
const PLAIN_UNQUOTED = /[^ \t\n\\'"]+/y;
const PLAIN_IN_DOUBLE_QUOTES = /[^"\\]+/y;

/** The run of `plain` characters at `pos`, or '' where there is none. */
function runAt(plain: RegExp, text: string, pos: number): string {
  plain.lastIndex = pos;
  return plain.exec(text)?.[0] ?? '';
}

export function parseOsRelease(input: string): Record<string, string> {
  const text = input.replace(/\r\n?/g, '\n');
  const record: Record<string, string> = {};
  let pos = 0;
  const skipLine = () => {
    const end = text.indexOf('\n', pos);
    pos = end === -1 ? text.length : end + 1;
  };
  while (pos < text.length) {
    while (pos < text.length && ' \t\n'.includes(text[pos])) pos++;
    if (pos >= text.length) break;
    KEY.lastIndex = pos;
    const key = KEY.exec(text)?.[0];
    if (key === undefined || text[pos + key.length] !== '=') {
      skipLine();
      continue;
    }
    pos += key.length + 1;
    let value = '';
    while (pos < text.length && !' \t\n'.includes(text[pos])) {
      const c = text[pos];
      if (c === '\\') {
        if (text[pos + 1] !== undefined && text[pos + 1] !== '\n') value += text[pos + 1];
        pos += 2;
      } else if (c === "'") {
        const end = text.indexOf("'", pos + 1);
        const stop = end === -1 ? text.length : end;
        value += text.slice(pos + 1, stop);
        pos = stop + 1;
      } else if (c === '"') {
        pos++;
        while (pos < text.length && text[pos] !== '"') {
          const run = runAt(PLAIN_IN_DOUBLE_QUOTES, text, pos);
          if (run !== '') {
            value += run;
            pos += run.length;
          } else if (DOUBLE_QUOTE_ESCAPES.has(text[pos + 1])) {
            if (text[pos + 1] !== '\n') value += text[pos + 1];
            pos += 2;
          } else {
            value += text[pos++];
          }
        }
        pos++;
      } else {
        const run = runAt(PLAIN_UNQUOTED, text, pos);
        value += run;
        pos += run.length;
      }
    }
    record[key] = value;
    // Anything after the value on the same line (a comment, a second word) is not part of it.
    if (pos < text.length && text[pos] !== '\n') skipLine();
  }
  return record;
}
