/** A message as the engine sees it, and its payload decoded at most once. */
import type { MessageProperties, Publish } from '../adapters/sink.js'
import { jsonNestsDeeperThan } from './limits.js'

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
}

/** A decoded payload: JSON when it parses, otherwise its UTF-8 text. */
export interface DecodedPayload {
  json: boolean
  value: unknown
  /** JSON nested deeper than the limit: not parsed, `value` is the text. */
  tooDeep?: boolean
}

/** Decodes a payload; never throws. JSON nested deeper than `maxDepth` is left as text. */
export function decodePayload (payload: Buffer, maxDepth: number): DecodedPayload {
  const text = payload.toString('utf8')
  if (jsonNestsDeeperThan(payload, maxDepth)) return { json: false, value: text, tooDeep: true }
  try {
    return { json: true, value: JSON.parse(text) }
  } catch {
    return { json: false, value: text }
  }
}

/** A payload for a JSON document: UTF-8 text when valid, else base64, so dead letters keep every byte. */
export function describePayload (payload: Buffer): { payload: string, encoding: 'utf8' | 'base64' } {
  const text = payload.toString('utf8')
  return Buffer.from(text, 'utf8').equals(payload) ? { payload: text, encoding: 'utf8' } : { payload: payload.toString('base64'), encoding: 'base64' }
}
