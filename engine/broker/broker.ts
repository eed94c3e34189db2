/**
 * The embedded MQTT broker: aedes behind its listeners (TCP, TLS, WebSocket), with access control
 * and limits, and every published message handed to the engine in-process.
 */
import { Aedes, type AedesPublishPacket, type Client, type PublishPacket } from 'aedes'
import type { OutMessage } from '../../rules/model/message.js'
import { AccessControl, remoteOf, type AccessPolicy } from './access.js'
import { BROKER_MAX_TOPIC_LEVELS, DEFAULT_LIMITS } from './limits.js'
import { startListeners, type BoundListener, type ListenerSettings } from './listeners.js'
import { unpatchedDependencies } from './patches.js'
import { BrokerStartError } from '../runtime/errors.js'
import type { Logger } from '../observe/logger.js'
import type { InboundMessage, Settlement } from '../../rules/model/message.js'

/** Hop count of a message the engine published, carried on the packet object aedes hands back to `published`. */
const HOPS = Symbol('signalbox.hops')
/** Marks a client's publish between its authorisation (before aedes acks a QoS 1 publish) and the engine. */
const IN_FLIGHT = Symbol('signalbox.inFlight')
/**
 * A refused publish is acked but re-addressed here, emptied, and never delivered or handed to the
 * engine: aedes would otherwise disconnect the client, and MQTT 3.1.1 has no negative PUBACK.
 */
const DROPPED_TOPIC = '$signalbox/internal/dropped'

/** Marks signalbox's own $SYS/signalbox reports: delivered to subscribers, not handed to the engine. */
const INTERNAL = Symbol('signalbox.internal')
/** A journaled publish's settlement and arrival time, or the settlement a derived message carries. */
const SETTLEMENT = Symbol('signalbox.settlement')
const RECEIVED_AT = Symbol('signalbox.receivedAt')

type HopPacket = AedesPublishPacket & { [HOPS]?: number, [IN_FLIGHT]?: boolean, [INTERNAL]?: boolean, [SETTLEMENT]?: Settlement, [RECEIVED_AT]?: number }

/** A client's QoS ≥ 1 publish, as the journal is asked to keep it before the ack. */
export interface JournaledPublish {
  topic: string
  payload: Buffer
  qos: 1 | 2
  retain: boolean
  clientId: string
  receivedAt: number
}

/**
 * Keeps a publish before it is acknowledged (the write-ahead log): returns false for a publish it
 * does not keep; otherwise calls `done` once it is kept, with what the message holds until its
 * outputs are settled (or with the error that kept it from being kept).
 */
export type Journal = (publish: JournaledPublish, done: (err: Error | undefined, settlement: Settlement | undefined) => void) => boolean

/** Message counts of the broker itself. */
export interface BrokerStats {
  /** Publishes from clients that were let in (refused ones are counted by access control). */
  messagesIn: number
  /** Copies delivered to subscribers (written to their connections). */
  messagesOut: number
  /** Copies not delivered because the subscriber's unread backlog was full (max_queued_messages, max_queued_bytes). */
  deliveriesDropped: number
}

/** Per-client drop counts kept for this many client ids; the rest are summed under OTHER_CLIENTS. */
const MAX_COUNTED_CLIENTS = 1000
const OTHER_CLIENTS = '(other)'

/** aedes' CONNACK code for a protocol version it does not speak (MQTT 5 among them). */
const UNACCEPTABLE_PROTOCOL_VERSION = 1
const PROTOCOL_HINT = 'connection refused: the embedded broker speaks MQTT 3.1.1 and 3.1, not MQTT 5; connect with MQTT 3.1.1, or run signalbox on an MQTT 5 broker with --source'

/** How long a close waits for acknowledged publishes to reach the engine. */
const CLOSE_SETTLE_MS = 2000

