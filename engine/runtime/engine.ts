/**
 * Runs a compiled rule set against each message: route, decode once (only the fields the rules read,
 * when they name them), where, set, render, publish.
 * The rule set is one reference, so a message is handled entirely by the set that was current when it arrived.
 */
import type { Delivery, Sink } from '../../adapters/sink.js'
import type { OutMessage, Publish, Settlement } from '../../rules/model/message.js'
import type { CompiledMqttOutput, CompiledOutput, CompiledRule, CompiledSinkOutput } from '../../rules/compile/compile.js'
import { truthy, type Evaluator, type MessageMeta, type RuleData } from '../../rules/logic/logic.js'
import type { RuleSet } from '../../rules/compile/ruleset.js'
import { Slice } from '../../rules/compile/slices.js'
import type { FailureCode } from './errors.js'
import type { Logger } from '../observe/logger.js'
import { DEFAULT_LIMITS } from '../broker/limits.js'
import { describePayload, type InboundMessage } from '../../rules/model/message.js'
import { decodePayload, type DecodedPayload } from './decode.js'
import { createEngineCounters, createRuleCounters, type EngineCounters, type RuleCounters } from './counters.js'
import { MAX_PICKED_FIELDS, PayloadPicker } from './payload-picker.js'
import { Router } from './router.js'

export interface EngineOptions {
  publish: Publish
  logger: Logger
  /** Republishes a message may go through before it is dropped (loops stop here). */
  maxHops: number
  /** Prefix of the dead-letter topics: `<prefix>/<rule>`. */
  deadLetterPrefix: string
  /** Sees every step of every message: `signalbox trace` and `signalbox test` use it. Off in `run`. */
  observe?: (event: EngineEvent) => void
  /** The clock for `meta.receivedAt` (and `{date}` in paths); tests fix it. */
  now?: () => number
  /** Deepest JSON nesting decoded (default: limits' max_json_depth default). */
  maxJsonDepth?: number
  /** Largest payload a rule may emit, as a client may publish (default: limits' max_payload_bytes default). */
  maxPayloadBytes?: number
}

/** One step of handling a message, for an observer. */
export type EngineEvent =
  | { kind: 'message', topic: string, hops: number, rules: CompiledRule[] }
  | { kind: 'rule', rule: CompiledRule, params: Record<string, string> }
  | { kind: 'where', rule: CompiledRule, result: unknown, passed: boolean }
  | { kind: 'set', rule: CompiledRule, payload: Buffer }
  | { kind: 'output', rule: CompiledRule, output: CompiledOutput, address: string, outcome: 'published' | 'sent' | 'hop_limit' }
  | { kind: 'failure', rule: CompiledRule, code: FailureCode, reason: string }

export const DEFAULT_MAX_HOPS = 8
/** A `set` writes JSON: the content type a derived message carries then. */
const JSON_CONTENT_TYPE = 'application/json'
/** The params of a rule without captures: one shared object, not one per message. */
const NO_PARAMS: Readonly<Record<string, string>> = Object.freeze({})
export const DEFAULT_DEAD_LETTER_PREFIX = '$signalbox/dead-letter'

/** Sinks by name: the ones the rule set's outputs send to. */
export type SinkMap = ReadonlyMap<string, Sink>

interface ActiveRuleSet {
  ruleSet: RuleSet
  router: Router<ActiveRule>
  sinks: SinkMap
  /** Decodes just the payload fields the rules read (the rules with payloadFields); none if too many. */
  picker: PayloadPicker | undefined
}

interface ActiveRule {
  rule: CompiledRule
  /** The rule's filter has named captures (kept here: one load fewer per message). */
  captures: boolean
  /** The rule's payload comes from the rule set's picker (decided at swap, not per message). */
  picks: boolean
  counters: RuleCounters
  /** The sink of each output (by index), looked up once per swap; undefined for mqtt outputs or a sink not running. */
  sinks: Array<Sink | undefined>
}

