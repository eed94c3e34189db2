/**
 * An existing MQTT broker as the source (MQTT 5, mqtt.js). Each distinct rule filter is one
 * subscription (`$share/GROUP/filter` with a share group) carrying its own subscription
 * identifier: a message that matches two overlapping filters arrives once per subscription, maybe
 * at two workers, and each copy runs only the rules of the filter it came through, so every rule
 * sees every message once. Derived messages go back to the broker with the hop count in a user property.
 *
 * QoS 1 (the default): the broker's copy is acknowledged after the engine has handled it, so a
 * worker that dies loses at most what it had received and not yet acknowledged; with
 * `session_expiry` and a fixed client id, the broker keeps those and resends them when it returns.
 */
import { connect, type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt'
import type { MessageProperties, OutMessage } from '../../rules/model/message.js'
import { HOPS_PROPERTY, parseHops, type Source } from './source.js'
import { SourceBase } from './source-base.js'
import { topicMatches } from '../../rules/model/pattern.js'
import { noDelay, withCredentials } from '../clients/mqtt-client.js'

/** A filter behind a subscription identifier, split once for the per-message check. */
interface SubscribedFilter {
  filter: string
  levels: string[]
  /** `[filter]`, made once: the `via` of a message that came through this filter alone (the usual case). */
  only: readonly string[]
}

/** MQTT 5 subscription identifiers run from 1 to 268,435,455. */
const MAX_SUBSCRIPTION_ID = 268_435_455

export class MqttSource extends SourceBase implements Source {
  readonly kind = 'mqtt'
  private client: MqttClient | undefined
  /** Filter → subscription identifier, and back. */
  private readonly ids = new Map<string, number>()
  private readonly filters = new Map<number, SubscribedFilter>()
  private nextId = 1
  /** Identifiers of filters this process unsubscribed: a late copy through one runs no rule. */
  private readonly retired = new Set<number>()
  private corked = false
  /** Filters removed by a reload while disconnected. */
  private readonly unsubscribeLater = new Set<string>()
  /** Serialises subscription changes: a reload during a reconnect must not interleave with it. */
  private changes: Promise<void> = Promise.resolve()

  protected subscriptionCount (): number {
    return this.ids.size
  }

  async start (): Promise<void> {
    const s = this.settings
    const options: IClientOptions = {
      protocolVersion: 5,
      clientId: s.clientId ?? `signalbox-${process.pid}-${Math.random().toString(16).slice(2, 8)}`,
      clean: s.sessionExpiry === 0,
      properties: s.sessionExpiry > 0 ? { sessionExpiryInterval: s.sessionExpiry } : undefined,
      reconnectPeriod: 1_000,
      connectTimeout: 5_000,
      // Derived messages while the broker is away are refused and counted, not piled up unbounded.
      queueQoSZero: false,
      // Subscriptions are ours to restore (with their identifiers) on every connect.
      resubscribe: false
    }
    const client = connect(s.url, withCredentials(options, s))
    this.client = client
    client.on('message', (topic, payload, packet) => this.receive(topic, payload, packet))
    client.on('connect', () => {
      noDelay(client)
      this.setState('up')
      // Subscribe again even when the broker kept the session: our identifiers may be new (a restarted worker).
      this.queue(async () => {
        await this.subscribe([...this.ids.keys()])
        const stale = [...this.unsubscribeLater]
        this.unsubscribeLater.clear()
        if (stale.length > 0) await client.unsubscribeAsync(stale.map((f) => this.subscriptionTopic(f)))
      })
    })
    client.on('close', () => { if (this.state === 'up') this.setState('down', `connection to ${this.name} closed`) })
    client.on('offline', () => { if (this.state !== 'closed') this.setState('down', this.lastError ?? `${this.name} is unreachable`) })
    client.on('error', (err) => { this.lastError = `${this.name}: ${err.message}`; if (this.state !== 'up') this.setState('down', this.lastError) })
    await new Promise<void>((resolve) => {
      const settle = (): void => { client.off('connect', settle); client.off('error', settle); client.off('offline', settle); resolve() }
      client.once('connect', settle).once('error', settle).once('offline', settle)
    })
  }

  follow (filters: string[]): Promise<void> {
    return this.queue(async () => {
      const wanted = new Set(filters)
      const added = filters.filter((f) => !this.ids.has(f))
      const removed = [...this.ids.keys()].filter((f) => !wanted.has(f))
      for (const f of added) {
        const id = this.nextId
        this.nextId = this.nextId >= MAX_SUBSCRIPTION_ID ? 1 : this.nextId + 1
        this.ids.set(f, id)
        this.filters.set(id, { filter: f, levels: f.split('/'), only: [f] })
      }
      if (this.client?.connected === true) {
        await this.subscribe(added)
        if (removed.length > 0) await this.client.unsubscribeAsync(removed.map((f) => this.subscriptionTopic(f)))
      } else {
        // A kept session still holds them: unsubscribe once connected.
        for (const f of removed) this.unsubscribeLater.add(f)
      }
      for (const f of added) this.unsubscribeLater.delete(f)
      for (const f of removed) {
        const id = this.ids.get(f)!
        this.filters.delete(id)
        this.retired.add(id)
        this.ids.delete(f)
      }
      if (added.length > 0 || removed.length > 0) this.context.logger.info({ source: this.name, added, removed, share: this.settings.share }, 'source subscriptions changed')
    })
  }

  publish = (out: OutMessage, done: (error?: Error) => void): void => {
    const client = this.client
    if (client === undefined || !client.connected) {
      this.stats.publishFailed++
      done(new Error(`${this.name} is not connected`))
      return
    }
    const carried = out.properties
    const properties = { userProperties: { ...carried?.userProperties, [HOPS_PROPERTY]: String(out.hops) }, contentType: carried?.contentType }
    client.publish(out.topic, out.payload, { qos: out.qos, retain: out.retain, properties }, (err) => {
      if (err === undefined || err === null) { this.stats.published++; done(); return }
      this.stats.publishFailed++
      done(err)
    })
  }

  async close (): Promise<void> {
    this.setState('closed')
    await this.changes
    const client = this.client
    this.client = undefined
    // Not forced: QoS 1/2 publishes in flight (derived messages) finish first.
    if (client !== undefined) await client.endAsync()
  }

  private receive (topic: string, payload: Buffer, packet: IPublishPacket): void {
    if (this.state === 'closed') return
    const properties = packet.properties
    const via = viaFilters(topic, properties?.subscriptionIdentifier, this.filters, this.retired)
    const hops = parseHops(properties?.userProperties?.[HOPS_PROPERTY])
    this.stats.received++
    this.corkUntilIdle()
    this.context.onMessage({ topic, payload, qos: packet.qos, retain: packet.retain, clientId: null, hops, via, publish: this.publish, properties: carriedProperties(properties) })
  }

  /**
   * Holds the socket's writes until the messages that arrived together are handled: their derived
   * publishes and acknowledgements (mqtt.js writes each packet in several pieces) then leave in one
   * system call instead of dozens.
   */
  private corkUntilIdle (): void {
    if (this.corked) return
    const stream = this.client?.stream
    if (stream === undefined) return
    this.corked = true
    stream.cork()
    setImmediate(() => {
      this.corked = false
      stream.uncork()
    })
  }

  private async subscribe (filters: string[]): Promise<void> {
    const client = this.client
    if (client === undefined || filters.length === 0 || !client.connected) return
    // One SUBSCRIBE per filter: a subscription identifier belongs to a whole SUBSCRIBE packet.
    const granted = await Promise.all(filters.map(async (f) => await client.subscribeAsync(this.subscriptionTopic(f), {
      qos: this.settings.qos,
      properties: { subscriptionIdentifier: this.ids.get(f) }
    })))
    const refused = granted.flat().filter((g) => g.qos >= 0x80).map((g) => g.topic)
    if (refused.length > 0) {
      this.lastError = `${this.name} refused the subscriptions ${refused.join(', ')}`
      this.context.logger.error({ source: this.name, refused }, 'source refused subscriptions: those rules get no messages')
    }
  }

  private subscriptionTopic (filter: string): string {
    return this.settings.share === undefined ? filter : `$share/${this.settings.share}/${filter}`
  }

  private queue (change: () => Promise<void>): Promise<void> {
    const next = this.changes.then(change, change)
    this.changes = next.catch((err: Error) => { this.context.logger.warn({ source: this.name, err: err.message }, 'subscription change failed') })
    return next
  }
}

/**
 * The filters a message came through, from its subscription identifier(s). Undefined (every
 * matching rule runs) when the broker sent none, or one this process did not give to a filter
 * matching the topic: a kept session's queue, from before a restart, carries the old process's
 * identifiers, which may mean other filters now.
 */
function viaFilters (topic: string, ids: number | number[] | undefined, filters: ReadonlyMap<number, SubscribedFilter>, retired: ReadonlySet<number>): readonly string[] | undefined {
  if (ids === undefined) return undefined
  if (typeof ids === 'number') {
    const f = filters.get(ids)
    if (f !== undefined && topicMatches(f.levels, topic)) return f.only
    return retired.has(ids) ? [] : undefined
  }
  const via: string[] = []
  for (const id of ids) {
    const f = filters.get(id)
    if (f !== undefined && topicMatches(f.levels, topic)) via.push(f.filter)
    else if (!retired.has(id)) return undefined
  }
  return via
}

/** The input's user properties (less the hop count, set anew on each derived message) and content type; undefined when it has neither. */
function carriedProperties (properties: IPublishPacket['properties']): MessageProperties | undefined {
  if (properties === undefined) return undefined
  const { [HOPS_PROPERTY]: _hops, ...user } = properties.userProperties ?? {}
  const hasUser = Object.keys(user).length > 0
  if (!hasUser && properties.contentType === undefined) return undefined
  return { userProperties: hasUser ? user : undefined, contentType: properties.contentType }
}