export interface BrokerOptions {
  listeners: ListenerSettings[]
  /** Called for every message published on the broker, by clients and by the engine itself. */
  onMessage: (msg: InboundMessage) => void
  /** Default: anyone may connect, publish and subscribe, within the default limits. */
  access?: AccessPolicy
  /** Where a client's QoS ≥ 1 publishes are kept before their PUBACK (PUBREC); none: acked at once. */
  journal?: Journal
  /** aedes' persistence (retained messages, sessions, QoS 2 state); default: aedes' in-memory one. */
  persistence?: object
  logger: Logger
}

export interface EmbeddedBroker {
  /** The first listener's address (the TCP one, by default). */
  host: string
  port: number
  listeners: BoundListener[]
  aedes: Aedes
  access: AccessControl
  stats: BrokerStats
  /** Publishes a derived message on the broker; it is routed again with its hop count. */
  publish: (out: OutMessage, done: (error?: Error) => void) => void
  /** Deliveries dropped per subscriber's client id (slow consumers), for /metrics. */
  droppedByClient: ReadonlyMap<string, number>
  /** The clients connected now (aedes keeps them by client id). */
  clients: () => Client[]
  /** Publishes a report of signalbox's own (under $SYS/signalbox/) to subscribers, past the engine. */
  publishReport: (topic: string, payload: Buffer) => void
  close: () => Promise<void>
}

