/**
 * The running sinks of a rule set. A reload hands the pool the new definitions: a sink whose
 * definition did not change keeps its connection and queue; a new or changed one is started; a
 * removed or replaced one is drained and closed once the new rule set is in place.
 */
import { sinkType } from '../../adapters/registry.js'
import type { Sink, SinkContext, SinkCounters, SinkHealth } from '../../adapters/sink.js'
import type { SinkDefinition } from '../../rules/model/sink-spec.js'
import type { Logger } from '../observe/logger.js'

export interface SinkReport {
  type: string
  counters: SinkCounters
  health: SinkHealth
}

/** What applying new definitions produced: the map to swap in, and what to retire after the swap. */
export interface SinkPlan {
  sinks: Map<string, Sink>
  started: string[]
  kept: string[]
  retired: Sink[]
  /** Definition fingerprints by sink name, for the next diff. */
  fingerprints: Map<string, string>
}

export class SinkPool {
  private running = new Map<string, { sink: Sink, fingerprint: string }>()

  constructor (private readonly logger: Logger, private readonly observeDelivery?: SinkContext['observeDelivery'], private readonly deadLetter?: SinkContext['deadLetter']) {}

  get sinks (): Map<string, Sink> {
    return new Map([...this.running].map(([name, r]) => [name, r.sink]))
  }

  /**
   * Starts the sinks that are new or changed and keeps the rest; if one cannot start, the ones it
   * started are closed and it throws. Nothing is retired yet: call `commit(plan)` after the swap.
   */
  async prepare (definitions: SinkDefinition[]): Promise<SinkPlan> {
    const plan: SinkPlan = { sinks: new Map(), started: [], kept: [], retired: [], fingerprints: new Map() }
    const fresh: Array<{ name: string, sink: Sink }> = []
    try {
      for (const definition of definitions) {
        const fingerprint = fingerprintOf(definition)
        plan.fingerprints.set(definition.name, fingerprint)
        const current = this.running.get(definition.name)
        if (current !== undefined && current.fingerprint === fingerprint) {
          plan.sinks.set(definition.name, current.sink)
          plan.kept.push(definition.name)
          continue
        }
        const type = sinkType(definition.type)
        if (type === undefined) throw new Error(`unknown sink type '${definition.type}'`)
        const sink = type.create(definition, { logger: this.logger, observeDelivery: this.observeDelivery, deadLetter: this.deadLetter })
        fresh.push({ name: definition.name, sink })
        try {
          await sink.start()
        } catch (err) {
          throw new Error(`sink '${definition.name}': ${(err as Error).message}`, { cause: err })
        }
        plan.sinks.set(definition.name, sink)
        plan.started.push(definition.name)
      }
    } catch (err) {
      await Promise.all(fresh.map(async ({ sink }) => await sink.close(0)))
      throw err
    }
    for (const [name, r] of this.running) {
      if (plan.sinks.get(name) !== r.sink) plan.retired.push(r.sink)
    }
    return plan
  }

  /** Makes the plan the running set and drains the retired sinks (in the background, up to `drainMs`). */
  commit (plan: SinkPlan, drainMs: number): Promise<void> {
    this.running = new Map([...plan.sinks].map(([name, sink]) => [name, { sink, fingerprint: plan.fingerprints.get(name)! }]))
    return Promise.all(plan.retired.map(async (sink) => {
      await sink.close(drainMs)
      this.logger.info({ sink: sink.name, counters: sink.counters() }, 'sink retired')
    })).then(() => {})
  }

  /** Drains every running sink at once, each for up to `drainMs`; what is left is dropped and counted. */
  async closeAll (drainMs: number): Promise<void> {
    await Promise.all([...this.running.values()].map(async (r) => await r.sink.close(drainMs)))
  }

  report (): Record<string, SinkReport> {
    const out: Record<string, SinkReport> = {}
    for (const [name, { sink }] of this.running) out[name] = { type: sink.type, counters: sink.counters(), health: sink.health() }
    return out
  }
}

/** Identity of a definition for diffing: same type, options (any key order) and base directory. */
function fingerprintOf (d: SinkDefinition): string {
  return stableJson({ type: d.type, options: d.options, baseDir: d.baseDir })
}

function stableJson (value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`
  }
  return JSON.stringify(value)
}
