/** A message's payload decoded at most once. */
import { jsonNestsDeeperThan } from '../broker/limits.js'

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
