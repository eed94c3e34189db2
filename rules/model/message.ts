/**
 * Messages as every layer sees them: one that arrives (from the embedded broker or a source), one
 * a rule derives, and how a payload is written into a JSON document. Pure data: no transport.
 */

/** One message from the broker. */
export interface InboundMessage {
  topic: string
  payload: Buffer
  qos: 0 | 1 | 2
  retain: boolean
  clientId: string | null
  /** Rules this message has passed through already: 0 for a client's publish. */
  hops: number
  /**
   * The subscription filters an external source received it through: only rules with one of these
   * filters run, so overlapping filters never run a rule twice. Undefined: every matching rule runs.
   */
  via?: readonly string[]
  /** Where its derived messages and dead letters go (its source); default: the embedded broker. */
  publish?: Publish
  /** MQTT 5 properties it came with (from an MQTT 5 source), carried onto its derived messages. */
  properties?: MessageProperties
  /** Held by each output until it is delivered or counted: set for a message the write-ahead log keeps. */
  settlement?: Settlement
  /** When it arrived, if known already (a logged message, or one handled again after a restart). */
  receivedAt?: number
}

/**
 * What a logged message is waiting for: every output it produced (and every message derived from
 * it) holds it, and releases it once delivered, refused for good or dropped and counted. When the
 * last hold goes, the write-ahead log forgets the message.
 */
export interface Settlement {
  /** The logged message's id: the same when it is handled again after a restart. */
  readonly id: string
  /** Whether the message is handled again after a restart: its outputs are counted as replayed too. */
  readonly replayed: boolean
  hold: () => void
  release: () => void
  /**
   * A sink gave up on it while closing: when the process is stopping it stays in the log, to be
   * handled again at the next start; otherwise (a sink a reload removed) it is released.
   */
  abandon: () => void
}

/** A derived message, ready to publish on the embedded broker. */
export interface OutMessage {
  topic: string
  payload: Buffer
  qos: 0 | 1 | 2
  retain: boolean
  /** Rules this message has passed through, including the one that made it. */
  hops: number
  /** The rule that made it (for a dead letter, the rule that failed). */
  rule: string
  /** MQTT 5 properties carried from the message it was derived from (an MQTT 5 source only). */
  properties?: MessageProperties
  /** The logged message it came from, which waits until this one has been handled. */
  settlement?: Settlement
}

/**
 * The MQTT 5 properties a derived message carries from its input: the user properties (but the
 * hop count, which signalbox sets) and the content type ('application/json' once a `set` has
 * rewritten the payload). Others (expiry, response topic, correlation data) are the input's own.
 */
export interface MessageProperties {
  userProperties?: Record<string, string | string[]>
  contentType?: string
}

/** Publishes one message; `done` gets an error when it could not be published. */
export type Publish = (out: OutMessage, done: (error?: Error) => void) => void

/** A payload for a JSON document: UTF-8 text when valid, else base64, so dead letters keep every byte. */
export function describePayload (payload: Buffer): { payload: string, encoding: 'utf8' | 'base64' } {
  const text = payload.toString('utf8')
  return Buffer.from(text, 'utf8').equals(payload) ? { payload: text, encoding: 'utf8' } : { payload: payload.toString('base64'), encoding: 'base64' }
}
