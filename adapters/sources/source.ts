/**
 * A source of messages other than the embedded broker: an existing MQTT broker or NATS servers.
 * Workers attach to it, subscribe to every rule filter (shared, with --share, so N workers split
 * the load), and send derived messages back to it with their hop count.
 */
import type { Publish } from '../../rules/model/message.js'
import type { InboundMessage } from '../../rules/model/message.js'
import type { Logger } from '../../rules/model/logger.js'

export type SourceState = 'connecting' | 'up' | 'down' | 'closed'

export interface SourceCounters {
  /** Messages taken from the source and handed to the engine. */
  received: number
  /** Derived messages and dead letters sent back to the source (acknowledged for QoS 1/2). */
  published: number
  /** Derived messages the source could not take (disconnected, refused). The engine counts them per rule too. */
  publishFailed: number
}

export interface SourceHealth {
  state: SourceState
  /** Since when (ms since epoch) it has been in this state. */
  since: number
  lastError?: string
  /** Filters it is subscribed to now. */
  subscriptions: number
}

export interface Source {
  /** `mqtt` or `nats`. */
  readonly kind: string
  /** The URL (without credentials), for logs and metrics. */
  readonly name: string
  /** Connects (and keeps reconnecting on its own); resolves once the first connection attempt is over. */
  start: () => Promise<void>
  /** Makes the subscriptions exactly these MQTT filters: new ones are added, gone ones removed. */
  follow: (filters: string[]) => Promise<void>
  /** Sends a derived message back to where its input came from. */
  publish: Publish
  health: () => SourceHealth
  counters: () => SourceCounters
  close: () => Promise<void>
}

export interface SourceSettings {
  url: string
  /** Shared subscriptions ($share/GROUP/…) on MQTT, a queue group on NATS. */
  share?: string
  clientId?: string
  username?: string
  password?: string
  /** NATS token. */
  token?: string
  /** MQTT: QoS of the subscriptions (default 1). */
  qos: 0 | 1 | 2
  /** MQTT: keep the session (and what is queued for it) across disconnects, for this many seconds. */
  sessionExpiry: number
  tls?: { ca?: string, cert?: string, key?: string, rejectUnauthorized: boolean }
}

export interface SourceContext {
  logger: Logger
  /** Where the source hands each message. */
  onMessage: (msg: InboundMessage) => void
}

export function createSourceCounters (): SourceCounters {
  return { received: 0, published: 0, publishFailed: 0 }
}

/** A URL without its user and password, for logs. */
export function redactUrl (url: string): string {
  try {
    const parsed = new URL(url)
    parsed.username = ''
    parsed.password = ''
    return parsed.toString().replace(/\/$/, '')
  } catch {
    return url
  }
}

/**
 * The hop count a message arrived with (user property / header), bounded: a client that sends
 * nonsense gets 0, and a huge number only shortens its own message's path.
 */
export function parseHops (value: unknown): number {
  if (typeof value !== 'string' || !/^\d{1,3}$/.test(value)) return 0
  return Number(value)
}

export const HOPS_PROPERTY = 'signalbox-hops'
export const HOPS_HEADER = 'Signalbox-Hops'
