/**
 * What the NATS sink and the NATS source share about connecting: the URL schemes, the client
 * options (reconnect for ever; TLS when asked for), and a plain reason for a refused TLS connection.
 */
import { ErrorCode, type ConnectionOptions } from 'nats'
import { readPem } from './pem.js'
import { isTlsServer } from './nats-servers.js'

export interface NatsClientSettings {
  servers: string[]
  name: string
  user?: string
  pass?: string
  token?: string
  /** PEM file paths (already resolved); rejectUnauthorized defaults to true. */
  tls?: { ca?: string, cert?: string, key?: string, rejectUnauthorized?: boolean }
}

/**
 * nats.js options for a client. `tls://` or any `tls:` file makes TLS required: nats.js then refuses
 * a server that does not offer it. (nats.js strips the scheme, so `tls://` alone would otherwise
 * connect in plain text to a server without TLS.)
 */
export function natsConnectionOptions (s: NatsClientSettings): ConnectionOptions {
  const options: ConnectionOptions = {
    servers: s.servers,
    name: s.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    pingInterval: 10_000
  }
  if (s.user !== undefined) { options.user = s.user; options.pass = s.pass }
  if (s.token !== undefined) options.token = s.token
  if (s.tls !== undefined || s.servers.some(isTlsServer)) {
    const tls: NonNullable<ConnectionOptions['tls']> & { rejectUnauthorized?: boolean } = {}
    const ca = readPem(s.tls?.ca, 'tls.ca')
    const cert = readPem(s.tls?.cert, 'tls.cert')
    const key = readPem(s.tls?.key, 'tls.key')
    if (ca !== undefined) tls.ca = ca
    if (cert !== undefined) tls.cert = cert
    if (key !== undefined) tls.key = key
    if (s.tls?.rejectUnauthorized === false) tls.rejectUnauthorized = false
    options.tls = tls
  }
  return options
}

/** A connection error in words a user can act on; nats.js says only "tls" when the server offers no TLS. */
export function describeNatsError (err: Error): string {
  if ((err as Error & { code?: string }).code === ErrorCode.ServerOptionNotAvailable && err.message === 'tls') {
    return 'the server does not offer TLS, which tls:// (or a tls: file) asks for'
  }
  return err.message
}