export class Engine {
  private active: ActiveRuleSet
  /** Counters outlive rule-set swaps, keyed by rule name. */
  private readonly ruleCounters = new Map<string, RuleCounters>()
  readonly counters: EngineCounters = createEngineCounters()
  /** Failure classes already logged at warn level: each is logged once per rule, then at debug. */
  private readonly logged = new Set<string>()

  private readonly now: () => number
  private readonly maxJsonDepth: number
  private readonly maxPayloadBytes: number

  constructor (ruleSet: RuleSet, private readonly options: EngineOptions, sinks: SinkMap = new Map()) {
    this.now = options.now ?? Date.now
    this.maxJsonDepth = options.maxJsonDepth ?? DEFAULT_LIMITS.maxJsonDepth
    this.maxPayloadBytes = options.maxPayloadBytes ?? DEFAULT_LIMITS.maxPayloadBytes
    this.active = this.prepare(ruleSet, sinks)
  }

  /** Swaps in a new rule set (and the sinks it sends to) with one reference assignment. */
  swap (ruleSet: RuleSet, sinks: SinkMap = this.active.sinks): void {
    this.active = this.prepare(ruleSet, sinks)
  }

  /**
   * Makes a rule set ready to swap in, in slices (rules/compile/slices.ts): building the router of a large
   * set takes tens of milliseconds, and the running set keeps handling messages meanwhile.
   */
  * prepareInSteps (ruleSet: RuleSet, sinks: SinkMap = this.active.sinks): Generator<undefined, PreparedRuleSet> {
    return { active: yield * this.prepareSteps(ruleSet, sinks) }
  }

  /** Swaps in a set prepareInSteps made ready, with one reference assignment. */
  swapPrepared (prepared: PreparedRuleSet): void {
    this.active = prepared.active
  }

  get ruleSet (): RuleSet {
    return this.active.ruleSet
  }

  /** Whether a rule of the current set matches the topic (the journal keeps only what a rule will handle). */
  handles (topic: string): boolean {
    return this.active.router.match(topic).length > 0
  }

  /** Counters of one rule (kept across rule-set swaps), if it has run in any set. */
  ruleCountersFor (name: string): RuleCounters | undefined {
    return this.ruleCounters.get(name)
  }

  snapshot (): { engine: EngineCounters, rules: Record<string, RuleCounters> } {
    const rules: Record<string, RuleCounters> = {}
    for (const { name } of this.active.ruleSet.rules) rules[name] = { ...this.ruleCounters.get(name)! }
    return { engine: { ...this.counters }, rules }
  }

  /**
   * Handles one message. Never throws: every failure is counted and, per rule, dead-lettered. A
   * logged message's settlement is held while it is handled, and by each output it produces.
   */
  handle (msg: InboundMessage): void {
    const settlement = msg.settlement
    if (settlement === undefined) { this.route(msg); return }
    settlement.hold()
    try {
      this.route(msg)
    } finally {
      settlement.release()
    }
  }

