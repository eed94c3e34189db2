/**
 * NATS as the source. Each rule filter becomes subjects (`/` → `.`, `+` → `*`, `#` → `>` plus the
 * parent subject, since MQTT's `a/#` matches `a`), subscribed in a queue group with --share so N
 * workers split the load. A message's topic is its subject with `.` → `/`. Derived messages go back
 * as subjects made the same way, with the hop count in the Signalbox-Hops header (the NATS sink
 * sends it too, so chains through NATS stop at max_hops as they do on the embedded broker).
 *
 * Core NATS is at-most-once: what a killed worker had received and not yet handled is lost.
 */
import { connect, Events, headers, type ConnectionOptions, type Msg, type NatsConnection, type Subscription } from 'nats'
import type { OutMessage } from '../../rules/model/message.js'
import { HOPS_HEADER, parseHops, type Source } from './source.js'
import { SourceBase } from './source-base.js'
import { describeNatsError, natsConnectionOptions } from '../clients/nats-connection.js'

/** How long start() waits for the first connection before the service goes on (it keeps dialling). */
const FIRST_CONNECT_WAIT_MS = 2_000
const REDIAL_MAX_MS = 5_000

export class NatsSource extends SourceBase implements Source {
  readonly kind = 'nats'
  private nc: NatsConnection | undefined
  /** Filter → its subscriptions (one or two subjects). */
  private readonly subscriptions = new Map<string, Subscription[]>()
  private wanted: string[] = []
  /** Cuts the wait between dial attempts short (on close). */
  private redial: (() => void) | undefined

  protected subscriptionCount (): number {
    return this.subscriptions.size
  }

  async start (): Promise<void> {
    const s = this.settings
    const options = natsConnectionOptions({ servers: [s.url], name: s.clientId ?? `signalbox-${process.pid}`, user: s.username, pass: s.password, token: s.token, tls: s.tls })
    const first = this.dialLoop(options)
    let timer: NodeJS.Timeout | undefined
    await Promise.race([first, new Promise<void>((resolve) => { timer = setTimeout(resolve, FIRST_CONNECT_WAIT_MS) })])
    clearTimeout(timer)
    if (this.state === 'connecting') this.setState('down', `no connection to ${this.name} yet; still trying`)
  }

