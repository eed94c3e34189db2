/**
 * Who may connect, publish, subscribe and receive on the embedded broker: users (scrypt), the
 * anonymous policy, topic ACLs and limits. Every refusal is counted and logged without secrets.
 */
import type { Client } from 'aedes'
import type { Acl, Identity } from './acl.js'
import type { Limits } from './limits.js'
import type { Logger } from '../observe/logger.js'
import type { UserStore } from './users.js'

export interface AccessPolicy {
  /** Users with passwords; without them, user names are not checked (and clients count as anonymous for ACLs). */
  users: UserStore | undefined
  /** Whether a client without a user name may connect. */
  allowAnonymous: boolean
  acl: Acl | undefined
  limits: Limits
}

/** Refusals, by kind. */
export interface AccessCounters {
  /** Connections refused: unknown user, wrong password, or anonymous when not allowed. */
  authFailures: number
  /** Publishes dropped because the ACL does not allow them. */
  publishDenied: number
  /** Subscriptions refused (SUBACK 0x80) by the ACL or the topic limits. */
  subscribeDenied: number
  /** Messages not delivered to a subscriber whose ACL does not allow their topic. */
  deliveryDenied: number
  /** Publishes dropped by a limit. */
  payloadTooLarge: number
  topicTooLong: number
  topicTooDeep: number
  /** Publishes dropped because the topic holds NUL. */
  topicInvalid: number
  /** Connections closed for a packet over max_packet_bytes (from its fixed header). */
  packetTooLarge: number
  /** Connections closed for a string (topic, filter, client id, user name) that is not UTF-8 [MQTT-1.5.3-1]. */
  invalidUtf8: number
  /** Connections closed because no CONNECT arrived within connect_timeout_ms. */
  connectTimeouts: number
  /** Subscribers disconnected because they did not read within client_drain_timeout_ms. */
  drainTimeouts: number
  /** Connections closed because a users-file reload removed their user or changed its password. */
  revokedDisconnects: number
  /** Publishes to $SYS/… or $signalbox/… (the broker's and the engine's) that no ACL entry names. */
  topicReserved: number
}

export function createAccessCounters (): AccessCounters {
  return { authFailures: 0, publishDenied: 0, subscribeDenied: 0, deliveryDenied: 0, payloadTooLarge: 0, topicTooLong: 0, topicTooDeep: 0, topicInvalid: 0, topicReserved: 0, revokedDisconnects: 0, packetTooLarge: 0, invalidUtf8: 0, connectTimeouts: 0, drainTimeouts: 0 }
}

/** Why a publish is dropped, or undefined to let it through. */
export type PublishVerdict = undefined | { counter: keyof AccessCounters, reason: string }

const IDENTITY = Symbol('signalbox.identity')
type IdentifiedClient = Client & { [IDENTITY]?: Identity }

/** MQTT 3.1.1 CONNACK return code 5, "not authorized". */
const NOT_AUTHORIZED = 5

export class AccessControl {
  readonly counters = createAccessCounters()
  private readonly logged = new Set<string>()

  constructor (private readonly policy: AccessPolicy, private readonly logger: Logger) {}

  /** aedes' authenticate hook. The password never reaches a log. */
  authenticate (client: Client, username: string | undefined, password: Buffer | undefined, done: (error: (Error & { returnCode?: number }) | null, ok?: boolean) => void): void {
    const { users, allowAnonymous } = this.policy
    const refuse = (why: string): void => {
      this.counters.authFailures++
      this.logOnce(`auth:${username ?? ''}:${why}`, { clientId: client.id, username, remote: remoteOf(client) }, `connection refused: ${why}`)
      const error = new Error(why) as Error & { returnCode: number }
      error.returnCode = NOT_AUTHORIZED
      done(error, false)
    }
    if (username === undefined || username === null) {
      if (!allowAnonymous) { refuse('anonymous clients are not allowed'); return }
      (client as IdentifiedClient)[IDENTITY] = { username: null, clientId: client.id }
      done(null, true)
      return
    }
    if (users === undefined) {
      // No users file: a user name proves nothing, so ACLs treat the client as anonymous.
      if (!allowAnonymous) { refuse('no users are configured'); return }
      (client as IdentifiedClient)[IDENTITY] = { username: null, clientId: client.id }
      done(null, true)
      return
    }
    const hash = users.hashOf(username)
    users.verify(username, password ?? Buffer.alloc(0)).then((ok) => {
      if (!ok) { refuse('unknown user or wrong password'); return }
      // The users file was reloaded during the check: a removed user or an old password must not get in.
      if (users.hashOf(username) !== hash) { this.authenticate(client, username, password, done); return }
      (client as IdentifiedClient)[IDENTITY] = { username, clientId: client.id }
      done(null, true)
    }, (err: Error) => refuse(`password check failed: ${err.message}`))
  }

