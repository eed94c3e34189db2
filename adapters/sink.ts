/**
 * The sink contract. A sink takes derived messages to somewhere outside the embedded broker
 * (NATS, a file, another MQTT broker). Lifecycle: create (validate options, no I/O) → start →
 * send … → flush → close (drains). Every message handed to `send` ends up delivered or dropped
 * with a counted reason: `emitted = delivered + dropped + depth` at all times.
 */
import type { Logger } from '../rules/model/logger.js'
import type { Settlement } from '../rules/model/message.js'
import type { SinkDefinition, SinkSpec } from '../rules/model/sink-spec.js'

/** One message for a sink. */
export interface Delivery {
  /** The rule that emitted it. */
  rule: string
  /** The MQTT topic of the message the rule handled. */
  topic: string
  /** Where it goes, rendered from the output's template: a NATS subject, an MQTT topic, a file path. */
  address: string
  payload: Buffer
  qos: 0 | 1 | 2
  retain: boolean
  hops: number
  /** When the engine received the source message (ms since the epoch). */
  time: number
  /** Released once this message is delivered, refused or dropped; abandoned when a closing sink gives up on it. */
  settlement?: Settlement
  /** The named captures of the rule's filter (`room` of `sensors/+room/temperature`). */
  params?: Readonly<Record<string, string>>
  /** The output as written in the rule (options a sink reads per output, such as `columns`). */
  output?: Readonly<Record<string, unknown>>
  /** The values of the output's expressions (the spec's `expressions`, such as `time`). */
  values?: Record<string, unknown>
  /**
   * For an output of a logged message: an id that is the same when the message is handled again
   * after a restart, so the destination (or its consumer) can drop the duplicate.
   */
  id?: string
}

/** Why a message was dropped. */
export type DropReason =
  /** The bounded queue was full (the server was down or slower than the input). */
  | 'queue_full'
  /** The server or file system refused this message for good (bad subject, too large, permission). */
  | 'rejected'
  /** Still queued when the drain at shutdown ran out of time, or sent after close. */
  | 'shutdown'

/** Delivery accounting of one sink. */
export interface SinkCounters {
  /** Messages handed to `send`. */
  emitted: number
  /** Messages accepted into the queue. */
  queued: number
  /** Messages the destination confirmed (see each sink for what confirms). */
  delivered: number
  /** Message deliveries attempted again after a failed attempt. */
  retried: number
  /** Failed delivery attempts (a batch counts once). */
  failures: number
  /** Messages given up on, by reason. */
  dropped: Record<DropReason, number>
  /** Fields left out of a delivered message because the destination has no place for them (a table's missing column). */
  fieldsDropped?: number
}

export type SinkState = 'idle' | 'connecting' | 'up' | 'down' | 'closed'

export interface SinkHealth {
  state: SinkState
  /** When it entered this state (ms since epoch): readiness allows a sink down for a while. */
  since: number
  /** Messages waiting in the queue (including a batch in flight). */
  depth: number
  capacity: number
  /** The last failed delivery attempt, kept until a delivery succeeds. */
  lastError?: string
  /** Why the most recent message was dropped (`reason: detail`). */
  lastDrop?: string
}

export interface Sink {
  readonly name: string
  readonly type: string
  /** Starts connecting; resolves once the sink takes messages (it may still be waiting for its server). */
  start: () => Promise<void>
  /** Queues one message. Never throws and never blocks: a full queue drops and counts. */
  send: (delivery: Delivery) => void
  /** Resolves true once everything queued so far is delivered or dropped, false on timeout. */
  flush: (timeoutMs: number) => Promise<boolean>
  /** Stops taking messages, drains for up to `timeoutMs`, drops (and counts) the rest, disconnects. */
  close: (timeoutMs: number) => Promise<void>
  health: () => SinkHealth
  counters: () => SinkCounters
}

export interface SinkContext {
  logger: Logger
  /** Told the delivery time of each message a sink delivers (from the message's arrival), for metrics. */
  observeDelivery?: (sink: string, seconds: number) => void
  /** Told of each output the destination refused for good, to publish it as a dead letter. */
  deadLetter?: (sink: string, delivery: Delivery, reason: string) => void
}

/**
 * One kind of sink: its spec (what a rules file may say, rules/model/sink-spec.ts) and how to build
 * it. Adding a sink: its spec in adapters/specs/, its implementation in adapters/sinks/, a line in
 * adapters/sink-specs.ts and in adapters/registry.ts, and the contract suite (test/helpers/sink-contract.ts).
 */
export interface SinkType extends SinkSpec {
  /** Builds the sink; no I/O until `start`. */
  create: (definition: SinkDefinition, context: SinkContext) => Sink
  /**
   * What the destination would be handed for a delivery, when it is not the payload (a database
   * row): `signalbox trace` and `signalbox test` show it. Pure: no I/O.
   */
  describe?: (delivery: Delivery) => string
}

/**
 * A sink type whose constructor reads its options typed: `O` is the options as the spec's schema
 * declares them (written beside it in adapters/specs/), with the schema's top-level defaults filled
 * in. The one cast of options: they passed this very schema when the rules loaded.
 */
export function typedSinkType<O extends object> (spec: SinkSpec, build: (definition: SinkDefinition, options: O, context: SinkContext) => Sink): SinkType {
  return { ...spec, create: (definition, context) => build(definition, withDefaults(spec, definition.options) as O, context) }
}

function withDefaults (spec: SinkSpec, options: Record<string, unknown>): Record<string, unknown> {
  const defaults = Object.entries(spec.options).flatMap(([key, schema]) => {
    const value = (schema as { default?: unknown }).default
    return value === undefined ? [] : [[key, value]]
  })
  return { ...Object.fromEntries(defaults), ...options }
}
