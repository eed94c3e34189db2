/** Real nats-server and mosquitto processes on ephemeral loopback ports, stopped by PID at teardown. */
import { writeFileSync } from 'node:fs'
import { createServer, connect as tcpConnect } from 'node:net'
import { join } from 'node:path'
import { fixturePath } from './paths.js'
import { requireBinary, spawnTracked, type Spawned } from './process.js'
import { tempDir } from './signalbox.js'

/** A port that was free a moment ago (for servers that cannot pick their own, or must restart on the same one). */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

/** Resolves once something accepts TCP connections on the port. */
export async function waitForPort (port: number, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = tcpConnect(port, '127.0.0.1')
      socket.once('connect', () => { socket.destroy(); resolve(true) })
      socket.once('error', () => resolve(false))
    })
    if (open) return
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${ms} ms`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

/** A server process that can be killed and started again on the same port, keeping its data directory. */
export interface TestServer {
  port: number
  url: string
  /** SIGKILL: the server vanishes without a goodbye, as in a crash. */
  kill: () => Promise<void>
  /** A clean stop (SIGTERM unless the server says otherwise; Mosquitto saves its persistence file). */
  stop: () => Promise<void>
  start: () => Promise<void>
}

/** A server on `port` that `spawnServer` starts; `stopSignal` is its clean stop, `ready` resolves once it serves. */
export function restartable (port: number, url: string, spawnServer: () => Spawned, options: { stopSignal?: NodeJS.Signals, ready?: () => Promise<void> } = {}): TestServer {
  let current: Spawned | undefined
  const end = async (signal: NodeJS.Signals): Promise<void> => {
    const s = current
    current = undefined
    if (s === undefined || s.child.exitCode !== null || s.child.signalCode !== null) return
    s.child.kill(signal)
    await s.exited
  }
  return {
    port,
    url,
    kill: async () => await end('SIGKILL'),
    stop: async () => await end(options.stopSignal ?? 'SIGTERM'),
    start: async () => {
      if (current !== undefined) throw new Error('server already running')
      current = spawnServer()
      const s = current
      const exitedEarly = s.exited.then((code) => { throw new Error(`server exited (${String(code)}) before listening:\n${s.stderr()}`) })
      await Promise.race([(async () => { await waitForPort(port); await options.ready?.() })(), exitedEarly])
      exitedEarly.catch(() => {})
    }
  }
}

/** The test certificates in fixtures/tls (see its README). */
export const TLS_FILES = {
  ca: fixturePath('tls', 'ca.pem'),
  serverCert: fixturePath('tls', 'server.pem'),
  serverKey: fixturePath('tls', 'server.key'),
  clientCert: fixturePath('tls', 'client.pem'),
  clientKey: fixturePath('tls', 'client.key')
}

/** nats-server with JetStream (file store in a temporary directory, so streams survive a restart); with `tls`, TLS only. */
export async function startNatsServer (options: { tls?: boolean } = {}): Promise<TestServer> {
  requireBinary('nats-server', 'apt-get install -y nats-server')
  const port = await freePort()
  const store = tempDir()
  const tls = options.tls === true ? ['--tls', '--tlscert', TLS_FILES.serverCert, '--tlskey', TLS_FILES.serverKey] : []
  const server = restartable(port, `${options.tls === true ? 'tls' : 'nats'}://127.0.0.1:${port}`, () =>
    spawnTracked('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', store, ...tls]))
  await server.start()
  return server
}

/**
 * mosquitto on loopback, anonymous, with persistence so queued QoS 1 messages survive a clean
 * restart; with `mutualTls`, a TLS listener that requires a client certificate from the test CA.
 */
export async function startMosquitto (options: { mutualTls?: boolean, extraConfig?: string[] } = {}): Promise<TestServer> {
  requireBinary('mosquitto', 'apt-get install -y mosquitto')
  const port = await freePort()
  const dir = tempDir()
  const config = join(dir, 'mosquitto.conf')
  writeFileSync(config, [
    `listener ${port} 127.0.0.1`,
    ...(options.mutualTls === true
      ? [`cafile ${TLS_FILES.ca}`, `certfile ${TLS_FILES.serverCert}`, `keyfile ${TLS_FILES.serverKey}`, 'require_certificate true']
      : []),
    'allow_anonymous true',
    'persistence true',
    `persistence_location ${dir}/`,
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    ...(options.extraConfig ?? []),
    // Running as root in CI: keep the user, so the temporary directory stays writable.
    ...(process.getuid?.() === 0 ? ['user root'] : [])
  ].join('\n') + '\n')
  const server = restartable(port, `${options.mutualTls === true ? 'mqtts' : 'mqtt'}://127.0.0.1:${port}`, () => spawnTracked('mosquitto', ['-c', config]))
  await server.start()
  return server
}
