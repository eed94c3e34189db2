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

/** aedes refuses (and disconnects) topics past this many levels whatever we set. */
export const BROKER_MAX_TOPIC_LEVELS = 100

export const limitsSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'Limits on what clients may send.',
  properties: {
    max_payload_bytes: { type: 'integer', minimum: 1, maximum: 268435455, default: DEFAULT_LIMITS.maxPayloadBytes, description: 'Largest payload a client may publish; larger publishes are dropped and counted.' },
    max_topic_length: { type: 'integer', minimum: 1, maximum: 65535, default: DEFAULT_LIMITS.maxTopicLength, description: 'Longest topic, in characters.' },
    max_topic_levels: { type: 'integer', minimum: 1, maximum: BROKER_MAX_TOPIC_LEVELS, default: DEFAULT_LIMITS.maxTopicLevels, description: 'Most levels in a topic or filter.' },
    max_json_depth: { type: 'integer', minimum: 1, maximum: 10000, default: DEFAULT_LIMITS.maxJsonDepth, description: 'Deepest JSON nesting the rules decode; a deeper payload is dead-lettered (PAYLOAD_TOO_DEEP) by rules that read it.' },
    client_drain_timeout_ms: { type: 'integer', minimum: 100, maximum: 600000, default: DEFAULT_LIMITS.clientDrainTimeoutMs, description: 'A subscriber that stops reading is disconnected after this long, so it cannot stall delivery to others.' },
    max_packet_bytes: { type: 'integer', minimum: 64, maximum: 268435460, description: 'Largest MQTT packet a client may send, before or after authentication; a larger one closes the connection as soon as its fixed header is read, before its bytes are buffered. Default: 1 MiB, or max_payload_bytes plus 64 KiB when that is more.' },
    connect_timeout_ms: { type: 'integer', minimum: 100, maximum: 600000, default: DEFAULT_LIMITS.connectTimeoutMs, description: 'A connection that has not sent its CONNECT within this long is closed.' },
    max_queued_messages: { type: 'integer', minimum: 1, maximum: 10000000, default: DEFAULT_LIMITS.maxQueuedMessages, description: 'Messages a subscriber may leave unread (written since its connection last drained); past it, deliveries to that subscriber are dropped and counted, whatever their QoS, and others are not delayed.' },
    max_queued_bytes: { type: 'integer', minimum: 1024, maximum: 4294967296, default: DEFAULT_LIMITS.maxQueuedBytes, description: 'Bytes a subscriber may leave unread in its connection\'s buffer; past it, deliveries to it are dropped and counted.' }
  }
}

export interface RawLimits {
  max_payload_bytes?: number
  max_topic_length?: number
  max_topic_levels?: number
  max_json_depth?: number
  client_drain_timeout_ms?: number
  max_packet_bytes?: number
  connect_timeout_ms?: number
  max_queued_messages?: number
  max_queued_bytes?: number
}

export function limitsFrom (raw: RawLimits | undefined): Limits {
  const maxPayloadBytes = raw?.max_payload_bytes ?? DEFAULT_LIMITS.maxPayloadBytes
  return {
    maxPayloadBytes,
    maxTopicLength: raw?.max_topic_length ?? DEFAULT_LIMITS.maxTopicLength,
    maxTopicLevels: raw?.max_topic_levels ?? DEFAULT_LIMITS.maxTopicLevels,
    maxJsonDepth: raw?.max_json_depth ?? DEFAULT_LIMITS.maxJsonDepth,
    clientDrainTimeoutMs: raw?.client_drain_timeout_ms ?? DEFAULT_LIMITS.clientDrainTimeoutMs,
    maxPacketBytes: raw?.max_packet_bytes ?? defaultMaxPacketBytes(maxPayloadBytes),
    connectTimeoutMs: raw?.connect_timeout_ms ?? DEFAULT_LIMITS.connectTimeoutMs,
    maxQueuedMessages: raw?.max_queued_messages ?? DEFAULT_LIMITS.maxQueuedMessages,
    maxQueuedBytes: raw?.max_queued_bytes ?? DEFAULT_LIMITS.maxQueuedBytes
  }
}

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
