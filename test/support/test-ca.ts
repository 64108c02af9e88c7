import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** A throw-away CA and a server certificate it signed, made with openssl in `dir`. */
export interface TestCertificates {
  /** The CA certificate alone: what NODE_EXTRA_CA_CERTS is given. */
  caFile: string;
  keyFile: string;
  certFile: string;
  key: string;
  cert: string;
}

/** A server certificate for `name` (a DNS name: the one the client must check it against). */
export function issueCertificates(dir: string, name: string): TestCertificates {
  const file = (base: string) => path.join(dir, base);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...newKey, '-keyout', file('ca.key'), '-out', file('ca.crt'), '-days', '2', '-subj', '/CN=anonymous-statistics test CA');
  openssl('req', ...newKey, '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', `/CN=${name}`);
  writeFileSync(file('server.ext'), `subjectAltName=DNS:${name}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
  openssl('x509', '-req', '-in', file('server.csr'), '-CA', file('ca.crt'), '-CAkey', file('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', file('server.ext'), '-out', file('server.crt'));
  return {
    caFile: file('ca.crt'),
    keyFile: file('server.key'),
    certFile: file('server.crt'),
    key: readFileSync(file('server.key'), 'utf8'),
    cert: readFileSync(file('server.crt'), 'utf8'),
  };
}
