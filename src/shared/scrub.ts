/**
 * Free text (messages, function and file names, reasons, option names) and values read from
 * system files may carry what must never leave the host. Each pass replaces one kind of personal
 * or secret data with a placeholder; ordinary words, codes, versions and system or source paths
 * (`rrdengine.c:212`, `ECONNREFUSED`, `v2.0.0-rc.1`, `/usr/lib/x86_64-linux-gnu/libc.so.6`) stay.
 *
 * Linear time, whatever the input: a backtracking regex is quadratic when a match may start at
 * every position of a long run and each start rescans the run. So every pattern below either
 * starts with a literal (`-----BEGIN`, `authorization`, `eyJ`), or may only start where its run of
 * characters starts (the lookbehinds), and then consumes what it scanned or fails within a bounded
 * distance (`{0,40}`). Runs of one class are disjoint, so each pass reads each character a bounded
 * number of times. Deciding what a run is (an address? a version? random?) happens in plain code
 * on the run, never by a second pattern that could rescan it.
 *
 * A dotted quad is an IPv4 address when each part is 0-255, unless it is a version: glued to a
 * word (`v1.2.3.4`, `libfoo-1.2.3.4`), after the word version/ver/release/rev/build/kernel/firmware,
 * or followed by a pre-release or build suffix (`1.2.3.4-rc1`, `1.2.3.4+deb12`, `1.2.3.4~b1`).
 * `10.0.19045.2965` is no address (19045 > 255); a bare `1.2.3.4` is one.
 */
import { onFirstUse } from './first-use.ts';

type Replacer = (match: string, ...groups: string[]) => string;
/**
 * A pattern, its replacement, and a literal the pattern cannot match without (lower case; looked
 * for in lower case when the pattern ignores case). Where the text lacks that literal the pattern
 * is not run: V8 compiles a pattern on its first run, and these cost the most to compile (the
 * e-mail one ~1.3 ms, all three ~2 ms of a run that sends an event; issue 17). A pattern given as
 * a function is built on the first text that holds its literal (which then has no letters): the
 * e-mail one's Unicode classes cost ~1.5 ms to build, in every scrubber, for texts that mostly
 * hold no `@`.
 */
type Pass = [RegExp | (() => RegExp), string | Replacer, string?];

function patternOf([pattern]: Pass): RegExp {
  return typeof pattern === 'function' ? pattern() : pattern;
}

const HEX = '[\\da-f]';
const SECRET_KEY =
  '(?:pass(?:word|wd|phrase)?|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|credentials?|auth)';
const PRIVATE_KEY_LINE = (edge: string) => `-----${edge}[ A-Z0-9]{0,40}PRIVATE KEY[ A-Z]{0,12}-----`;
/** Letters, digits and marks of any script: `jürgen@exämple.de` is an address too. */
const WORD_CHAR = '\\p{L}\\p{N}\\p{M}';
const EMAIL_LOCAL = `[${WORD_CHAR}.!#$%&*+^_~-]`;
/** Home directories whose next segment is not a person. */
const NOT_USERS = new Set(['shared', 'public', 'default', 'default user', 'all users']);
/** Names shorter than this are single letters ("a"); a two-letter host such as `vm` is a name. */
const MIN_NAME_LENGTH = 2;
/** No real host (253) or user name is longer; a longer one read from a strange system file is not a name. */
const MAX_NAME_LENGTH = 255;
/** The longest text an IPv6 address (with an IPv4 tail) can be; a longer run is never parsed as one. */
const MAX_ADDRESS_LENGTH = 64;

/** Removes characters from the end of `text` while `drop` says so; a loop, so it stays linear. */
function trimEnd(text: string, drop: (char: string) => boolean): string {
  let end = text.length;
  while (end > 0 && drop(text[end - 1])) end--;
  return text.slice(0, end);
}

function isIPv4(text: string): boolean {
  const parts = text.split('.');
  return parts.length === 4 && parts.every((part) => /^\d{1,3}$/.test(part) && Number(part) <= 255);
}

