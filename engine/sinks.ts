/** Builds, starts and drains the sinks of a rule set. */
import { sinkType } from '../adapters/registry.js'
import type { Sink, SinkCounters, SinkDefinition, SinkHealth } from '../adapters/sink.js'
import type { Logger } from './logger.js'

/** Creates one sink per definition (no I/O). The definitions were validated when the rules loaded. */
export function createSinks (definitions: SinkDefinition[], logger: Logger): Map<string, Sink> {
  const sinks = new Map<string, Sink>()
  for (const definition of definitions) {
    const type = sinkType(definition.type)
    if (type === undefined) throw new Error(`unknown sink type '${definition.type}'`)
    sinks.set(definition.name, type.create(definition, { logger }))
  }
  return sinks
}

/** Starts every sink; a sink that cannot start (an unreadable TLS file) stops the others and throws. */
export async function startSinks (sinks: ReadonlyMap<string, Sink>): Promise<void> {
  for (const [name, sink] of sinks) {
    try {
      await sink.start()
    } catch (err) {
      await closeSinks(sinks, 0)
      throw new Error(`sink '${name}': ${(err as Error).message}`, { cause: err })
    }
  }
}

/** Drains every sink at once, each for up to `timeoutMs`; what is left is dropped and counted. */
export async function closeSinks (sinks: ReadonlyMap<string, Sink>, timeoutMs: number): Promise<void> {
  await Promise.all([...sinks.values()].map((s) => s.close(timeoutMs)))
}

export interface SinkReport {
  type: string
  counters: SinkCounters
  health: SinkHealth
}

export function reportSinks (sinks: ReadonlyMap<string, Sink>): Record<string, SinkReport> {
  const out: Record<string, SinkReport> = {}
  for (const [name, sink] of sinks) out[name] = { type: sink.type, counters: sink.counters(), health: sink.health() }
  return out
}
