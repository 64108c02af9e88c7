/**
 * Which endpoints events may go to, decided from the URL alone: pure, so the CLI and the
 * browser module (which must import nothing Node-only) apply the very same rule.
 */

/**
 * Takes a hostname as the URL parser leaves it: IPv4 in dotted decimal whatever was written
 * (http://2130706433/ becomes 127.0.0.1), IPv6 in brackets and compressed, IPv4-mapped in hex.
 */
export function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(hostname) || hostname === '[::1]' || /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(hostname);
}

/**
 * https: anywhere; http: only to this machine, so an event can never cross a network in clear
 * text. What is wrong with `url` as an endpoint, as the end of a sentence naming it; undefined
 * when nothing is.
 */
export function endpointProblem(url: URL): string | undefined {
  if (url.protocol === 'http:' && !isLoopbackHost(url.hostname)) {
    return `uses http: for a non-loopback host "${url.hostname}"; use https: (http: is only for 127.0.0.1, [::1] or localhost)`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `must be an https: URL, got "${url.protocol}"`;
  if (url.username || url.password) return 'must not carry credentials';
  return undefined;
}