/** RFC 4291 text forms: eight groups, one `::`, and an IPv4 tail counted as two groups. */
function isIPv6(text: string): boolean {
  if (text.length > MAX_ADDRESS_LENGTH || !/[0-9A-Fa-f]/.test(text)) return false;
  let head = text;
  let tailGroups = 0;
  if (text.includes('.')) {
    const lastColon = text.lastIndexOf(':');
    if (lastColon < 0 || !isIPv4(text.slice(lastColon + 1))) return false;
    head = text.slice(0, lastColon + 1);
    tailGroups = 2;
    if (head.endsWith('::')) head += '0';
    else head = head.slice(0, -1);
  }
  const halves = head.split('::');
  if (halves.length > 2) return false;
  const groups = halves.flatMap((half) => (half === '' ? [] : half.split(':')));
  if (!groups.every((group) => /^[0-9A-Fa-f]{1,4}$/.test(group))) return false;
  const count = groups.length + tailGroups;
  return halves.length === 2 ? count <= 8 : count === 8;
}

/** What stands before a dotted quad that makes it a version rather than an address. */
const VERSION_BEFORE = /(?:[A-Za-z_]-?|\b(?:version|ver|release|rev|build|kernel|firmware|v)[\s:=]{1,3})$/i;
/** What follows a dotted quad that makes it a version (`-rc1`, `+deb12`, `~b1`). */
const VERSION_AFTER = /^(?:-[A-Za-z]|[+~])/;

/**
 * Random-looking: two of upper case, lower case and digits, changing class often. A secret drawn
 * from 62 letters and digits changes class at about 62% of its characters (fewer than a quarter
 * of 48 random ones: odds about 1 in 10 million); words and identifiers (`SSL_ERROR_SYSCALL`,
 * `getHTTPResponseCode2Handler`) change at a few, so they stay. Runs under 32 characters must
 * change at a third, as such short identifiers are many and such short secrets few. CamelCase
 * names (`AbstractSingletonProxyFactoryBean2`: lower-case runs of five or more on average, at
 * most one digit) stay too; random letters make runs of two on average (a run of 4.0 was seen in
 * 300,000 random secrets, so four would let some through).
 */
function looksRandom(run: string): boolean {
  const classes = Array.from(run.replace(/[^A-Za-z0-9]/g, ''), (char) => (char >= 'a' ? 2 : char >= 'A' ? 1 : 0));
  if (classes.length < 20 || new Set(classes).size < 2) return false;
  const changes = classes.filter((cls, index) => index > 0 && cls !== classes[index - 1]).length;
  const lowerRuns = classes.filter((cls, index) => cls === 2 && classes[index - 1] !== 2).length;
  const lower = classes.filter((cls) => cls === 2).length;
  const digits = classes.filter((cls) => cls === 0).length;
  if (digits <= 1 && lower >= 5 * lowerRuns) return false;
  return changes * (classes.length < 32 ? 3 : 4) >= classes.length - 1;
}

/**
 * The passes, in order: whole blocks and key=value forms before the tokens inside them, URLs and
 * e-mail addresses before the names and addresses they contain. Built for each scrubber, not
 * when the module loads: where a browser lacks lookbehind (Safari before 16.4) the dashboard
 * module's createScrubber call fails and is caught, instead of the page's import failing. The
 * e-mail pattern, built on first use, needs nothing the others built here do not.
 */
