/**
 * A throw-away PKI for tests that need TLS or mutual TLS (RFC 8705), made with the `openssl` CLI at
 * test start: a CA, a server certificate it signs (serverAuth, loopback SANs), a client certificate
 * it signs (clientAuth, for `tls_client_auth`) and a self-signed client certificate (for
 * `self_signed_tls_client_auth`). EC P-256 keys throughout: fast to make, accepted by Node's tls.
 * Nothing touches the network; the temporary directory is removed before this returns.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestPki {
  /** PEM of the test CA, which signed serverCert and clientCert. */
  caCert: string;
  serverCert: string;
  serverKey: string;
  /** CA-signed, clientAuth EKU, subject O=fapi-bff tests, CN=fapi-bff-client. */
  clientCert: string;
  clientKey: string;
  /** Self-signed, clientAuth EKU, subject CN=fapi-bff-self-signed-client. */
  selfSignedClientCert: string;
  selfSignedClientKey: string;
  /** DER of clientCert (SHA-256 of it is the `x5t#S256` of a token bound to clientCert). */
  clientCertDer: Buffer;
  /** Base64 (not base64url) DER of selfSignedClientCert, for `jwks.keys[].x5c`. */
  x5cClient: string;
  /** clientCert's subject as an RFC 4514 string, as `openssl -nameopt RFC2253` prints it. */
  clientSubjectDn: string;
  /** Idempotent; the files are already gone, kept so callers need not know. */
  cleanup(): void;
}

export interface PkiOptions {
  /** Server certificate SANs: IP literals become `IP:`, names `DNS:`. Default ['127.0.0.1', 'localhost']. */
  serverHosts?: string[];
}

const OPENSSL_TIMEOUT_MS = 15_000;
const VALIDITY_DAYS = '2';
const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

function isIpLiteral(host: string): boolean {
  return /^\d{1,3}(?:\.\d{1,3}){3}$/.test(host) || host.includes(':');
}

function sanFor(hosts: readonly string[]): string {
  return hosts
    .map((h) => h.replace(/^\[|\]$/g, ''))
    .map((h) => (isIpLiteral(h) ? `IP:${h}` : `DNS:${h}`))
    .join(',');
}

export async function makePki(opts: PkiOptions = {}): Promise<TestPki> {
  const serverHosts = opts.serverHosts ?? ['127.0.0.1', 'localhost'];
  if (serverHosts.length === 0) throw new Error('makePki: serverHosts must not be empty');
  const dir = mkdtempSync(join(tmpdir(), 'fapi-bff-pki-'));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  const file = (name: string) => join(dir, name);
  const openssl = (args: string[]): string =>
    execFileSync('openssl', args, {
      cwd: dir,
      timeout: OPENSSL_TIMEOUT_MS,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      // A stray OPENSSL_CONF must not change what we make; the defaults are enough.
      env: { ...process.env, OPENSSL_CONF: '/dev/null' },
    });
  // RFC 5280 §4.1.2.2: positive, at most 20 octets; random so two runs never share one.
  const serial = () => `0x${randomBytes(16).toString('hex')}`;

  try {
    // The CA.
    // prettier-ignore
    openssl([
      'req', '-x509', ...EC_KEY, '-keyout', file('ca.key'), '-out', file('ca.crt'),
      '-days', VALIDITY_DAYS, '-subj', '/O=fapi-bff tests/CN=fapi-bff test CA',
      '-addext', 'basicConstraints=critical,CA:TRUE',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ]);

    // A CA-signed leaf: a key + CSR, then signed with an extension file.
    const leaf = (name: string, subject: string, extensions: string[]) => {
      openssl([
        'req',
        '-new',
        ...EC_KEY,
        '-keyout',
        file(`${name}.key`),
        '-out',
        file(`${name}.csr`),
        '-subj',
        subject,
      ]);
      writeFileSync(file(`${name}.ext`), `${extensions.join('\n')}\n`);
      // prettier-ignore
      openssl([
        'x509', '-req', '-in', file(`${name}.csr`), '-CA', file('ca.crt'), '-CAkey', file('ca.key'),
        '-set_serial', serial(), '-days', VALIDITY_DAYS, '-sha256', '-extfile', file(`${name}.ext`),
        '-out', file(`${name}.crt`),
      ]);
    };
    const leafCommon = [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'subjectKeyIdentifier=hash',
      'authorityKeyIdentifier=keyid',
    ];
    leaf('server', `/CN=${serverHosts[0]}`, [
      ...leafCommon,
      'extendedKeyUsage=serverAuth',
      `subjectAltName=${sanFor(serverHosts)}`,
    ]);
    leaf('client', '/O=fapi-bff tests/CN=fapi-bff-client', [...leafCommon, 'extendedKeyUsage=clientAuth']);

    // The self-signed client certificate (RFC 8705 §2.2): trusted only through the client's jwks.
    // prettier-ignore
    openssl([
      'req', '-x509', ...EC_KEY, '-keyout', file('self.key'), '-out', file('self.crt'),
      '-days', VALIDITY_DAYS, '-subj', '/CN=fapi-bff-self-signed-client',
      '-addext', 'basicConstraints=critical,CA:FALSE',
      '-addext', 'keyUsage=critical,digitalSignature',
      '-addext', 'extendedKeyUsage=clientAuth',
    ]);

    const subjectLine = openssl([
      'x509',
      '-in',
      file('client.crt'),
      '-noout',
      '-subject',
      '-nameopt',
      'RFC2253',
    ]);
    const clientSubjectDn = subjectLine.trim().replace(/^subject=\s*/, '');

    const read = (name: string) => readFileSync(file(name), 'utf8');
    const pki = {
      caCert: read('ca.crt'),
      serverCert: read('server.crt'),
      serverKey: read('server.key'),
      clientCert: read('client.crt'),
      clientKey: read('client.key'),
      selfSignedClientCert: read('self.crt'),
      selfSignedClientKey: read('self.key'),
    };
    // Parse everything once here, so a broken certificate fails at setup rather than mid-handshake.
    const ca = new X509Certificate(pki.caCert);
    const server = new X509Certificate(pki.serverCert);
    const clientCert = new X509Certificate(pki.clientCert);
    const selfSigned = new X509Certificate(pki.selfSignedClientCert);
    // Signature checks only: X509Certificate#checkIssued also wants keyCertSign on the issuer, which
    // a self-signed leaf (CA:FALSE, digitalSignature only) rightly lacks.
    const signedBy = (cert: X509Certificate, issuer: X509Certificate) =>
      cert.issuer === issuer.subject && cert.verify(issuer.publicKey);
    if (!signedBy(server, ca) || !signedBy(clientCert, ca) || !signedBy(selfSigned, selfSigned)) {
      throw new Error('the certificates were not issued as expected');
    }
    return {
      ...pki,
      clientCertDer: clientCert.raw,
      x5cClient: selfSigned.raw.toString('base64'),
      clientSubjectDn,
      cleanup,
    };
  } catch (err) {
    const stderr = (err as { stderr?: unknown }).stderr;
    // execFileSync's errors carry openssl's stderr.
    throw new Error(`makePki: ${(err as Error).message}${typeof stderr === 'string' ? `\n${stderr}` : ''}`, {
      cause: err,
    });
  } finally {
    cleanup();
  }
}
