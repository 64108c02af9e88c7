import { isLoopbackHost, type Env } from '../../before-consent/config/settings.ts';

/**
 * The proxy an https: request to `url` goes through, from the environment as curl reads it:
 * `https_proxy`/`HTTPS_PROXY`, then `all_proxy`/`ALL_PROXY`, lowercase first; none when
 * `no_proxy`/`NO_PROXY` matches the host. A proxy without a scheme is http://.
 *
 * A loopback endpoint (127.0.0.0/8, [::1], localhost) is never proxied, whatever the variables
 * say: a proxy would carry the event to another machine, and for http: in clear text. As http:
 * is allowed only for loopback (settings.ts), `http_proxy` is never read.
 */
export function proxyFor(url: URL, env: Env): URL | undefined {
  if (url.protocol !== 'https:' || isLoopbackHost(url.hostname)) return undefined;
  const raw = ['https_proxy', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY'].map((name) => env[name]).find((value) => value !== undefined && value.trim() !== '');
  if (raw === undefined || bypassesProxy(url.hostname, env.no_proxy ?? env.NO_PROXY ?? '')) return undefined;
  const text = raw.trim();
  return new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`);
}

/** curl's NO_PROXY: `*`, host names matching themselves and their subdomains, IPs and IPv4 CIDR. */
export function bypassesProxy(hostname: string, noProxy: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return noProxy
    .split(/[\s,]+/)
    .map((entry) => entry.trim().toLowerCase())
    .filter((entry) => entry !== '')
    .some((entry) => {
      if (entry === '*') return true;
      const [address, bits] = entry.split('/');
      if (bits !== undefined) return inIpv4Cidr(host, address, Number(bits));
      // A port is ignored; an IPv6 literal (bracketed or bare) has colons of its own.
      const bracketed = /^\[([^\]]+)\]/.exec(address)?.[1];
      const bare = bracketed ?? (address.split(':').length === 2 ? address.split(':')[0] : address);
      const name = bare.replace(/^\*?\./, '');
      return host === name || host.endsWith(`.${name}`);
    });
}

function ipv4ToNumber(address: string): number | undefined {
  const parts = address.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) return undefined;
  return parts.reduce((value, part) => value * 256 + Number(part), 0);
}

function inIpv4Cidr(host: string, network: string, bits: number): boolean {
  const hostValue = ipv4ToNumber(host);
  const networkValue = ipv4ToNumber(network);
  if (hostValue === undefined || networkValue === undefined || !(bits >= 0 && bits <= 32)) return false;
  const size = 2 ** (32 - bits);
  return Math.floor(hostValue / size) === Math.floor(networkValue / size);
}