function genericPasses(learnUser: (name: string) => void): Pass[] {
  // The name after a home directory is a user's: the names pass looks for it elsewhere too.
  const home = (_match: string, name?: string) => {
    if (name && !NOT_USERS.has(name.toLowerCase())) learnUser(name);
    return '<path>';
  };
  return [
    // A private key, to its end line or to the end of the text (a cut one).
    [new RegExp(`${PRIVATE_KEY_LINE('BEGIN')}[^]*?(?:${PRIVATE_KEY_LINE('END')}|$)`, 'g'), '<private-key>'],
    [
      /\b((?:proxy-)?authorization["']?\s{0,3}[:=]\s{0,3}["']?)(?:(basic|bearer|digest|negotiate|ntlm|token)\s{1,3})?[^\s"',;]+/gi,
      (_match, head, scheme) => `${head}${scheme ? `${scheme} ` : ''}<secret>`,
      'authorization',
    ],
    [
      /\b(bearer|basic)(\s{1,3})([A-Za-z0-9._~+/=-]{8,})/gi,
      // A credential has a digit or a symbol, or an upper-case letter after a lower-case one (not "Basic authentication").
      (match, scheme, space, credential) => {
        const lower = credential.search(/[a-z]/);
        return /[0-9._~+/=-]/.test(credential) || (lower >= 0 && /[A-Z]/.test(credential.slice(lower))) ? `${scheme}${space}<secret>` : match;
      },
    ],
    // URLs with credentials or a query string (tokens live there); plain URLs stay.
    [
      /(?<![a-z0-9+.-])[a-z][a-z0-9+.-]{0,30}:\/\/[^\s"'<>`]*/gi,
      (match) => {
        const url = trimEnd(match, (char) => '.,;:!?)]}'.includes(char));
        return /:\/\/[^\s/?#@]*@/.test(url) || url.includes('?') ? `<url>${match.slice(url.length)}` : match;
      },
      '://',
    ],
    // password=..., "api_key": "...", --token X: the key stays, its value goes.
    [
      new RegExp(`(?<![\\w.-])((?:--?[\\w.-]{0,40}?${SECRET_KEY}\\s{1,3})|(?:[\\w.-]{0,40}?${SECRET_KEY}["']?\\s{0,3}[:=]\\s{0,3}))("[^"]*"?|'[^']*'?|[^\\s"',;&)\\]}>]+)`, 'gi'),
      (_match, head, value) => {
        const quote = value[0] === '"' || value[0] === "'" ? value[0] : '';
        return `${head}${quote}<secret>${quote && value.length > 1 && value.endsWith(quote) ? quote : ''}`;
      },
    ],
    [
      /(?<![\w-])(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_\w{20,}|glpat-[\w-]{20,}|A[KS]IA[A-Z0-9]{16}(?![A-Za-z0-9])|xox[abposre]-[A-Za-z0-9-]{10,}|[rsp]k_(?:live|test)_[A-Za-z0-9]{10,}|eyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*)/g,
      '<token>',
    ],
    [
      onFirstUse(() => new RegExp(`(?<!${EMAIL_LOCAL})${EMAIL_LOCAL}+@[${WORD_CHAR}](?:[${WORD_CHAR}-]|\\.(?=[${WORD_CHAR}]))*`, 'gu')),
      (match) => (/\p{L}/u.test(match.slice(match.indexOf('@'))) ? '<email>' : match),
      '@',
    ],
    // Home and user directories: the user's name is the segment after them; the rest stays.
    // Windows first: `C:/Users/x` is one path, not a drive letter before a macOS home.
    [/(?<![\w\\])[A-Za-z]:[\\/]{1,2}(?:Users|Documents and Settings)[\\/]{1,2}([^\s\\/'"`<>]+)/gi, home],
    [/(?<![\w.~-])\/(?:home|Users|export\/home|var\/home|usr\/home)\/([^\s/'"`<>]+)/g, home],
    [/(?<![\w.~-])\/root(?![\w-])/g, '<path>'],
    [/(?<![\w\\])\\\\[^\s\\/'"`<>]+\\[^\s\\/'"`<>]+/g, '<path>'],
    [/(?<![\w~\\/.:-])~(?:([A-Za-z_][\w.-]*)(?![\w(])|(?=\/))/g, home],
    [new RegExp(`\\b${HEX}{8}(?:-${HEX}{4}){3}-${HEX}{12}\\b`, 'gi'), '<uuid>'],
    // IPv6 in every text form, with a zone; glued to a word it is code (`std::map`), not an address.
    // Every form has two colons, so the pattern asks for them before a run costs a call.
    [
      /(?<![\da-f:.])[\da-f.]*:[\da-f.]*:[\da-f:.]*(?:%[\w.-]+)?/gi,
      (match, ...rest) => {
        const [offset, text] = rest.slice(-2) as unknown as [number, string];
        if (offset > 0 && /[\w]/.test(text[offset - 1])) return match;
        const candidate = trimEnd(match, (char) => char === '.');
        const zone = candidate.indexOf('%');
        let address = zone < 0 ? candidate : candidate.slice(0, zone);
        // "connect to fe80::1: refused": the colon ends the sentence's clause, not the address.
        if (zone < 0 && !isIPv6(address) && /[^:]:$/.test(address)) address = address.slice(0, -1);
        if (!isIPv6(address)) return match;
        return `<ip>${match.slice(zone < 0 ? address.length : candidate.length)}`;
      },
    ],
    // MACs: colon or dash pairs, Cisco's dotted quads, or twelve hex digits standing alone.
    [new RegExp(`\\b(?:${HEX}{2}([:-])${HEX}{2}(?:\\1${HEX}{2}){4}|${HEX}{4}\\.${HEX}{4}\\.${HEX}{4})\\b|(?<![\\w-])${HEX}{12}(?![\\w-])`, 'gi'), '<mac>'],
    [
      /(?<![\d.])\d[\d.]*/g,
      (match, ...rest) => {
        const [offset, text] = rest.slice(-2) as unknown as [number, string];
        const address = trimEnd(match, (char) => char === '.');
        if (!isIPv4(address)) return match;
        const after = text.slice(offset + address.length, offset + address.length + 2);
        if (VERSION_BEFORE.test(text.slice(Math.max(0, offset - 12), offset)) || VERSION_AFTER.test(after)) return match;
        return `<ip>${match.slice(address.length)}`;
      },
    ],
    // Long hex runs: keys, tokens, machine ids, hashes.
    [new RegExp(`\\b${HEX}{16,}\\b`, 'gi'), '<hex>'],
    // Long random-looking runs (base64 and base62 secrets, AWS secret keys).
    [/(?<![\w+/=-])[\w+/=-]{20,}/g, (match) => (looksRandom(match) ? '<secret>' : match)],
  ];
}

function mayMatch([pattern, , literal]: Pass, text: string): boolean {
  return literal === undefined || (typeof pattern !== 'function' && pattern.ignoreCase ? text.toLowerCase() : text).includes(literal);
}

/** ESC and CSI sequences (colours, cursor moves, titles) go whole; other controls go alone. */
const ESCAPE_SEQUENCE = /\x1b(?:\[[0-?]*[ -/]*[@-~]?|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-_]?)|\x9b[0-?]*[ -/]*[@-~]?/g;
/** C0 and C1 controls, DEL, and the invisible characters that reorder or hide text on a terminal. */
const CONTROL = /[\x00-\x08\x0e-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/g;
/** Line breaks and tabs become spaces, so the words either side stay apart. */
const BREAK = /[\t\n\v\f\r\u2028\u2029]/g;

function stripControls(text: string): string {
  return text.replace(ESCAPE_SEQUENCE, '').replace(CONTROL, '').replace(BREAK, ' ');
}

/** A name as the names pass matches it: case-folded, within the length bounds, else nothing. */
function usableName(name: string): string | undefined {
  const trimmed = name.trim().toLowerCase();
  return trimmed.length >= MIN_NAME_LENGTH && trimmed.length <= MAX_NAME_LENGTH ? trimmed : undefined;
}

/**
 * Replaces the host's and users' names where they stand as words (a run of letters, digits, `_`,
 * `-` and `.`, or a dot-separated part of one): a Set lookup per run, so any number of names
 * costs the same. Placeholders already in the text are not names.
 */
function replaceNames(text: string, words: () => RegExp, names: ReadonlyMap<string, string>, maxLabels: number): string {
  if (names.size === 0) return text;
  return text.replace(words(), (run, offset: number) => {
    if (text[offset - 1] === '<' && text[offset + run.length] === '>') return run;
    const whole = names.get(run.toLowerCase());
    if (whole) return whole;
    const labels = run.split('.');
    const out: string[] = [];
    for (let start = 0; start < labels.length; ) {
      let end = Math.min(labels.length, start + maxLabels);
      for (; end > start; end--) {
        const placeholder = names.get(labels.slice(start, end).join('.').toLowerCase());
        if (placeholder) {
          out.push(placeholder);
          break;
        }
      }
      if (end === start) out.push(labels[start++]);
      else start = end;
    }
    return out.join('.');
  });
}

/**
 * The scrubber reads at most this much of a value. Values are cut to MAX_TEXT_LENGTH after
 * scrubbing, so what lies beyond could reach a payload only where placeholders had shrunk the
 * text before it seven-fold; reading it would cost time on every hostile input, for nothing.
 */
export const MAX_SCRUBBED_LENGTH = 8000;
/** How far back from the limit a word boundary is looked for, so no word is split in two. */
const BOUNDARY_SEARCH = 256;

/** The first MAX_SCRUBBED_LENGTH characters, ending at a space where one is near the limit. */
function bounded(text: string): string {
  if (text.length <= MAX_SCRUBBED_LENGTH) return text;
  for (let end = MAX_SCRUBBED_LENGTH; end > MAX_SCRUBBED_LENGTH - BOUNDARY_SEARCH; end--) {
    if (/\s/.test(text[end])) return text.slice(0, end);
  }
  return text.slice(0, MAX_SCRUBBED_LENGTH);
}

/**
 * Builds the scrubber for this host: the value bounded, control characters out, then the generic passes, then the
 * host's own names (host name, its short form), the users' names and any user name seen in a home
 * path of the same text (`/home/bapply/bapply` is `<path>/<user>`), whole-word, any case.
 */
export function createScrubber(hostNames: readonly string[], userNames: readonly string[]): (text: string) => string {
  const known = new Map<string, string>();
  for (const name of userNames) {
    const usable = usableName(name);
    if (usable) known.set(usable, '<user>');
  }
  // A host name that is also a user name is the host's: either way it does not go out.
  for (const name of hostNames) {
    const usable = usableName(name);
    if (usable) known.set(usable, '<host>');
  }
  // The names learned from one text's home paths, for that text only: the output of one value
  // never depends on which values were scrubbed before it.
  let names = known;
  // Built on the first text with a name to look for: its Unicode classes cost ~0.5 ms to build,
  // and system values, scrubbed with no names, never need it. Not a literal, so a browser
  // without Unicode property escapes fails a call, not the module's import.
  const words = onFirstUse(() => new RegExp(`[${WORD_CHAR}_.-]+`, 'gu'));
  const passes = genericPasses((name) => {
    const usable = usableName(name);
    if (usable && !names.has(usable)) names.set(usable, '<user>');
  });
  return (text) => {
    names = new Map(known);
    const generic = passes.reduce((result, pass) => (mayMatch(pass, result) ? result.replace(patternOf(pass), pass[1] as string) : result), stripControls(bounded(text)));
    let maxLabels = 1;
    for (const name of names.keys()) maxLabels = Math.max(maxLabels, name.split('.').length);
    return replaceNames(generic, words, names, maxLabels);
  };
}

/**
 * Free text longer than this is cut (a 120 KB argv value must neither crash nor bloat a payload).
 * The cut happens after scrubbing, so it can never leave half a secret the scrubber would miss.
 */
export const MAX_TEXT_LENGTH = 1000;
/** Cut by code points, so a cut never splits a surrogate pair into invalid UTF-16. */
export function cut(value: string): string {
  if (value.length <= MAX_TEXT_LENGTH) return value;
  // A code point is at most two UTF-16 units: the first 2n units hold the first n code points.
  return Array.from(value.slice(0, MAX_TEXT_LENGTH * 2)).slice(0, MAX_TEXT_LENGTH).join('');
}

/**
 * For values this tool reads rather than is given (os-release fields, `product_version`): the
 * same generic passes and control-character removal as free text, then the cut. They name no
 * host or user the caller knows of, but an address, a home path or an escape sequence in them
 * must not go out as written.
 */
export function scrubSystemValue(text: string): string {
  systemValueScrubber ??= createScrubber([], []);
  return cut(systemValueScrubber(text));
}

/**
 * One for the run, made on first use: it knows no names, so it scrubs every value alike, and an
 * event's 20-odd system values then cost one set of patterns, not one each (issue 17).
 */
let systemValueScrubber: ((text: string) => string) | undefined;
