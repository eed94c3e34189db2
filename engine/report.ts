/**
 * What a running service reports about itself: the one snapshot that /metrics, /readyz, the
 * $SYS/signalbox reports and the `stopped` log line are all read from. Types only.
 */
import type { SourceCounters, SourceHealth } from '../adapters/source.js'
import type { AccessCounters } from './access.js'
import type { BrokerStats } from './broker.js'
import type { EngineCounters, RuleCounters } from './metrics.js'
import type { ReloadStats } from './reload.js'
import type { SinkReport } from './sinks.js'

export interface SourceReport {
  kind: string
  counters: SourceCounters
  health: SourceHealth
}

export interface ServiceReport {
  engine: EngineCounters
  rules: Record<string, RuleCounters>
  /** Embedded broker only. */
  broker?: BrokerStats & { clients: number }
  access?: AccessCounters
  /** Embedded broker only: deliveries dropped per subscriber (slow consumers), by client id. */
  clientDrops?: Record<string, number>
  sinks: Record<string, SinkReport>
  sources: Record<string, SourceReport>
  reloads: ReloadStats
}
