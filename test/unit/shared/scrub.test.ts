import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { createScrubber, cut, MAX_SCRUBBED_LENGTH, MAX_TEXT_LENGTH, scrubSystemValue } from '../../../src/shared/scrub.ts';
import { NUM_RUNS, scrubProperties } from '../../support/scrub-properties.ts';

/** The scrubber on its own: every kind it removes, what it keeps, and what it costs. */

const scrub = createScrubber(['vm', 'vm.corp.example'], ['karolina']);

/** Each kind of personal or secret data, as it appears in real messages, and what is sent instead. */
const REMOVED: readonly [kind: string, input: string, expected: string][] = [
  ['IPv4', 'connect to 10.20.30.40 failed', 'connect to <ip> failed'],
  ['IPv4 ending a sentence', 'connect to 10.0.0.1.', 'connect to <ip>.'],
  ['IPv4 with a port', 'dial tcp 192.168.1.10:19999: refused', 'dial tcp <ip>:19999: refused'],
  ['IPv4 in a reverse zone', '4.3.2.1.in-addr.arpa', '<ip>.in-addr.arpa'],
  ['IPv6, eight groups', 'from 2001:0db8:85a3:0000:0000:8a2e:0370:7334 now', 'from <ip> now'],
  ['IPv6, compressed, bracketed with a port', 'GET [2001:db8::1]:443 and ::1', 'GET [<ip>]:443 and <ip>'],
  ['IPv6 with a zone', 'link fe80::1%eth0 down', 'link <ip> down'],
  ['IPv6 ending a clause', 'connect to fe80::1: refused', 'connect to <ip>: refused'],
  ['IPv4-mapped IPv6', 'peer ::ffff:192.168.1.1 reset', 'peer <ip> reset'],
  ['NAT64 IPv6', 'via 64:ff9b::c000:201.', 'via <ip>.'],
  ['e-mail', 'mail karl@example.com now', 'mail <email> now'],
  ['dotless e-mail', 'sent to user@localhost', 'sent to <email>'],
  ['non-ASCII e-mail', 'an jürgen@exämple.de.', 'an <email>.'],
  ['MAC with colons', 'hw 00:1a:2b:3c:4d:5e up', 'hw <mac> up'],
  ['MAC with dashes', 'hw 00-1A-2B-3C-4D-5E up', 'hw <mac> up'],
  ['Cisco MAC', 'hw 0011.2233.4455 up', 'hw <mac> up'],
  ['unseparated MAC', 'hw 001a2b3c4d5e up', 'hw <mac> up'],
  ['home path (the rest stays)', 'open /home/karl/.config/x', 'open <path>/.config/x'],
  ['macOS home path', 'open /Users/Karl/Library/x', 'open <path>/Library/x'],
  ['root home', 'cd /root/x and /root', 'cd <path>/x and <path>'],
  ['~user path', 'see ~karl/notes.txt', 'see <path>/notes.txt'],
  ['~/ path', 'see ~/notes.txt', 'see <path>/notes.txt'],
  ['Windows home path', 'C:\\Users\\karl\\AppData\\x', '<path>\\AppData\\x'],
  ['Windows home path with slashes', 'C:/Users/karl/AppData', '<path>/AppData'],
  ['old Windows home path', 'C:\\Documents and Settings\\karl\\x', '<path>\\x'],
  ['UNC path', 'open \\\\fileserver\\share\\x', 'open <path>\\x'],
  ['user name again later in a path', '/home/bapply/bapply', '<path>/<user>'],
  ['user name from a home path, elsewhere in the text', 'cd /home/bapply/src: bapply has no access', 'cd <path>/src: <user> has no access'],
  ['a two-letter host name standing as a word', 'on vm now', 'on <host> now'],
  ['the full host name', 'on vm.corp.example and VM.CORP.EXAMPLE', 'on <host> and <host>'],
  ['the user name in any case', 'as Karolina', 'as <user>'],
  ['UUID', 'id 123e4567-e89b-12d3-a456-426614174000', 'id <uuid>'],
  ['long hex', 'key 00112233445566778899aabbccddeeff', 'key <hex>'],
  ['GitHub personal token', 'ghp_0123456789abcdefghijABCDEFGHIJ012345', '<token>'],
  ['GitHub OAuth, user, server, refresh tokens', 'gho_abcdefghij0123456789ABCDEFGHIJ ghu_abcdefghij0123456789ABCDEFGHIJ ghs_abcdefghij0123456789ABCDEFGHIJ ghr_abcdefghij0123456789ABCDEFGHIJ', '<token> <token> <token> <token>'],
  ['GitHub fine-grained token', 'github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789', '<token>'],
  ['GitLab token', 'glpat-abcdefghij0123456789', '<token>'],
  ['AWS key ids', 'AKIAIOSFODNN7EXAMPLE and ASIAIOSFODNN7EXAMPLE', '<token> and <token>'],
  ['AWS secret key', 'aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'aws_secret_access_key=<secret>'],
  ['AWS secret key alone', 'secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY used', 'secret <secret> used'],
  ['JWT', 'jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig_nature-x', 'jwt <token>'],
  ['Slack tokens', 'xoxb-123456789012-abcdefghij xoxp-1-2-3-abcdefghij', '<token> <token>'],
  ['Stripe keys', 'sk_live_abcdefghij0123456789 rk_live_0123456789abcdef sk_test_abc123def456ghi', '<token> <token> <token>'],
  ['password=', 'login password=hunter2 failed', 'login password=<secret> failed'],
  ['passwd:', 'passwd: hunter2', 'passwd: <secret>'],
  ['secret=, token=, api_key=', 'secret=s3cr3t token=t0k api_key=k3y', 'secret=<secret> token=<secret> api_key=<secret>'],
  ['a key in JSON', '{"password":"two words","user":"x"}', '{"password":"<secret>","user":"x"}'],
  ['an option with a secret value', 'run --password hunter2 now', 'run --password <secret> now'],
  ['Authorization: Bearer', 'Authorization: Bearer abc.def.ghi', 'Authorization: Bearer <secret>'],
  ['Authorization: Basic', 'authorization: Basic dXNlcjpwYXNz', 'authorization: Basic <secret>'],
  ['Authorization in capitals', 'PROXY-AUTHORIZATION: NTLM TlRMTVNTUAAB', 'PROXY-AUTHORIZATION: NTLM <secret>'],
  ['a bare Bearer credential', 'sent Bearer 0a1b2c3d4e5f6a7b8c9d', 'sent Bearer <secret>'],
  ['PEM private key', 'key -----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY----- loaded', 'key <private-key> loaded'],
  ['PEM private key, cut', 'key -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA', 'key <private-key>'],
  ['URL with credentials', 'push https://user:pass@git.example/x.git.', 'push <url>.'],
  ['URL with a query', 'GET https://h.example/cb?code=abc then', 'GET <url> then'],
  ['URL in capitals', 'PUSH HTTPS://U:P@GIT.EXAMPLE/X', 'PUSH <url>'],
  ['URL with credentials after another URL', 'https://proxy.example/https://u:p@h/', '<url>'],
  ['long random secret', 'seed 9fQ2xL7vKp3ZmW8tRb4NcY6hJd1GsE5a used', 'seed <secret> used'],
  ['long random secret with one digit and long lower-case runs', 'iutfneRXhjinujGptxlzHNrYMGziEbasbgUwljmiiKFNkZA1', '<secret>'],
  ['escape sequences and controls', 'red \x1b[31mtext\x1b[0m \x1b]0;title\x07 bell\x07 nul\x00 c1\x9b2J bidi\u202etxt', 'red text  bell nul c1 biditxt'],
  ['line breaks', 'one\ntwo\r\nthree\tfour', 'one two  three four'],
];

/** Ordinary technical text: every line passes unchanged. */
const KEPT: readonly string[] = [
  'v1.2.3.4',
  '10.0.19045.2965',
  'libssl.so.3',
  'v2.0.0-rc.1',
  'src/db/engine.c:212',
  'ENOMEM',
  '-12',
  'exit status 3',
  'connection refused',
  '/usr/lib/x86_64-linux-gnu/libc.so.6',
  'rrdengine.c:412 ECONNREFUSED SSL_ERROR_SYSCALL src/daemon/main.c',
  'at 12:30:45.123',
  'HTTP 503',
  'version 1.2.3.4',
  'kernel 5.15.0.91',
  'libfoo-1.2.3.4 1.2.3.4-rc1 1.2.3.4+deb12 1.2.3.4~b1',
  'https://app.netdata.cloud/spaces',
  'std::map<int> Foo::~Foo() Vec::new',
  'typescript@5.9.3',
  'vmstat vm-2 vms',
  'getHTTPResponseCode2Handler AbstractSingletonProxyFactoryBean2 rrdeng_load_metric_next2',
  'x86_64-linux-gnu-gcc-12.2',
  'password_hint=blue tokens=5',
  'Basic authentication required',
  '/var/lib/root /srv/home',
  '22.04.3 LTS (Jammy Jellyfish)',
  'approx ~5 ms',
];

for (const [kind, input, expected] of REMOVED) {
  test(`removes: ${kind}`, () => assert.equal(scrub(input), expected));
}

test('ordinary technical text survives unchanged', () => {
  for (const text of KEPT) assert.equal(scrub(text), text);
});

test('a user name, and a placeholder that spells one, are not taken for each other', () => {
  const named = createScrubber(['host'], ['path', 'user']);
  assert.equal(named('/home/x/y path user host <ip> 10.0.0.1'), '<path>/y <user> <user> <host> <ip> <ip>');
});

test('a home directory shared by all is not taken for a user name', () => {
  assert.equal(scrub('C:\\Users\\Public\\x: public key'), '<path>\\x: public key');
});

test('a system value (os-release, product version) is scrubbed, stripped of controls and cut', () => {
  assert.equal(scrubSystemValue('Debian GNU/Linux 12 (bookworm)'), 'Debian GNU/Linux 12 (bookworm)');
  assert.equal(scrubSystemValue('22.04.3 LTS (Jammy Jellyfish)'), '22.04.3 LTS (Jammy Jellyfish)');
  assert.equal(scrubSystemValue('v2.0.0-rc.1'), 'v2.0.0-rc.1');
  assert.equal(scrubSystemValue('built by admin@corp.example in /home/karl/src on 10.1.2.3'), 'built by <email> in <path>/src on <ip>');
  assert.equal(scrubSystemValue('\x1b[2J\x1b]0;pwned\x07Ubuntu\n'), 'Ubuntu ');
  assert.equal(scrubSystemValue('x'.repeat(5000)).length, MAX_TEXT_LENGTH);
});

test('system values share one scrubber, and a name one of them shows is not looked for in the next', () => {
  assert.equal(scrubSystemValue('/home/karl/src by karl'), '<path>/src by <user>');
  assert.equal(scrubSystemValue('by karl'), 'by karl');
});

/** Inputs that made the old patterns rescan a run from every position. */
const HOSTILE: Record<string, (n: number) => string> = {
  'a://': (n) => 'a://'.repeat(n / 4),
  'a@': (n) => 'a@'.repeat(n / 2),
  '1.': (n) => '1.'.repeat(n / 2),
  'a:': (n) => 'a:'.repeat(n / 2),
  'a.': (n) => 'a.'.repeat(n / 2),
  '/home/x': (n) => '/home/x'.repeat(n / 7),
  'password=': (n) => 'password='.repeat(n / 9),
  'password="': (n) => 'password="'.repeat(n / 10),
  'eyJa.': (n) => 'eyJa.'.repeat(n / 5),
  '~a': (n) => '~a'.repeat(n / 2),
  '-----BEGIN PRIVATE KEY-----': (n) => '-----BEGIN PRIVATE KEY-----'.repeat(n / 27),
  'Authorization: ': (n) => 'Authorization: '.repeat(n / 15),
  'aB3': (n) => 'aB3'.repeat(n / 3),
  'hex': (n) => '0'.repeat(n - 1) + 'g',
  'name.': (n) => 'vm.'.repeat(n / 3),
  'Bearer a…': (n) => `Bearer ${'a'.repeat(n - 7)}`,
  'a@ then a.': (n) => `${'a'.repeat(n / 2)}@${'a.'.repeat(n / 4)}`,
  '\\\\a': (n) => '\\\\a'.repeat(n / 3),
  'C:/Users/': (n) => 'C:/Users/'.repeat(n / 9),
  '1:': (n) => '1:'.repeat(n / 2),
  '0a-': (n) => '0a-'.repeat(n / 3),
  'x="': (n) => 'x="'.repeat(n / 3),
  'a b': (n) => 'a b '.repeat(n / 4),
};

/** The fastest of several batches: the run least disturbed by whatever else the machine does. */
function fastest(text: string): number {
  let best = Infinity;
  for (let batch = 0; batch < 7; batch++) {
    const start = performance.now();
    for (let i = 0; i < 10; i++) scrub(text);
    best = Math.min(best, performance.now() - start);
  }
  return best;
}

test('scrubbing time grows linearly with the input: 8 times the text costs far less than 64 times the time', () => {
  const small = MAX_SCRUBBED_LENGTH / 8;
  const ratios: string[] = [];
  for (const [name, make] of Object.entries(HOSTILE)) {
    fastest(make(small)); // compiles the patterns for this shape before anything is measured
    const ratio = fastest(make(MAX_SCRUBBED_LENGTH)) / Math.max(fastest(make(small)), 0.05);
    ratios.push(`${name}: ${ratio.toFixed(1)}`);
    // Linear is 8; quadratic would be 64. The margin absorbs a busy machine, not a wrong order.
    assert.ok(ratio < 24, `"${name}" grew ${ratio.toFixed(1)} times for 8 times the input (${ratios.join(', ')})`);
  }
});

test('a value is read to MAX_SCRUBBED_LENGTH at most, ending between words, so no half of a secret is left', () => {
  const words = 'word '.repeat(MAX_SCRUBBED_LENGTH / 5 - 2);
  const straddling = `${words}10.20.30.40 ${'tail '.repeat(100_000)}`;
  assert.ok(straddling.indexOf('10.20.30.40') < MAX_SCRUBBED_LENGTH && straddling.indexOf('10.20.30.40') + 11 > MAX_SCRUBBED_LENGTH);
  const output = scrub(straddling);
  assert.equal(output, words.slice(0, -1), 'cut at the space before the address that crosses the limit');
  const unbroken = 'a://'.repeat(32_500);
  assert.equal(scrub(unbroken), unbroken.slice(0, MAX_SCRUBBED_LENGTH), 'no space to end at: cut at the limit');
  assert.equal(cut(scrub(unbroken)).length, MAX_TEXT_LENGTH);
});

for (const { name, property } of scrubProperties()) {
  test(`property: ${name}`, () => {
    fc.assert(property, { numRuns: NUM_RUNS });
  });
}
