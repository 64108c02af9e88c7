/**
 * Free text (messages, function and file names, reasons) may carry what must never leave the
 * host. Each rule replaces one kind of personal or secret data with a placeholder; ordinary
 * words, codes and source paths (`rrdengine.c`, `ECONNREFUSED`, `src/daemon/main.c`) stay
 * readable. Order matters: whole URLs and e-mail addresses go before the parts they contain.
 */

interface Rule {
  pattern: RegExp;
  placeholder: string;
}

const HEX = '[0-9A-Fa-f]';

/**
 * Built for each scrubber, not when the module loads: where a browser lacks lookbehind (Safari
 * before 16.4) the dashboard module's createScrubber call fails and is caught, instead of the
 * page's import of the module failing.
 */
function genericRules(): Rule[] {
  return [
    // URLs with credentials or a query string (tokens live there); plain URLs stay.
    // Each match may only start where its run of characters starts (the lookbehinds): without
    // them a long run that never matches is rescanned from every position, quadratic in its length.
    { pattern: /(?<![a-z0-9+.-])[a-z][a-z0-9+.-]*:\/\/(?:[^\s/?#@]*@[^\s]*|[^\s?#]*\?[^\s]*)/gi, placeholder: '<url>' },
    { pattern: /(?<![\w.!#$%&'*+/=?^`{|}~-])[\w.!#$%&'*+/=?^`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+/g, placeholder: '<email>' },
    // Home and user directories: the user's name is the second segment.
    { pattern: /(?:\/(?:home|Users|export\/home|var\/home)\/[^\s/'"`]+|\/root(?=[\s/'"`]|$)|[A-Za-z]:\\(?:Users|Documents and Settings)\\[^\s\\'"`]+)/g, placeholder: '<path>' },
    { pattern: new RegExp(`\\b${HEX}{8}-${HEX}{4}-${HEX}{4}-${HEX}{4}-${HEX}{12}\\b`, 'g'), placeholder: '<uuid>' },
    { pattern: new RegExp(`\\b${HEX}{2}(?:([:-])${HEX}{2})(?:\\1${HEX}{2}){4}\\b`, 'g'), placeholder: '<mac>' },
    // IPv6: eight groups, or a "::" form with at least one group (a time like 12:30:45 is neither).
    {
      pattern: new RegExp(
        `(?<![\\w:])(?:(?:${HEX}{1,4}:){7}${HEX}{1,4}|(?:${HEX}{1,4}:){1,7}:(?:${HEX}{1,4}(?::${HEX}{1,4}){0,6})?|::(?:${HEX}{1,4}(?::${HEX}{1,4}){0,6}))(?:%[\\w.]+)?(?![\\w:])`,
        'g',
      ),
      placeholder: '<ip>',
    },
    { pattern: /(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])/g, placeholder: '<ip>' },
    // Long hex runs: keys, tokens, machine ids, hashes.
    { pattern: new RegExp(`\\b${HEX}{16,}\\b`, 'g'), placeholder: '<hex>' },
  ];
}

/** Names shorter than this are common words ("a", "pi"); replacing them would wreck the text. */
const MIN_NAME_LENGTH = 3;
/** No real host (253) or user name is longer; a longer one read from a strange system file is not a name. */
const MAX_NAME_LENGTH = 255;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Builds the scrubber for this host: the generic rules, then the host's own names (host name,
 * its short form, user names) wherever they appear, whole-word and case-insensitive.
 */
export function createScrubber(hostNames: readonly string[], userNames: readonly string[]): (text: string) => string {
  const local: Rule[] = [];
  for (const [names, placeholder] of [[hostNames, '<host>'], [userNames, '<user>']] as const) {
    const usable = [...new Set(names.map((n) => n.trim()).filter((n) => n.length >= MIN_NAME_LENGTH && n.length <= MAX_NAME_LENGTH))].sort((a, b) => b.length - a.length);
    if (usable.length > 0) local.push({ pattern: new RegExp(`(?<![\\w-])(?:${usable.map(escapeRegExp).join('|')})(?![\\w-])`, 'gi'), placeholder });
  }
  const rules = [...genericRules(), ...local];
  return (text) => rules.reduce((result, { pattern, placeholder }) => result.replace(pattern, placeholder), text);
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
