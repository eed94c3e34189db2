/** Certificates made in the test with openssl: a CA, a server certificate for 127.0.0.1, a client certificate, and a stray key. */
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { requireBinary } from './process.js'
import { tempDir } from './signalbox.js'

export interface Certificates {
  dir: string
  ca: string
  serverKey: string
  serverCert: string
  clientKey: string
  clientCert: string
  /** A key that matches no certificate here. */
  strayKey: string
}

/** Makes them in `dir`, or in a temporary directory removed after the current test. */
export function makeCertificates (dir: string = tempDir()): Certificates {
  requireBinary('openssl', 'apt-get install -y openssl')
  const at = (name: string): string => join(dir, name)
  const run = (...args: string[]): void => { execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' }) }
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Signalbox test CA')
  writeFileSync(at('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n')
  run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1')
  run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'server.ext')
  writeFileSync(at('client.ext'), 'extendedKeyUsage=clientAuth\n')
  run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/CN=device-1')
  run('x509', '-req', '-in', 'client.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'client.pem', '-days', '2', '-extfile', 'client.ext')
  run('genrsa', '-out', 'stray.key', '2048')
  return { dir, ca: at('ca.pem'), serverKey: at('server.key'), serverCert: at('server.pem'), clientKey: at('client.key'), clientCert: at('client.pem'), strayKey: at('stray.key') }
}