  private route (msg: InboundMessage): void {
    const active = this.active
    this.counters.received++
    const matches = active.router.match(msg.topic)
    const observe = this.options.observe
    if (observe !== undefined) observe({ kind: 'message', topic: msg.topic, hops: msg.hops, rules: matches.map((m) => m.rule) })
    if (matches.length === 0) { this.counters.unmatched++; return }
    // The clock is read once, and only if a rule reads it: Date.now() is a tenth of a rule's cost.
    const meta: MessageMeta = { clientId: msg.clientId, qos: msg.qos, retain: msg.retain, receivedAt: 0, hops: msg.hops }
    let clocked = false
    let levels: string[] | undefined
    // Each at most once per message: the payload whole, and only the fields the rule set reads.
    let decoded: DecodedPayload | undefined
    let picked: DecodedPayload | undefined
    const via = msg.via
    for (let i = 0; i < matches.length; i++) {
      const { rule, counters, sinks, captures, picks } = matches[i]
      if (via !== undefined && !via.includes(rule.pattern.filter)) continue
      counters.matched++
      if (!clocked && (rule.readsClock || observe !== undefined)) { meta.receivedAt = msg.receivedAt ?? this.now(); clocked = true }
      let params = NO_PARAMS
      if (captures) {
        levels ??= msg.topic.split('/')
        params = captureParams(rule, levels)
      }
      if (observe !== undefined) observe({ kind: 'rule', rule, params })
      const data: RuleData = { topic: msg.topic, params, payload: undefined, meta }
      if (rule.needsPayload) {
        const payload = picks
          ? (picked ??= active.picker!.decode(msg.payload))
          : (decoded ??= decodePayload(msg.payload, this.maxJsonDepth))
        if (rule.needsJsonPayload && payload.tooDeep === true) {
          this.fail(rule, counters, msg, 'PAYLOAD_TOO_DEEP', `payload JSON nests deeper than ${this.maxJsonDepth} levels (max_json_depth)`)
          continue
        }
        if (rule.needsJsonPayload && !payload.json) {
          this.fail(rule, counters, msg, 'PAYLOAD_NOT_JSON', 'payload is not JSON, and the rule reads payload fields')
          continue
        }
        data.payload = payload.value
      }
      try {
        this.runRule(rule, counters, msg, data, sinks)
      } catch (err) {
        // A bug of ours, not the message's: count it and keep serving the other rules and messages.
        counters.errors++
        this.options.logger.error({ rule: rule.name, topic: msg.topic, err }, 'internal error while running a rule')
      }
    }
  }

  private runRule (rule: CompiledRule, counters: RuleCounters, msg: InboundMessage, data: RuleData, sinks: Array<Sink | undefined>): void {
    let payload = msg.payload
    try {
      const observe = this.options.observe
      if (rule.where !== undefined) {
        const result = rule.where(data)
        const passed = truthy(result)
        if (observe !== undefined) observe({ kind: 'where', rule, result, passed })
        if (!passed) { counters.filtered++; return }
      }
      counters.passed++
      if (rule.set !== undefined) {
        const json = JSON.stringify(rule.set(data))
        // A string's length never exceeds its UTF-8 size: the first test spares copying a huge one.
        if (json.length > this.maxPayloadBytes || Buffer.byteLength(json) > this.maxPayloadBytes) {
          counters.dropped += rule.outputs.length
          this.fail(rule, counters, msg, 'PAYLOAD_TOO_LARGE', `the output payload of ${Buffer.byteLength(json)} bytes is over max_payload_bytes (${this.maxPayloadBytes})`)
          return
        }
        payload = Buffer.from(json)
        if (observe !== undefined) observe({ kind: 'set', rule, payload })
      }
    } catch (err) {
      this.fail(rule, counters, msg, 'EXPRESSION_ERROR', `expression failed: ${(err as Error).message}`)
      return
    }
    for (let i = 0; i < rule.outputs.length; i++) {
      const output = rule.outputs[i]
      if (output.kind === 'mqtt') this.republish(rule, counters, msg, data, output, payload)
      else this.toSink(rule, counters, msg, data, output, payload, sinks[i], i)
    }
  }

