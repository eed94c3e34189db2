/**
 * Limits on what a client may send. Over a limit, a publish is refused and counted (the client
 * stays connected), or, for JSON nested too deep, the rules that read it dead-letter the message.
 */

export interface Limits {
  /** Largest payload a client may publish. */
  maxPayloadBytes: number
  /** Longest topic name, in characters. */
  maxTopicLength: number
  /** Most levels in a topic name or filter. */
  maxTopicLevels: number
  /** Deepest JSON nesting the engine decodes; deeper payloads are not parsed. */
  maxJsonDepth: number
  /** A subscriber that does not read for this long is disconnected, so it cannot stall others. */
  clientDrainTimeoutMs: number
  /** Largest MQTT packet a client may send; a larger one closes the connection once its fixed header is read. */
  maxPacketBytes: number
  /** A connection that has not sent CONNECT within this long is closed. */
  connectTimeoutMs: number
  /** A subscriber's unread backlog, in messages and bytes; past either, deliveries to it are dropped and counted. */
  maxQueuedMessages: number
  maxQueuedBytes: number
}

/** Room for a publish's topic (65,535 bytes at most) and headers beside its payload. */
const PACKET_OVERHEAD_BYTES = 65_536 + 16
const MIB = 1024 * 1024

/** The default max_packet_bytes: a payload of max_payload_bytes with any topic fits. */
export function defaultMaxPacketBytes (maxPayloadBytes: number): number {
  return Math.max(MIB, maxPayloadBytes + PACKET_OVERHEAD_BYTES)
}

export const DEFAULT_LIMITS: Limits = {
  maxPayloadBytes: 256 * 1024,
  maxTopicLength: 1024,
  maxTopicLevels: 32,
  maxJsonDepth: 64,
  clientDrainTimeoutMs: 5_000,
  maxPacketBytes: defaultMaxPacketBytes(256 * 1024),
  connectTimeoutMs: 10_000,
  maxQueuedMessages: 1000,
  maxQueuedBytes: 8 * MIB
}

/** aedes refuses (and disconnects) topics past this many levels whatever we set. The config keys are in engine/service/settings.ts. */
export const BROKER_MAX_TOPIC_LEVELS = 100

/**
 * Whether JSON text nests deeper than `max` ('[' and '{' outside strings). A scan, not a parse, so
 * a 100,000-deep payload costs one pass and never reaches JSON.parse.
 */
export function jsonNestsDeeperThan (payload: Buffer, max: number): boolean {
  // Nesting deeper than max needs more than 2 * max bytes.
  if (payload.length <= 2 * max) return false
  let depth = 0
  let inString = false
  for (let i = 0; i < payload.length; i++) {
    const c = payload[i]
    if (inString) {
      if (c === 0x5c) i++ // backslash: skip the escaped byte
      else if (c === 0x22) inString = false
    } else if (c === 0x22) {
      inString = true
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true
    } else if (c === 0x5d || c === 0x7d) {
      depth--
    }
  }
  return false
}