  /** Disconnects the connected clients of these users (removed from the users file, or given a new password); returns how many. */
  revoke (clients: Iterable<Client>, usernames: readonly string[]): number {
    if (usernames.length === 0) return 0
    const names = new Set(usernames)
    let n = 0
    for (const client of clients) {
      const username = (client as IdentifiedClient)[IDENTITY]?.username
      if (username === null || username === undefined || !names.has(username)) continue
      n++
      this.counters.revokedDisconnects++
      this.logger.warn({ clientId: client.id, username, remote: remoteOf(client) }, 'client disconnected: its user was removed from the users file or its password changed')
      client.close()
    }
    return n
  }

  /** Checks a client's publish; the broker drops (and acks) what this refuses, so the client stays connected. */
  checkPublish (client: Client, topic: string, payload: Buffer): PublishVerdict {
    const { limits, acl } = this.policy
    // [MQTT-4.7.3-2] a topic name must not hold NUL.
    if (topic.includes('\u0000')) return { counter: 'topicInvalid', reason: 'topic holds NUL' }
    if (payload.length > limits.maxPayloadBytes) return { counter: 'payloadTooLarge', reason: `payload of ${payload.length} bytes is over max_payload_bytes (${limits.maxPayloadBytes})` }
    if (topic.length > limits.maxTopicLength) return { counter: 'topicTooLong', reason: `topic of ${topic.length} characters is over max_topic_length (${limits.maxTopicLength})` }
    if (levelCount(topic) > limits.maxTopicLevels) return { counter: 'topicTooDeep', reason: `topic has more than max_topic_levels (${limits.maxTopicLevels}) levels` }
    // Subscribers take what arrives there for the engine's own (dead letters, reports): only an ACL
    // entry that names the topic lets a client publish there (a leading wildcard never matches '$').
    if (isReserved(topic) && (acl === undefined || !acl.canPublish(identityOf(client), topic))) {
      return { counter: 'topicReserved', reason: `'${topic.slice(0, 200)}' is reserved for the broker and signalbox ($SYS/, $signalbox/); an ACL publish entry naming it allows it` }
    }
    if (acl !== undefined && !acl.canPublish(identityOf(client), topic)) return { counter: 'publishDenied', reason: `the ACL does not allow publishing to '${topic}'` }
    return undefined
  }

  /** Counts and logs a dropped publish (once per client and reason at warn, then at debug). */
  refused (client: Client, verdict: NonNullable<PublishVerdict>, topic: string): void {
    this.counters[verdict.counter]++
    this.logOnce(`pub:${client.id}:${verdict.counter}`, { clientId: client.id, topic: topic.slice(0, 200) }, `publish dropped: ${verdict.reason}`)
  }

  /** Whether a subscription is granted; a refusal is SUBACK 0x80. */
  allowSubscribe (client: Client, filter: string): boolean {
    const { limits, acl } = this.policy
    let why: string | undefined
    if (filter.length > limits.maxTopicLength || levelCount(filter) > limits.maxTopicLevels) why = 'over the topic limits'
    else if (acl !== undefined && !acl.canSubscribe(identityOf(client), filter)) why = 'not allowed by the ACL'
    if (why === undefined) return true
    this.counters.subscribeDenied++
    this.logOnce(`sub:${client.id}:${filter}`, { clientId: client.id, filter: filter.slice(0, 200) }, `subscription refused: ${why}`)
    return false
  }

  /** Whether a message may be delivered to this subscriber. */
  allowDelivery (client: Client, topic: string): boolean {
    const acl = this.policy.acl
    if (acl === undefined || acl.canRead(identityOf(client), topic)) return true
    this.counters.deliveryDenied++
    return false
  }

  private logOnce (key: string, context: Record<string, unknown>, message: string): void {
    const level = this.logged.has(key) ? 'debug' : 'warn'
    if (this.logged.size < 10_000) this.logged.add(key)
    this.logger[level](context, message)
  }
}

function identityOf (client: Client): Identity {
  return (client as IdentifiedClient)[IDENTITY] ?? { username: null, clientId: client.id }
}

/** The client's remote address, for logs. */
export function remoteOf (client: Client): string | undefined {
  return (client.conn as { remoteAddress?: string } | undefined)?.remoteAddress
}

/** $SYS/… is the broker's, $signalbox/… the engine's (dead letters, internal topics). */
function isReserved (topic: string): boolean {
  return topic.charCodeAt(0) === 36 && (topic === '$SYS' || topic.startsWith('$SYS/') || topic === '$signalbox' || topic.startsWith('$signalbox/'))
}

function levelCount (topic: string): number {
  let n = 1
  for (let i = 0; i < topic.length; i++) if (topic.charCodeAt(i) === 47) n++
  return n
}