  /** Hands an output to its sink, which queues it and counts its delivery or drop from here on. */
  private toSink (rule: CompiledRule, counters: RuleCounters, msg: InboundMessage, data: RuleData, output: CompiledSinkOutput, payload: Buffer, sink: Sink | undefined, index: number): void {
    const address = output.render(data)
    if (typeof address !== 'string') {
      counters.dropped++
      this.fail(rule, counters, msg, 'TOPIC_REFUSED', `output to sink '${output.sink}' (${output.template}) refused: ${address.refused}`)
      return
    }
    if (sink === undefined) {
      counters.dropped++
      this.fail(rule, counters, msg, 'PUBLISH_FAILED', `sink '${output.sink}' is not running`)
      return
    }
    let values: Record<string, unknown> | undefined
    if (output.templates !== undefined) {
      values = {}
      for (const [name, render] of output.templates) {
        const rendered = render(data)
        if ('refused' in rendered) {
          counters.dropped++
          this.fail(rule, counters, msg, 'TOPIC_REFUSED', `output to sink '${output.sink}' (${name}) refused: ${rendered.refused}`)
          return
        }
        values[name] = rendered.value
      }
    }
    if (output.expressions !== undefined) {
      try {
        values = { ...values, ...evaluateAll(output.expressions, data) }
      } catch (err) {
        counters.dropped++
        this.fail(rule, counters, msg, 'EXPRESSION_ERROR', `output to sink '${output.sink}': expression failed: ${(err as Error).message}`)
        return
      }
    }
    counters.published++
    if (this.options.observe !== undefined) this.options.observe({ kind: 'output', rule, output, address, outcome: 'sent' })
    const settlement = msg.settlement
    settlement?.hold()
    if (settlement?.replayed === true) this.counters.replayedOutputs++
    // The message's id, the hop and the output name this output the same way on every replay.
    const id = settlement === undefined ? undefined : `${settlement.id}/${msg.hops}/${rule.name}/${index}`
    sink.send({ rule: rule.name, topic: msg.topic, address, payload, qos: output.qos ?? msg.qos, retain: output.retain, hops: msg.hops + 1, time: data.meta.receivedAt, settlement, id, params: data.params, output: output.options, values })
  }

  private republish (rule: CompiledRule, counters: RuleCounters, msg: InboundMessage, data: RuleData, output: CompiledMqttOutput, payload: Buffer): void {
    const topic = output.render(data)
    if (typeof topic !== 'string') {
      counters.dropped++
      this.fail(rule, counters, msg, 'TOPIC_REFUSED', `output '${output.template}' refused: ${topic.refused}`)
      return
    }
    const hops = msg.hops + 1
    if (hops > this.options.maxHops) {
      counters.dropped++
      this.counters.hopLimit++
      this.warnOnce(rule, 'HOP_LIMIT', `message dropped after ${this.options.maxHops} hops (max_hops); rules may be looping`, { topic })
      if (this.options.observe !== undefined) this.options.observe({ kind: 'output', rule, output, address: topic, outcome: 'hop_limit' })
      return
    }
    if (this.options.observe !== undefined) this.options.observe({ kind: 'output', rule, output, address: topic, outcome: 'published' })
    const out: OutMessage = { topic, payload, qos: output.qos ?? msg.qos, retain: output.retain, hops, rule: rule.name }
    if (msg.properties !== undefined) out.properties = rule.set === undefined || msg.properties.contentType === undefined ? msg.properties : { ...msg.properties, contentType: JSON_CONTENT_TYPE }
    const settlement = msg.settlement
    if (settlement !== undefined) { settlement.hold(); out.settlement = settlement }
    const publish = msg.publish ?? this.options.publish
    publish(out, (error) => {
      settlement?.release()
      if (error === undefined) {
        counters.published++
        if (settlement?.replayed === true) this.counters.replayedOutputs++
        return
      }
      counters.dropped++
      this.fail(rule, counters, msg, 'PUBLISH_FAILED', `broker refused the publish to '${topic}': ${error.message}`)
    })
  }

  /**
   * A sink's destination refused an output for good: a dead letter with the sink's reason (the
   * rule's on_error: drop, a rule no longer loaded, or max_hops keep it from being published).
   */
  sinkRejected (sink: string, delivery: Delivery, reason: string): void {
    const rule = this.active.ruleSet.rules.find((r) => r.name === delivery.rule)
    if (rule === undefined || rule.onError === 'drop') return
    // The delivery's hops already count the rule that made it.
    this.deadLetter(rule, 'SINK_REJECTED', `sink '${sink}': ${reason}`, { topic: delivery.topic, clientId: null, payload: delivery.payload, qos: delivery.qos }, delivery.hops, this.options.publish, undefined)
  }

  /** Counts a failure and, unless the rule says on_error: drop, publishes a dead letter. */
  private fail (rule: CompiledRule, counters: RuleCounters, msg: InboundMessage, code: FailureCode, reason: string): void {
    counters.errors++
    this.warnOnce(rule, code, reason, { topic: msg.topic })
    if (this.options.observe !== undefined) this.options.observe({ kind: 'failure', rule, code, reason })
    if (rule.onError === 'drop') return
    this.deadLetter(rule, code, reason, msg, msg.hops + 1, msg.publish ?? this.options.publish, msg.settlement)
  }

