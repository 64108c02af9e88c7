import fc from 'fast-check';
import { createScrubber } from '../../src/shared/scrub.ts';

/**
 * The scrubber's properties, shared by test/unit/shared/scrub.test.ts (one run each, a new seed every time)
 * and test/support/scrub-soak.ts (many seeds in a row, to show they fail only on a real leak).
 */

const PLACEHOLDER = /<[a-z-]+>/g;

/** A generated secret: the text that goes in, the part that identifies someone, what may stay. */
interface Secret {
  value: string;
  core: string;
  /** Text the scrubber keeps by design and that may contain the core by chance (the rest of a home path). */
  kept?: string;
}

/**
 * A leak is the core still readable in the output once the placeholders and the kept text are
 * taken out: a user `pat` is not leaked by `<path>`, nor a user `abc` by the kept `/xabcx`.
 */
export function leaks(output: string, secret: Secret): boolean {
  const visible = (secret.kept ? output.replace(secret.kept, ' ') : output).replace(PLACEHOLDER, ' ');
  return visible.includes(secret.core);
}

const word = fc.stringMatching(/^[a-z][a-z0-9]{2,11}$/);
const octet = fc.integer({ min: 0, max: 255 });
const hex4 = fc.stringMatching(/^[0-9a-f]{1,4}$/);
const hexPair = fc.stringMatching(/^[0-9a-f]{2}$/);
const ipv4 = fc.tuple(octet, octet, octet, octet).map((o) => o.join('.'));
const BASE62 = [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'];
/** Uniform characters (no bias toward the first ones), as a secret generator makes them. */
const random = (length: number, alphabet = BASE62) => fc.array(fc.noBias(fc.constantFrom(...alphabet)), { minLength: length, maxLength: length }).map((c) => c.join(''));
const whole = (arbitrary: fc.Arbitrary<string>) => arbitrary.map((value): Secret => ({ value, core: value }));

export const SECRETS: Record<string, fc.Arbitrary<Secret>> = {
  ipv4: whole(ipv4),
  ipv6: whole(fc.array(hex4, { minLength: 8, maxLength: 8 }).map((g) => g.join(':'))),
  ipv6Compressed: whole(fc.tuple(hex4, hex4, hex4).map(([a, b, c]) => `${a}:${b}::${c}`)),
  ipv4Mapped: whole(ipv4.map((v4) => `::ffff:${v4}`)),
  nat64: whole(fc.tuple(hex4, hex4).map(([a, b]) => `64:ff9b::${a}:${b}`)),
  mac: whole(fc.tuple(fc.array(hexPair, { minLength: 6, maxLength: 6 }), fc.constantFrom(':', '-')).map(([g, sep]) => g.join(sep))),
  macCisco: whole(fc.array(fc.stringMatching(/^[0-9a-f]{4}$/), { minLength: 3, maxLength: 3 }).map((g) => g.join('.'))),
  macBare: whole(fc.array(hexPair, { minLength: 6, maxLength: 6 }).map((g) => g.join(''))),
  email: whole(fc.tuple(word, word, fc.constantFrom('com', 'org', 'io')).map(([u, d, tld]) => `${u}@${d}.${tld}`)),
  emailDotless: whole(fc.tuple(word, word).map(([u, d]) => `${u}@${d}`).filter((e) => /[a-z]/.test(e.split('@')[1]))),
  emailNonAscii: whole(fc.tuple(fc.stringMatching(/^[a-zäöüßéñçø]{2,10}$/), fc.stringMatching(/^[a-zäöüéñ]{2,10}$/)).map(([u, d]) => `${u}@${d}.de`).filter((e) => /[a-zäöüéñ]/.test(e.split('@')[1]))),
  uuid: whole(fc.uuid()),
  hexToken: whole(fc.stringMatching(/^[0-9a-f]{16,64}$/)),
  homePath: fc.tuple(fc.constantFrom('/home/', '/Users/'), word, word).map(([base, user, rest]) => ({ value: `${base}${user}/${rest}`, core: user, kept: `/${rest}` })),
  homeTilde: fc.tuple(word, word).map(([user, rest]) => ({ value: `~${user}/${rest}`, core: user, kept: `/${rest}` })),
  windowsPath: fc.tuple(word, word).map(([user, rest]) => ({ value: `C:\\Users\\${user}\\${rest}`, core: user, kept: `\\${rest}` })),
  urlWithCredentials: fc.tuple(word, word, word).map(([u, p, h]) => ({ value: `https://${u}:${p}@${h}.example/x`, core: `${u}:${p}` })),
  urlWithQuery: fc.tuple(word, word).map(([h, v]) => ({ value: `https://${h}.example/cb?token=${v}`, core: v })),
  githubToken: whole(fc.tuple(fc.constantFrom('ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_'), random(36)).map(([p, r]) => p + r)),
  githubPat: whole(random(82).map((r) => `github_pat_${r.slice(0, 22)}_${r.slice(22)}`)),
  gitlabToken: whole(random(20).map((r) => `glpat-${r}`)),
  awsKeyId: whole(fc.tuple(fc.constantFrom('AKIA', 'ASIA'), random(16, [...'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'])).map(([p, r]) => p + r)),
  jwt: whole(fc.tuple(random(20), random(30), random(43)).map(([h, p, s]) => `eyJ${h}.eyJ${p}.${s}`)),
  slackToken: whole(fc.tuple(fc.constantFrom('a', 'b', 'p', 'r', 's'), random(12, [...'0123456789']), random(24)).map(([k, n, r]) => `xox${k}-${n}-${r}`)),
  stripeKey: whole(fc.tuple(fc.constantFrom('sk_live_', 'rk_live_', 'sk_test_'), random(24)).map(([p, r]) => p + r)),
  keyValue: fc
    .tuple(fc.constantFrom('password', 'passwd', 'secret', 'token', 'api_key', 'DB_PASSWORD', 'aws_secret_access_key', '"password"'), fc.constantFrom('=', ': ', ':', ' = '), fc.stringMatching(/^[A-Za-z0-9!@#$%^*+/=._-]{6,24}$/), fc.boolean())
    .map(([key, sep, value, quoted]) => ({ value: `${key}${sep}${quoted ? `"${value}"` : value}`, core: value })),
  authorization: fc
    .tuple(fc.constantFrom('Authorization: Bearer ', 'Authorization: Basic ', 'authorization=', 'Bearer ', 'Basic '), random(8, [...'0123456789']), fc.stringMatching(/^[A-Za-z0-9._~+/-]{4,40}$/))
    .map(([head, digits, rest]) => ({ value: `${head}${digits}${rest}`, core: `${digits}${rest}` })),
  privateKey: fc.tuple(fc.constantFrom('', 'RSA ', 'EC ', 'OPENSSH ', 'ENCRYPTED '), fc.array(random(64), { minLength: 1, maxLength: 4 }), fc.boolean()).map(([kind, lines, complete]) => ({
    value: `-----BEGIN ${kind}PRIVATE KEY-----\n${lines.join('\n')}${complete ? `\n-----END ${kind}PRIVATE KEY-----` : ''}`,
    core: lines[0].slice(0, 16),
  })),
  randomSecret: whole(fc.integer({ min: 48, max: 64 }).chain((length) => random(length))),
};

const filler = fc.array(fc.constantFrom('failed', 'rrdengine.c', 'ECONNREFUSED', 'SSL_ERROR_SYSCALL', 'at', 'line', '42', 'src/daemon/main.c', '(', ')', ','), { maxLength: 6 }).map((w) => w.join(' '));
/** What may stand right before and right after a value in a message. */
const glueBefore = fc.constantFrom(' ', ': ', ' (', ' "', '=', ' [', '\n');
const glueAfter = fc.constantFrom(' ', '. ', ', ', ') ', '" ', '] ', '\n');

export interface ScrubProperty {
  name: string;
  property: fc.IRawProperty<unknown, false>;
}

/** Every property, for one run under a seed of the caller's choice. */
export function scrubProperties(): ScrubProperty[] {
  const generic = createScrubber([], []);
  const properties: ScrubProperty[] = Object.entries(SECRETS).map(([kind, secret]) => ({
    name: `no generated ${kind} survives scrubbing, wherever it stands in a message`,
    property: fc.property(filler, secret, filler, glueBefore, glueAfter, (before, generated, after, left, right) => {
      fc.pre(!before.includes(generated.core) && !after.includes(generated.core));
      return !leaks(generic(`${before}${left}${generated.value}${right}${after}`), generated);
    }),
  }));
  properties.push({
    name: "the machine's own host and user names never survive, in any case",
    property: fc.property(word, word, filler, (host, user, text) => {
      fc.pre(host !== user && !text.toLowerCase().includes(host) && !text.includes(user));
      const output = createScrubber([`${host}.corp.example`, host], [user])(`${text} ${host.toUpperCase()} ${user} ${host}.corp.example /home/x/${user}`);
      return !leaks(output.toLowerCase(), { value: '', core: host }) && !leaks(output, { value: '', core: user });
    }),
  });
  properties.push({
    name: 'a user name seen in a home path does not survive anywhere else in the text',
    property: fc.property(word, filler, (user, text) => {
      fc.pre(!text.includes(user));
      return !leaks(generic(`${text} /home/${user}/${user}: ${user} (42)`), { value: '', core: user });
    }),
  });
  properties.push({
    name: 'ordinary source paths and error texts pass unchanged',
    property: fc.property(filler, (text) => createScrubber(['myhost'], ['alice'])(text) === text),
  });
  return properties;
}

/** Runs per property in one run of the suite. */
export const NUM_RUNS = 300;
