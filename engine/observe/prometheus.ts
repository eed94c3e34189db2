/**
 * Prometheus metrics (prom-client). The engine's own counters are plain numbers bumped on the hot
 * path; this registry reads them only when scraped, so metrics cost nothing per message except the
 * processing-time histogram.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { ServiceReport } from './report.js'

export interface Metrics {
  registry: Registry
  /** The metrics in the text format, from a fresh report. */
  scrape: () => Promise<string>
  /** Time one message spent in the engine: routing, where, set and handing every output on. */
  observeProcessing: (seconds: number) => void
  /** Time from a message's arrival until a sink delivered what a rule made of it (end to end). */
  observeDelivery: (sink: string, seconds: number) => void
}

/** Buckets from 1 ms to a minute: a sink's delivery spans a network round trip, or a wait for a server to come back. */
const DELIVERY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

/** Buckets from 5 µs to 100 ms: a rule takes microseconds; the tail is what matters. */
const PROCESSING_BUCKETS = [0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1]

type Collect<L extends string> = (set: (labels: Partial<Record<L, string>>, value: number) => void, report: ServiceReport) => void

export function createMetrics (report: () => ServiceReport): Metrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'signalbox_' })
  // One report per scrape, shared by every metric's collect; scrape() starts a new one.
  let cached: ServiceReport | undefined
  const current = (): ServiceReport => {
    cached ??= report()
    return cached
  }

  const counter = <L extends string>(name: string, help: string, labelNames: L[], fill: Collect<L>): void => {
    // eslint-disable-next-line no-new -- registered with the registry, which owns it
    new Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      collect () {
        this.reset()
        fill((labels, value) => { this.inc(labels as never, value) }, current())
      }
    })
  }
  const gauge = <L extends string>(name: string, help: string, labelNames: L[], fill: Collect<L>): void => {
    // eslint-disable-next-line no-new -- registered with the registry, which owns it
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect () {
        this.reset()
        fill((labels, value) => { this.set(labels as never, value) }, current())
      }
    })
  }

  const ruleCounter = (noun: keyof ServiceReport['rules'][string], help: string): void => {
    counter(`signalbox_rule_${noun}_total`, help, ['rule'], (set, r) => {
      for (const [rule, c] of Object.entries(r.rules)) set({ rule }, c[noun])
    })
  }
  ruleCounter('matched', 'Messages whose topic matched the rule\'s filter.')
  ruleCounter('passed', 'Matched messages that passed the rule\'s where.')
  ruleCounter('filtered', 'Matched messages the rule\'s where rejected.')
  ruleCounter('errors', 'Messages the rule could not handle (not JSON, expression error, refused address); each is dead-lettered unless on_error: drop.')
  ruleCounter('published', 'Outputs published on the broker or handed to a sink.')
  ruleCounter('dropped', 'Outputs not published: refused address, hop limit, broker refusal, sink not running.')

  counter('signalbox_messages_received_total', 'Messages the engine received.', [], (set, r) => { set({}, r.engine.received) })
  counter('signalbox_messages_unmatched_total', 'Received messages no rule matched.', [], (set, r) => { set({}, r.engine.unmatched) })
  counter('signalbox_dead_letters_total', 'Dead letters published.', [], (set, r) => { set({}, r.engine.deadLettered) })
  counter('signalbox_replayed_outputs_total', 'Outputs of messages the write-ahead log handed back after a restart (also in signalbox_rule_published_total).', [], (set, r) => { set({}, r.engine.replayedOutputs) })
  counter('signalbox_hop_limit_total', 'Outputs dropped at max_hops (rules that loop).', [], (set, r) => { set({}, r.engine.hopLimit) })

  const sinkCounter = (noun: 'queued' | 'delivered' | 'retried' | 'failures', help: string): void => {
    counter(`signalbox_sink_${noun}_total`, help, ['sink', 'type'], (set, r) => {
      for (const [sink, s] of Object.entries(r.sinks)) set({ sink, type: s.type }, s.counters[noun])
    })
  }
  sinkCounter('queued', 'Messages the sink took into its queue.')
  sinkCounter('delivered', 'Messages the sink delivered (acknowledged where the transport acknowledges).')
  sinkCounter('retried', 'Messages sent again after a failed attempt.')
  sinkCounter('failures', 'Failed delivery attempts.')
  counter('signalbox_sink_dropped_total', 'Messages the sink dropped, by reason (queue_full, rejected, shutdown).', ['sink', 'type', 'reason'], (set, r) => {
    for (const [sink, s] of Object.entries(r.sinks)) {
      for (const [reason, n] of Object.entries(s.counters.dropped)) set({ sink, type: s.type, reason }, n)
    }
  })
  counter('signalbox_sink_fields_dropped_total', 'Fields left out of delivered messages because the destination has no place for them (a PostgreSQL table without the column, schema: manual).', ['sink', 'type'], (set, r) => {
    for (const [sink, s] of Object.entries(r.sinks)) if (s.counters.fieldsDropped !== undefined) set({ sink, type: s.type }, s.counters.fieldsDropped)
  })
  gauge('signalbox_sink_queue_depth', 'Messages waiting in the sink\'s queue.', ['sink', 'type'], (set, r) => {
    for (const [sink, s] of Object.entries(r.sinks)) set({ sink, type: s.type }, s.health.depth)
  })
  gauge('signalbox_sink_queue_capacity', 'Size of the sink\'s queue (queue_size).', ['sink', 'type'], (set, r) => {
    for (const [sink, s] of Object.entries(r.sinks)) set({ sink, type: s.type }, s.health.capacity)
  })
  gauge('signalbox_sink_up', '1 while the sink is connected (or its file open), else 0.', ['sink', 'type'], (set, r) => {
    for (const [sink, s] of Object.entries(r.sinks)) set({ sink, type: s.type }, s.health.state === 'up' ? 1 : 0)
  })

  gauge('signalbox_wal_bytes', 'Bytes in the write-ahead log\'s segments.', [], (set, r) => { if (r.journal !== undefined) set({}, r.journal.bytes) })
  gauge('signalbox_wal_unsettled', 'Logged messages whose outputs are not all delivered or counted yet.', [], (set, r) => { if (r.journal !== undefined) set({}, r.journal.unsettled) })
  gauge('signalbox_wal_oldest_unsettled_seconds', 'Age of the oldest unsettled logged message (0 when none).', [], (set, r) => {
    if (r.journal !== undefined) set({}, r.journal.oldestUnsettledAt === undefined ? 0 : Math.max(0, (Date.now() - r.journal.oldestUnsettledAt) / 1000))
  })
  counter('signalbox_wal_appended_total', 'Messages written to the write-ahead log before their ack.', [], (set, r) => { if (r.journal !== undefined) set({}, r.journal.appended) })
  counter('signalbox_wal_writes_total', 'Batches written to the write-ahead log (one write each, and with durability power one fdatasync).', [], (set, r) => { if (r.journal !== undefined) set({}, r.journal.writes) })
  counter('signalbox_wal_replayed_total', 'Unsettled messages handled again at start.', [], (set, r) => { if (r.journal !== undefined) set({}, r.journal.replayed) })
  gauge('signalbox_wal_acks_held', 'Publishes whose ack is held because the write-ahead log is full (wal.max_bytes).', [], (set, r) => { if (r.journal !== undefined) set({}, r.journal.waitingForRoom) })
  counter('signalbox_wal_acks_held_total', 'Publishes whose ack was held for want of room in the write-ahead log.', [], (set, r) => { if (r.journal !== undefined) set({}, r.journal.heldForRoom) })
  counter('signalbox_wal_torn_records_total', 'Records found cut short or corrupt when the log was opened (skipped).', [], (set, r) => { if (r.journal !== undefined) set({}, r.journal.tornRecords) })

  gauge('signalbox_broker_clients', 'Clients connected to the embedded broker.', [], (set, r) => { if (r.broker !== undefined) set({}, r.broker.clients) })
  counter('signalbox_broker_messages_in_total', 'Publishes the embedded broker took from clients.', [], (set, r) => { if (r.broker !== undefined) set({}, r.broker.messagesIn) })
  counter('signalbox_broker_messages_out_total', 'Messages the embedded broker delivered to subscribers.', [], (set, r) => { if (r.broker !== undefined) set({}, r.broker.messagesOut) })
  counter('signalbox_broker_deliveries_dropped_total', 'Copies not delivered because the subscriber was not reading (max_queued_messages, max_queued_bytes).', [], (set, r) => { if (r.broker !== undefined) set({}, r.broker.deliveriesDropped) })
  counter('signalbox_client_dropped_total', 'Copies not delivered to a subscriber that was not reading, by its client id (the first 1,000 ids; the rest under "(other)").', ['client_id'], (set, r) => {
    for (const [clientId, n] of Object.entries(r.clientDrops ?? {})) set({ client_id: clientId }, n)
  })
  counter('signalbox_broker_refused_total', 'Connections and messages the embedded broker refused, by reason.', ['reason'], (set, r) => {
    if (r.access === undefined) return
    for (const [reason, n] of Object.entries(r.access)) set({ reason: snakeCase(reason) }, n)
  })

  counter('signalbox_source_received_total', 'Messages taken from an external source.', ['source'], (set, r) => {
    for (const [source, s] of Object.entries(r.sources)) set({ source }, s.counters.received)
  })
  counter('signalbox_source_published_total', 'Derived messages sent back to an external source.', ['source'], (set, r) => {
    for (const [source, s] of Object.entries(r.sources)) set({ source }, s.counters.published)
  })
  counter('signalbox_source_publish_failed_total', 'Derived messages an external source could not take.', ['source'], (set, r) => {
    for (const [source, s] of Object.entries(r.sources)) set({ source }, s.counters.publishFailed)
  })
  gauge('signalbox_source_up', '1 while connected to the external source, else 0.', ['source'], (set, r) => {
    for (const [source, s] of Object.entries(r.sources)) set({ source }, s.health.state === 'up' ? 1 : 0)
  })

  counter('signalbox_reloads_total', 'Rule reloads, by result.', ['result'], (set, r) => {
    set({ result: 'success' }, r.reloads.successes)
    set({ result: 'failure' }, r.reloads.failures)
  })
  gauge('signalbox_rules', 'Rules loaded.', [], (set, r) => { set({}, Object.keys(r.rules).length) })

  const processing = new Histogram({
    name: 'signalbox_message_processing_seconds',
    help: 'Time from the broker (or source) handing a message to the engine until every rule matched and every output was handed on.',
    buckets: PROCESSING_BUCKETS,
    registers: [registry]
  })
  const delivery = new Histogram({
    name: 'signalbox_sink_delivery_seconds',
    help: 'End to end through a sink: from the message\'s arrival until the sink delivered the rule\'s output (acknowledged where the transport acknowledges).',
    labelNames: ['sink'],
    buckets: DELIVERY_BUCKETS,
    registers: [registry]
  })
  return {
    registry,
    scrape: async () => {
      cached = undefined
      return await registry.metrics()
    },
    observeProcessing: (seconds) => { processing.observe(seconds) },
    observeDelivery: (sink, seconds) => { delivery.observe({ sink }, seconds) }
  }
}

function snakeCase (name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)
}