  /** Publishes a dead letter for what `origin` was (topic, client, payload), unless it has gone max_hops. */
  private deadLetter (rule: CompiledRule, code: FailureCode, reason: string, origin: { topic: string, clientId: string | null, payload: Buffer, qos: 0 | 1 | 2 }, hops: number, publish: Publish, settlement: Settlement | undefined): void {
    if (hops > this.options.maxHops) { this.counters.hopLimit++; return }
    const letter = {
      rule: rule.name,
      code,
      reason,
      source: `${rule.source.file}:${rule.source.line}`,
      topic: origin.topic,
      clientId: origin.clientId,
      ...describePayload(origin.payload)
    }
    const out: OutMessage = { topic: `${this.options.deadLetterPrefix}/${rule.name}`, payload: Buffer.from(JSON.stringify(letter)), qos: origin.qos, retain: false, hops, rule: rule.name }
    if (settlement !== undefined) { settlement.hold(); out.settlement = settlement }
    publish(out, (error) => {
      settlement?.release()
      if (error === undefined) { this.counters.deadLettered++; return }
      this.options.logger.error({ rule: rule.name, err: error.message }, 'dead letter could not be published')
    })
  }

  private warnOnce (rule: CompiledRule, code: string, reason: string, context: Record<string, unknown>): void {
    const key = `${rule.name}\u0000${code}`
    const level = this.logged.has(key) ? 'debug' : 'warn'
    this.logged.add(key)
    this.options.logger[level]({ rule: rule.name, code, ...context }, reason)
  }

  private prepare (ruleSet: RuleSet, sinks: SinkMap): ActiveRuleSet {
    const steps = this.prepareSteps(ruleSet, sinks)
    for (;;) {
      const step = steps.next()
      if (step.done === true) return step.value
    }
  }

  private * prepareSteps (ruleSet: RuleSet, sinks: SinkMap): Generator<undefined, ActiveRuleSet> {
    // The fields the picker builds: every field a picking rule reads (rules read few, and the same ones).
    const fields: string[] = []
    for (const rule of ruleSet.rules) {
      const read = rule.needsPayload && fields.length <= MAX_PICKED_FIELDS ? rule.payloadFields : undefined
      if (read !== undefined) for (let i = 0; i < read.length; i++) if (!fields.includes(read[i])) fields.push(read[i])
    }
    const picker = PayloadPicker.for(fields, this.maxJsonDepth)
    const router = new Router<ActiveRule>()
    const slice = new Slice()
    for (const rule of ruleSet.rules) {
      if (slice.due) { yield; slice.restart() }
      let counters = this.ruleCounters.get(rule.name)
      if (counters === undefined) { counters = createRuleCounters(); this.ruleCounters.set(rule.name, counters) }
      router.add(rule.pattern.filter, {
        rule,
        captures: rule.pattern.captures.length > 0,
        picks: picker !== undefined && rule.payloadFields !== undefined,
        counters,
        sinks: rule.outputs.map((o) => o.kind === 'sink' ? sinks.get(o.sink) : undefined)
      })
    }
    return { ruleSet, router, sinks, picker }
  }
}

/** A rule set ready to swap in: opaque outside the engine. */
export interface PreparedRuleSet {
  readonly active: ActiveRuleSet
}

/** An output's expression options, evaluated on the rule's data. */
function evaluateAll (expressions: ReadonlyArray<readonly [string, Evaluator]>, data: RuleData): Record<string, unknown> {
  const values: Record<string, unknown> = {}
  for (const [name, evaluate] of expressions) values[name] = evaluate(data)
  return values
}

function captureParams (rule: CompiledRule, levels: string[]): Record<string, string> {
  const params: Record<string, string> = {}
  for (const c of rule.pattern.captures) {
    params[c.name] = c.multi ? levels.slice(c.level).join('/') : levels[c.level]
  }
  return params
}
