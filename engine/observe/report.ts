/**
 * What a running service reports about itself: the one snapshot that /metrics, /readyz, the
 * $SYS/signalbox reports and the `stopped` log line are all read from. Types only.
 */
import type { SourceCounters, SourceHealth } from '../../adapters/sources/source.js'
import type { AccessCounters } from '../broker/access.js'
import type { BrokerStats } from '../broker/broker.js'
import type { EngineCounters, RuleCounters } from '../runtime/counters.js'
import type { ReloadStats } from '../service/reload.js'
import type { SinkReport } from '../service/sink-pool.js'
import type { JournalStats } from '../durability/journal.js'

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
  /** The write-ahead log, when durability is on. */
  journal?: JournalStats
}