/** Starts aedes and its listeners; a taken port, a bad address or a bad certificate is a BrokerStartError with a plain message. */
export async function startBroker (options: BrokerOptions): Promise<EmbeddedBroker> {
  const unpatched = unpatchedDependencies()
  if (unpatched.length > 0) {
    throw new BrokerStartError(`the embedded broker's dependencies are not patched (${unpatched.join(', ')}): without the patches it can lose messages silently. The patches are applied by the package's postinstall script; reinstall with scripts allowed (npm install --allow-scripts=signalbox, no --ignore-scripts), or run \`npx patch-package\` in the package's directory`, { code: 'NOT_PATCHED' })
  }
  const policy: AccessPolicy = options.access ?? { users: undefined, allowAnonymous: true, acl: undefined, limits: DEFAULT_LIMITS }
  const access = new AccessControl(policy, options.logger)
  // A close must wait for the publishes it has let in: once past authorizePublish they are on their
  // way to the engine. (With a durable persistence, patches/aedes sends a QoS 1 PUBACK after the
  // publish pipeline, so a retained message or a copy queued for an offline session is stored first.)
  let closing = false
  let inFlight = 0
  let settled: (() => void) | undefined
  const stats: BrokerStats = { messagesIn: 0, messagesOut: 0, deliveriesDropped: 0 }
  const droppedByClient = new Map<string, number>()
  const aedes = await Aedes.createBroker({
    // A durable persistence: a QoS 1 PUBACK follows the publish pipeline (patches/aedes), so what it stores is on disk first.
    ...(options.persistence === undefined ? {} : { persistence: options.persistence as never, ackAfterPublish: true }),
    maxTopicLevels: BROKER_MAX_TOPIC_LEVELS,
    drainTimeout: policy.limits.clientDrainTimeoutMs,
    connectTimeout: policy.limits.connectTimeoutMs,
    // Both read by the parser (patches/: mqtt-packet and aedes): the fixed header's length is checked
    // before the packet is buffered, and every string must be UTF-8 [MQTT-1.5.3-1].
    maxPacketSize: policy.limits.maxPacketBytes,
    validateUtf8: true,
    // Deliveries never wait for a subscriber's socket (patches/aedes): its backlog is bounded instead.
    outgoingLimit: { messages: policy.limits.maxQueuedMessages, bytes: policy.limits.maxQueuedBytes },
    authenticate: (client, username, password, done) => access.authenticate(client, username, password, done as never),
    authorizePublish (client, packet, callback) {
      if (closing) { callback(new Error('the broker is shutting down')); return }
      if (client === null) { callback(null); return }
      const marked = packet as PublishPacket & { [IN_FLIGHT]?: boolean }
      if (marked[IN_FLIGHT] !== true) { marked[IN_FLIGHT] = true; inFlight++ }
      const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload
      const verdict = access.checkPublish(client, packet.topic, payload)
      if (verdict !== undefined) {
        access.refused(client, verdict, packet.topic)
        packet.topic = DROPPED_TOPIC
        packet.payload = Buffer.alloc(0)
        packet.retain = false
        callback(null)
        return
      }
      if (packet.qos === 0 || options.journal === undefined) { callback(null); return }
      journalThenAck(client, marked as HopPacket, payload, callback)
    },
    authorizeSubscribe (client, subscription, callback) {
      if (client === null) { callback(null, subscription); return }
      callback(null, access.allowSubscribe(client, subscription.topic) ? subscription : null as never)
    },
    authorizeForward (client, packet) {
      if (packet.topic === DROPPED_TOPIC) return null
      if (!access.allowDelivery(client, packet.topic)) return null
      stats.messagesOut++
      return packet
    },
    published (packet: HopPacket, client: Client | null, done: (error?: Error | null) => void) {
      try {
        if (client !== null && packet.topic !== DROPPED_TOPIC) stats.messagesIn++
        if (packet.topic !== DROPPED_TOPIC && packet[INTERNAL] !== true) {
          options.onMessage({
            topic: packet.topic,
            payload: typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload,
            qos: packet.qos,
            retain: packet.retain,
            clientId: client?.id ?? null,
            hops: packet[HOPS] ?? 0,
            settlement: packet[SETTLEMENT],
            receivedAt: packet[RECEIVED_AT]
          })
        }
      } finally {
        if (packet[IN_FLIGHT] === true) {
          packet[IN_FLIGHT] = false
          if (--inFlight === 0) settled?.()
        }
      }
      done(null)
    }
  })
  /**
   * Keeps the publish in the journal, then lets aedes ack it: authorizePublish is the last step
   * before aedes writes the PUBACK (QoS 1) or stores and publishes before the PUBREC (QoS 2).
   */
  function journalThenAck (client: Client, packet: HopPacket, payload: Buffer, callback: (error: Error | null) => void): void {
    const keep = (): void => {
      const receivedAt = Date.now()
      const kept = options.journal!({ topic: packet.topic, payload, qos: packet.qos as 1 | 2, retain: packet.retain, clientId: client.id, receivedAt }, (err, settlement) => {
        if (err !== undefined) { callback(err); return }
        packet[SETTLEMENT] = settlement
        packet[RECEIVED_AT] = receivedAt
        callback(null)
      })
      if (!kept) callback(null)
    }
    // A QoS 2 publish sent again (DUP) that aedes has stored already is answered with a PUBREC and
    // never published: journaling it again would keep a record nothing settles.
    if (packet.qos === 2 && packet.dup) {
      const stored = (aedes as unknown as { persistence: { incomingGetPacket: (c: Client, p: HopPacket) => Promise<unknown> } }).persistence
      stored.incomingGetPacket(client, packet).then(() => callback(null), keep)
      return
    }
    keep()
  }
  logConnectionErrors(aedes, access, options.logger)
  countDeliveryDrops(aedes, stats, droppedByClient, options.logger)
  let listeners
  try {
    listeners = await startListeners(options.listeners, aedes.handle)
  } catch (err) {
    await new Promise<void>((resolve) => aedes.close(() => resolve()))
    throw err
  }

  let stopped: Promise<void> | undefined
  return {
    host: listeners.bound[0].host,
    port: listeners.bound[0].port,
    listeners: listeners.bound,
    aedes,
    access,
    stats,
    droppedByClient,
    clients: () => Object.values((aedes as unknown as { clients: Record<string, Client> }).clients),
    publishReport (topic, payload) {
      const packet = { cmd: 'publish', topic, payload, qos: 0, retain: true, dup: false, [INTERNAL]: true }
      aedes.publish(packet as unknown as AedesPublishPacket, () => {})
    },
    publish (out, done) {
      const packet = { cmd: 'publish', topic: out.topic, payload: out.payload, qos: out.qos, retain: out.retain, dup: false, [HOPS]: out.hops, [SETTLEMENT]: out.settlement }
      aedes.publish(packet as unknown as AedesPublishPacket, (error?: Error) => done(error ?? undefined))
    },
    close () {
      stopped ??= (async () => {
        // No new connections and no new publishes; then let the ones already let in reach the engine.
        closing = true
        const listenersClosed = listeners.close()
        if (inFlight > 0) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, CLOSE_SETTLE_MS)
            settled = () => { clearTimeout(timer); resolve() }
          })
        }
        await new Promise<void>((resolve) => aedes.close(() => resolve()))
        await listenersClosed
      })()
      return stopped
    }
  }
}

