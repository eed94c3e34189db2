/**
 * Runs messages through a rule set with no broker and no network, recording every output: what
 * `signalbox test` and `signalbox trace` are built on. It is the real Engine; only the embedded
 * broker is replaced (republished messages are routed again, as the broker does) and each sink by
 * a recorder.
 */
import { pino } from 'pino'
import { sinkType } from '../../adapters/registry.js'
import type { Delivery, Sink, SinkCounters, SinkHealth } from '../../adapters/sink.js'
import type { RuleSet } from '../../rules/compile/ruleset.js'
import { DEFAULT_DEAD_LETTER_PREFIX, DEFAULT_MAX_HOPS, Engine, type EngineEvent } from '../runtime/engine.js'

/** One message in. */
export interface OfflineMessage {
  topic: string
  payload: Buffer
  qos: 0 | 1 | 2
  retain: boolean
  clientId: string | null
  /** When it arrives (ms since the epoch); fixes `meta.receivedAt` and `{date}`. Default: now. */
  time?: number
}

/** One output the rules produced. */
export interface OfflineOutput {
  kind: 'mqtt' | 'sink' | 'dead_letter'
  /** The rule that emitted it (for a dead letter, the rule that failed). */
  rule: string
  /** The sink's name, for kind 'sink'. */
  sink?: string
  /** Topic (mqtt, dead_letter), or the rendered subject, path or topic of a sink. */
  address: string
  payload: Buffer
  qos: 0 | 1 | 2
  retain: boolean
  hops: number
  /** What the sink's destination would be handed, when it is not the payload (a database row). */
  written?: string
}

export class OfflineRunner {
  private readonly engine: Engine
  private outputs: OfflineOutput[] = []
  private readonly republished: Array<{ topic: string, payload: Buffer, qos: 0 | 1 | 2, retain: boolean, hops: number }> = []
  private clock = Date.now()

  constructor (ruleSet: RuleSet, options: { maxHops?: number, deadLetterPrefix?: string, observe?: (event: EngineEvent) => void } = {}) {
    const deadLetterPrefix = options.deadLetterPrefix ?? DEFAULT_DEAD_LETTER_PREFIX
    const sinks = new Map<string, Sink>(ruleSet.sinks.map((d) => {
      const describe = sinkType(d.type)?.describe
      return [d.name, new RecordingSink(d.name, d.type, (delivery) => {
        const output: OfflineOutput = { kind: 'sink', rule: delivery.rule, sink: d.name, address: delivery.address, payload: delivery.payload, qos: delivery.qos, retain: delivery.retain, hops: delivery.hops }
        if (describe !== undefined) output.written = describe(delivery)
        this.outputs.push(output)
      })]
    }))
    this.engine = new Engine(ruleSet, {
      publish: (out, done) => {
        const deadLetter = out.topic.startsWith(deadLetterPrefix + '/')
        this.outputs.push({ kind: deadLetter ? 'dead_letter' : 'mqtt', rule: out.rule, address: out.topic, payload: out.payload, qos: out.qos, retain: out.retain, hops: out.hops })
        // The embedded broker routes every publish again, dead letters included.
        this.republished.push(out)
        done()
      },
      logger: pino({ level: 'silent' }),
      maxHops: options.maxHops ?? DEFAULT_MAX_HOPS,
      deadLetterPrefix,
      observe: options.observe,
      now: () => this.clock
    }, sinks)
  }

  /** Handles one message and every republish it causes; returns the outputs in the order they were made. */
  run (msg: OfflineMessage): OfflineOutput[] {
    this.outputs = []
    this.clock = msg.time ?? Date.now()
    this.engine.handle({ topic: msg.topic, payload: msg.payload, qos: msg.qos, retain: msg.retain, clientId: msg.clientId, hops: 0 })
    while (this.republished.length > 0) {
      const next = this.republished.shift()!
      this.engine.handle({ topic: next.topic, payload: next.payload, qos: next.qos, retain: next.retain, clientId: null, hops: next.hops })
    }
    return this.outputs
  }
}

/** Stands in for a sink: records each delivery, delivered at once. */
class RecordingSink implements Sink {
  private readonly count: SinkCounters = { emitted: 0, queued: 0, delivered: 0, retried: 0, failures: 0, dropped: { queue_full: 0, rejected: 0, shutdown: 0 } }

  constructor (readonly name: string, readonly type: string, private readonly record: (delivery: Delivery) => void) {}

  async start (): Promise<void> {}

  send (delivery: Delivery): void {
    this.count.emitted++
    this.count.queued++
    this.count.delivered++
    this.record(delivery)
  }

  async flush (): Promise<boolean> { return true }
  async close (): Promise<void> {}
  health (): SinkHealth { return { state: 'up', since: 0, depth: 0, capacity: Infinity } }
  counters (): SinkCounters { return { ...this.count, dropped: { ...this.count.dropped } } }
}
