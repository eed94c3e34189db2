/** The embedded MQTT broker: aedes behind a TCP listener, with every published message handed to the engine in-process. */
import { createServer, type Server } from 'node:net'
import { Aedes, type AedesPublishPacket, type Client, type PublishPacket } from 'aedes'
import type { OutMessage } from '../adapters/sink.js'
import { BrokerStartError } from './errors.js'
import type { InboundMessage } from './message.js'

/** Hop count of a message the engine published, carried on the packet object aedes hands back to `published`. */
const HOPS = Symbol('signalbox.hops')

export interface BrokerOptions {
  host: string
  /** 0 picks a free port. */
  port: number
  /** Called for every message published on the broker, by clients and by the engine itself. */
  onMessage: (msg: InboundMessage) => void
}

export interface EmbeddedBroker {
  host: string
  port: number
  aedes: Aedes
  /** Publishes a derived message on the broker; it is routed again with its hop count. */
  publish: (out: OutMessage, done: (error?: Error) => void) => void
  close: () => Promise<void>
}

/** Marks a client's publish between its authorisation (before aedes acks a QoS 1 publish) and the engine. */
const IN_FLIGHT = Symbol('signalbox.inFlight')

type HopPacket = AedesPublishPacket & { [HOPS]?: number, [IN_FLIGHT]?: boolean }

/** How long a close waits for acknowledged publishes to reach the engine. */
const CLOSE_SETTLE_MS = 2000

/** Starts aedes and its TCP listener; a taken port or bad address is a BrokerStartError with a plain message. */
export async function startBroker (options: BrokerOptions): Promise<EmbeddedBroker> {
  // aedes acks a QoS 1 publish before it runs the publish pipeline, so a close must wait for the
  // publishes it has let in: the client was told they were received.
  let closing = false
  let inFlight = 0
  let settled: (() => void) | undefined
  const aedes = await Aedes.createBroker({
    authorizePublish (_client, packet, callback) {
      if (closing) { callback(new Error('the broker is shutting down')); return }
      const marked = packet as PublishPacket & { [IN_FLIGHT]?: boolean }
      if (marked[IN_FLIGHT] !== true) { marked[IN_FLIGHT] = true; inFlight++ }
      callback(null)
    },
    published (packet: HopPacket, client: Client | null, done: (error?: Error | null) => void) {
      try {
        options.onMessage({
          topic: packet.topic,
          payload: typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload,
          qos: packet.qos,
          retain: packet.retain,
          clientId: client?.id ?? null,
          hops: packet[HOPS] ?? 0
        })
      } finally {
        if (packet[IN_FLIGHT] === true) {
          packet[IN_FLIGHT] = false
          if (--inFlight === 0) settled?.()
        }
      }
      done(null)
    }
  })
  const server = createServer(aedes.handle)
  try {
    await listen(server, options.host, options.port)
  } catch (err) {
    await new Promise<void>((resolve) => aedes.close(() => resolve()))
    throw startError(err as NodeJS.ErrnoException, options.host, options.port)
  }
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : options.port

  let stopped: Promise<void> | undefined
  return {
    host: options.host,
    port,
    aedes,
    publish (out, done) {
      const packet = { cmd: 'publish', topic: out.topic, payload: out.payload, qos: out.qos, retain: out.retain, dup: false, [HOPS]: out.hops }
      aedes.publish(packet as unknown as AedesPublishPacket, (error?: Error) => done(error ?? undefined))
    },
    close () {
      stopped ??= (async () => {
        // No new connections and no new publishes; then let the ones already let in reach the engine.
        closing = true
        const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()))
        if (inFlight > 0) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, CLOSE_SETTLE_MS)
            settled = () => { clearTimeout(timer); resolve() }
          })
        }
        await new Promise<void>((resolve) => aedes.close(() => resolve()))
        await serverClosed
      })()
      return stopped
    }
  }
}

function listen (server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => { server.off('listening', onListening); reject(err) }
    const onListening = (): void => { server.off('error', onError); resolve() }
    server.once('error', onError)
    server.once('listening', onListening)
    server.listen(port, host)
  })
}

function startError (err: NodeJS.ErrnoException, host: string, port: number): BrokerStartError {
  const where = `${host}:${port}`
  switch (err.code) {
    case 'EADDRINUSE':
      return new BrokerStartError(`cannot listen on ${where}: the port is already in use (another broker running? pick another with --port)`, { cause: err })
    case 'EADDRNOTAVAIL':
      return new BrokerStartError(`cannot listen on ${where}: that address is not on this machine`, { cause: err })
    case 'EACCES':
      return new BrokerStartError(`cannot listen on ${where}: permission denied (ports below 1024 need privileges)`, { cause: err })
    case 'ENOTFOUND':
      return new BrokerStartError(`cannot listen on ${where}: unknown host '${host}'`, { cause: err })
    default:
      return new BrokerStartError(`cannot listen on ${where}: ${err.message}`, { cause: err })
  }
}