  /**
   * Connects, and again whenever a connection is closed for good, until close(). Resolves after the
   * first attempt; the loop goes on in the background and stops at once when the source closes.
   */
  private dialLoop (options: ConnectionOptions): Promise<void> {
    let firstDone: () => void = () => {}
    const first = new Promise<void>((resolve) => { firstDone = resolve })
    const loop = async (): Promise<void> => {
      let wait = 100
      while (!this.isClosed()) {
        try {
          const nc = await connect(options)
          if (this.isClosed()) { await nc.close(); break }
          this.nc = nc
          this.subscriptions.clear()
          this.setState('up')
          this.apply()
          firstDone()
          this.watch(nc).catch(() => {})
          const err = await nc.closed()
          if (this.isClosed()) break
          this.setState('down', `connection to ${this.name} closed${err !== undefined ? `: ${err.message}` : ''}`)
          wait = 100
        } catch (err) {
          this.setState('down', `cannot connect to ${this.name}: ${describeNatsError(err as Error)}`)
          firstDone()
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, wait)
          this.redial = () => { clearTimeout(timer); resolve() }
        })
        wait = Math.min(wait * 2, REDIAL_MAX_MS)
      }
      firstDone()
    }
    loop().catch((err: Error) => this.context.logger.error({ source: this.name, err: err.message }, 'NATS dial loop failed'))
    return first
  }

  async follow (filters: string[]): Promise<void> {
    this.wanted = [...new Set(filters)]
    this.apply()
  }

  publish = (out: OutMessage, done: (error?: Error) => void): void => {
    const nc = this.nc
    const subject = topicToSubjectOrUndefined(out.topic)
    if (nc === undefined || nc.isClosed() || this.state !== 'up') {
      this.stats.publishFailed++
      done(new Error(`${this.name} is not connected`))
      return
    }
    if (subject === undefined) {
      this.stats.publishFailed++
      done(new Error(`topic '${out.topic}' has no NATS subject (a level is empty or holds '.', '*', '>' or whitespace)`))
      return
    }
    const h = headers()
    h.set(HOPS_HEADER, String(out.hops))
    try {
      nc.publish(subject, out.payload, { headers: h })
      this.stats.published++
      done()
    } catch (err) {
      this.stats.publishFailed++
      done(err as Error)
    }
  }

  async close (): Promise<void> {
    this.setState('closed')
    this.redial?.()
    const nc = this.nc
    this.nc = undefined
    // drain: stop taking messages, finish handling those received, flush what was published.
    if (nc !== undefined && !nc.isClosed()) await nc.drain().catch(() => {})
  }

  /** Brings the subscriptions in line with the wanted filters (nats.js keeps them across reconnects). */
  private apply (): void {
    const nc = this.nc
    if (nc === undefined || this.state === 'closed') return
    const wanted = new Set(this.wanted)
    const added: string[] = []
    const removed: string[] = []
    for (const [filter, subs] of this.subscriptions) {
      if (wanted.has(filter)) continue
      for (const sub of subs) sub.unsubscribe()
      this.subscriptions.delete(filter)
      removed.push(filter)
    }
    for (const filter of this.wanted) {
      if (this.subscriptions.has(filter)) continue
      const subjects = filterToSubjects(filter)
      if (subjects === undefined) {
        this.context.logger.error({ source: this.name, filter }, 'rule filter has no NATS subject (a level holds \'.\', \'*\', \'>\' or whitespace, or is empty): those rules get no messages from NATS')
        this.subscriptions.set(filter, [])
        continue
      }
      const via = [filter]
      this.subscriptions.set(filter, subjects.map((subject) => nc.subscribe(subject, {
        queue: this.settings.share,
        callback: (err, msg) => { if (err === null) this.receive(msg, via) }
      })))
      added.push(filter)
    }
    if (added.length > 0 || removed.length > 0) this.context.logger.info({ source: this.name, added, removed, queue: this.settings.share }, 'source subscriptions changed')
  }

  private receive (msg: Msg, via: string[]): void {
    if (this.state === 'closed') return
    this.stats.received++
    const hops = msg.headers === undefined ? 0 : parseHops(msg.headers.get(HOPS_HEADER))
    this.context.onMessage({ topic: msg.subject.replaceAll('.', '/'), payload: Buffer.from(msg.data), qos: 0, retain: false, clientId: null, hops, via, publish: this.publish })
  }

  private async watch (nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === Events.Disconnect) this.setState('down', `disconnected from ${this.name}`)
      else if (status.type === Events.Reconnect) this.setState('up')
    }
  }
}

const BAD_TOKEN = /[.*>\s]/

/** The subjects an MQTT filter covers, or undefined when a level cannot be a subject token. */
export function filterToSubjects (filter: string): string[] | undefined {
  const levels = filter.split('/')
  const tokens: string[] = []
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]
    if (level === '#') {
      // MQTT's '#' also matches the parent level: 'a/#' matches 'a' (and '#' alone matches everything).
      return tokens.length === 0 ? ['>'] : [tokens.join('.'), [...tokens, '>'].join('.')]
    }
    if (level === '+') { tokens.push('*'); continue }
    if (level === '' || BAD_TOKEN.test(level)) return undefined
    tokens.push(level)
  }
  return [tokens.join('.')]
}

function topicToSubjectOrUndefined (topic: string): string | undefined {
  const levels = topic.split('/')
  for (const level of levels) if (level === '' || BAD_TOKEN.test(level)) return undefined
  return levels.join('.')
}