/** Connection errors that are a client breaking a limit or the protocol: counted and logged. */
const CLOSE_REASONS: Array<{ match: RegExp, counter: 'packetTooLarge' | 'invalidUtf8' | 'connectTimeouts' | 'drainTimeouts', message: string }> = [
  { match: /^packet of \d+ bytes is over the maximum packet size/, counter: 'packetTooLarge', message: 'connection closed: a packet over max_packet_bytes' },
  { match: /^Invalid UTF-8 string/, counter: 'invalidUtf8', message: 'connection closed: a string that is not UTF-8 (MQTT-1.5.3-1)' },
  { match: /^connect did not arrive in time/, counter: 'connectTimeouts', message: 'connection closed: no CONNECT within connect_timeout_ms' },
  { match: /^drain timeout/, counter: 'drainTimeouts', message: 'subscriber disconnected: it did not read within client_drain_timeout_ms' }
]

/**
 * Counts and logs connection errors: a client over max_packet_bytes, sending invalid UTF-8 or no
 * CONNECT in time; and aedes' silent refusal of an MQTT 5 client (CONNACK code 1: its user sees
 * "unsupported protocol version" and ours saw no reason). Warn once per address and kind; the
 * rest at debug.
 */
function logConnectionErrors (aedes: Aedes, access: AccessControl, logger: Logger): void {
  const warned = new Set<string>()
  const log = (remote: string | undefined, kind: string, context: Record<string, unknown>, message: string): void => {
    const key = `${kind}:${remote ?? ''}`
    const level = warned.has(key) ? 'debug' : 'warn'
    if (warned.size < 1000) warned.add(key)
    logger[level]({ remote, ...context }, message)
  }
  const onError = (client: Client, err: Error & { errorCode?: number }): void => {
    const remote = remoteOf(client)
    const reason = CLOSE_REASONS.find((r) => r.match.test(err.message))
    if (reason !== undefined) {
      access.counters[reason.counter]++
      log(remote, reason.counter, { clientId: client.id ?? null, err: err.message }, reason.message)
      return
    }
    if (err.errorCode !== UNACCEPTABLE_PROTOCOL_VERSION) { logger.debug({ remote, err: err.message }, 'connection error'); return }
    log(remote, 'protocol', {}, PROTOCOL_HINT)
  }
  aedes.on('connectionError', onError)
  aedes.on('clientError', onError)
}

/**
 * A subscriber whose backlog is full gets no more copies until it reads (patches/aedes emits
 * 'deliveryDropped'): counted in total and per client id, and logged once per client.
 */
function countDeliveryDrops (aedes: Aedes, stats: BrokerStats, byClient: Map<string, number>, logger: Logger): void {
  const warned = new Set<string>()
  aedes.on('deliveryDropped', (client, packet) => {
    stats.deliveriesDropped++
    stats.messagesOut--
    const id = byClient.has(client.id) || byClient.size < MAX_COUNTED_CLIENTS ? client.id : OTHER_CLIENTS
    byClient.set(id, (byClient.get(id) ?? 0) + 1)
    if (warned.has(client.id)) return
    if (warned.size < 1000) warned.add(client.id)
    logger.warn({ clientId: client.id, remote: remoteOf(client), topic: packet.topic.slice(0, 200) }, 'subscriber is not reading: deliveries to it are dropped and counted until it catches up (max_queued_messages, max_queued_bytes)')
  })
}
