/**
 * The embedded broker's listeners: plain TCP, TLS (optionally mutual), and MQTT over WebSocket
 * (ws, or wss with TLS). Several at once; each hands its connections to aedes. A bad key or
 * certificate path, or a certificate that does not match its key, stops the start with a message
 * naming the listener and the file.
 */
import { readFileSync } from 'node:fs'
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { createServer as createTcpServer, type Server } from 'node:net'
import { createServer as createTlsServer, type SecureContextOptions } from 'node:tls'
import { createWebSocketStream, WebSocketServer } from 'ws'
import { BrokerStartError } from '../runtime/errors.js'

export type ListenerType = 'tcp' | 'tls' | 'ws' | 'wss'

export interface ListenerSettings {
  type: ListenerType
  host: string
  /** 0 picks a free port. */
  port: number
  /** tls and wss: PEM files (absolute paths). */
  key?: string
  cert?: string
  /** CA to verify client certificates with. */
  ca?: string
  /** Mutual TLS: refuse clients without a certificate the CA signed. */
  requireClientCert?: boolean
  /** ws and wss: the HTTP path (default: any). */
  path?: string
}

export interface BoundListener {
  type: ListenerType
  host: string
  port: number
}

export const listenerSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['type', 'port'],
  description: 'A listener of the embedded broker.',
  properties: {
    type: { enum: ['tcp', 'tls', 'ws', 'wss'], description: '`tcp`, `tls`, `ws` (MQTT over WebSocket) or `wss` (over TLS).' },
    host: { type: 'string', minLength: 1, default: '127.0.0.1', description: 'Address to bind.' },
    port: { type: 'integer', minimum: 0, maximum: 65535, description: 'Port; 0 picks a free one.' },
    key: { type: 'string', minLength: 1, description: 'tls/wss: private key (PEM), relative to the config file.' },
    cert: { type: 'string', minLength: 1, description: 'tls/wss: certificate chain (PEM).' },
    ca: { type: 'string', minLength: 1, description: 'tls/wss: CA certificate(s) to verify client certificates.' },
    require_client_cert: { type: 'boolean', default: false, description: 'tls/wss: mutual TLS; clients must present a certificate signed by `ca`.' },
    path: { type: 'string', pattern: '^/', patternMessage: "must start with '/'", description: 'ws/wss: the HTTP path to accept (default: any).' }
  }
}

type Handler = (stream: import('node:stream').Duplex) => void

interface Running {
  bound: BoundListener
  close: () => Promise<void>
}

/** Starts every listener; if one fails, the ones started are closed and a BrokerStartError names it. */
export async function startListeners (listeners: ListenerSettings[], handle: Handler): Promise<{ bound: BoundListener[], close: () => Promise<void> }> {
  const running: Running[] = []
  const closeAll = async (): Promise<void> => { await Promise.all(running.map(async (r) => await r.close())) }
  for (const settings of listeners) {
    try {
      running.push(await startListener(settings, handle))
    } catch (err) {
      await closeAll()
      throw err
    }
  }
  return { bound: running.map((r) => r.bound), close: closeAll }
}

async function startListener (s: ListenerSettings, handle: Handler): Promise<Running> {
  const name = `${s.type} listener on ${s.host}:${s.port}`
  const secure = s.type === 'tls' || s.type === 'wss' ? tlsOptions(s, name) : undefined
  let server: Server | HttpServer
  let wss: WebSocketServer | undefined
  try {
    // TCP_NODELAY: an MQTT packet is small and wanted now; Nagle's algorithm would hold it back
    // behind an unacknowledged one, adding up to a delayed-ACK timeout (40 ms on Linux) to latency.
    if (s.type === 'tcp') {
      server = createTcpServer({ noDelay: true }, handle)
    } else if (s.type === 'tls') {
      server = createTlsServer({ ...secure!, noDelay: true }, handle)
    } else {
      const http = s.type === 'wss' ? createHttpsServer({ ...secure!, noDelay: true }) : createHttpServer({ noDelay: true })
      server = http
      // MQTT over WebSocket negotiates the 'mqtt' subprotocol (MQTT 3.1.1 section 6).
      wss = new WebSocketServer({ server: http, path: s.path, handleProtocols: (protocols) => protocols.has('mqtt') ? 'mqtt' : protocols.has('mqttv3.1') ? 'mqttv3.1' : false })
      wss.on('connection', (socket) => {
        const stream = createWebSocketStream(socket)
        stream.on('error', () => socket.terminate())
        handle(stream)
      })
    }
  } catch (err) {
    throw new BrokerStartError(`${name}: ${describeTlsError(err as Error, s)}`, { cause: err, code: 'LISTENER_TLS' })
  }
  await listen(server, s)
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : s.port
  return {
    bound: { type: s.type, host: s.host, port },
    close: async () => {
      wss?.clients.forEach((c) => c.terminate())
      wss?.close()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

function tlsOptions (s: ListenerSettings, name: string): SecureContextOptions & { requestCert: boolean, rejectUnauthorized: boolean } {
  if (s.key === undefined || s.cert === undefined) throw new BrokerStartError(`${name}: a ${s.type} listener needs 'key' and 'cert'`, { code: 'LISTENER_TLS' })
  if (s.requireClientCert === true && s.ca === undefined) throw new BrokerStartError(`${name}: require_client_cert needs 'ca', the CA that signs client certificates`, { code: 'LISTENER_TLS' })
  const read = (what: string, path: string): Buffer => {
    try {
      return readFileSync(path)
    } catch (err) {
      throw new BrokerStartError(`${name}: cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`, { cause: err, code: 'LISTENER_TLS' })
    }
  }
  return {
    key: read('key', s.key),
    cert: read('cert', s.cert),
    ca: s.ca === undefined ? undefined : read('ca', s.ca),
    requestCert: s.requireClientCert === true,
    rejectUnauthorized: s.requireClientCert === true
  }
}

function describeTlsError (err: Error, s: ListenerSettings): string {
  if (/key values mismatch/.test(err.message)) return `the certificate ${s.cert ?? ''} does not match the key ${s.key ?? ''}`
  if (/PEM|no start line|bad base64|asn1/i.test(err.message)) return `cannot use the key or certificate (${s.key ?? ''}, ${s.cert ?? ''}): not valid PEM (${err.message})`
  return err.message
}

function listen (server: Server | HttpServer, s: ListenerSettings): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => { server.off('listening', onListening); reject(startError(err, s)) }
    const onListening = (): void => { server.off('error', onError); resolve() }
    server.once('error', onError)
    server.once('listening', onListening)
    server.listen(s.port, s.host)
  })
}

/** MQTT's registered ports: taken there, the likely holder is a Mosquitto service. */
const MQTT_PORTS = new Set([1883, 8883])

/** Why a listener could not start, in words that say what to do. */
export function startError (err: NodeJS.ErrnoException, s: ListenerSettings): BrokerStartError {
  const where = `cannot listen on ${s.host}:${s.port}${s.type === 'tcp' ? '' : ` (${s.type})`}`
  switch (err.code) {
    case 'EADDRINUSE':
      // Installing Debian's mosquitto package (as the tests need) also starts it as a service on 1883.
      if (MQTT_PORTS.has(s.port)) return new BrokerStartError(`${where}: the port is already in use, likely by a Mosquitto service (Debian starts one when the package is installed: \`sudo systemctl stop mosquitto\`), or pick another port with --port`, { cause: err, code: 'PORT_IN_USE' })
      return new BrokerStartError(`${where}: the port is already in use (another broker running? pick another with --port)`, { cause: err, code: 'PORT_IN_USE' })
    case 'EADDRNOTAVAIL':
      return new BrokerStartError(`${where}: that address is not on this machine`, { cause: err, code: 'ADDRESS_NOT_LOCAL' })
    case 'EACCES':
      return new BrokerStartError(`${where}: permission denied (ports below 1024 need privileges)`, { cause: err, code: 'PORT_PRIVILEGED' })
    case 'ENOTFOUND':
      return new BrokerStartError(`${where}: unknown host '${s.host}'`, { cause: err, code: 'UNKNOWN_HOST' })
    default:
      return new BrokerStartError(`${where}: ${err.message}`, { cause: err })
  }
}

/** Whether a host name or address is loopback only. */
export function isLoopback (host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host)
}
