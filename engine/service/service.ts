/**
 * `signalbox run` as one object: sinks, engine, embedded broker and/or external sources, hot
 * reload, the file watchers and the monitoring endpoint, started in that order and stopped inputs
 * first (nothing new arrives while the sinks drain).
 */
import type { Sink } from '../../adapters/sink.js'
import type { RuleSet } from '../../rules/compile/ruleset.js'
import type { SourceCache } from '../../rules/source/source-cache.js'
import { performance } from 'node:perf_hooks'
import { createSource } from '../../adapters/sources/sources.js'
import type { Source } from '../../adapters/sources/source.js'
import { startBroker, type EmbeddedBroker } from '../broker/broker.js'
import type { RunSettings } from './config.js'
import { Engine } from '../runtime/engine.js'
import { causedByTheSystem, SinkStartError, StartupError, UsageError } from '../runtime/errors.js'
import { startHttp, type HttpEndpoint } from '../observe/http.js'
import type { InboundMessage } from '../../rules/model/message.js'
import type { ServiceReport } from '../observe/report.js'
import { createMetrics, type Metrics } from '../observe/prometheus.js'
import { readiness, type Readiness } from '../observe/readiness.js'
import { startSysReports } from '../observe/sys-reports.js'
import { formatProblem } from '../../rules/check/problems.js'
import type { AccessPolicy } from '../broker/access.js'
import { isLoopback, type ListenerSettings } from '../broker/listeners.js'
import { UserStore } from '../broker/users.js'
import type { Logger } from '../observe/logger.js'
import { Reloader } from './reload.js'
import { MessageJournal, queuesCrowded } from '../durability/journal.js'
import { DurablePersistence } from '../durability/broker-state.js'
import { SinkPool } from './sink-pool.js'
import { isRulesFile, watchPaths, type Watcher } from './watch.js'

export interface Service {
  /** The embedded broker; undefined when every message comes from external sources. */
  broker: EmbeddedBroker | undefined
  /** External sources (--source), in the order given. */
  sources: Source[]
  engine: Engine
  reloader: Reloader
  /** The monitoring endpoint, with --http. */
  http: HttpEndpoint | undefined
  /** The running sinks, by name (changes with reloads). */
  sinks: () => Map<string, Sink>
  /** Counters of the engine, every rule, every running sink and source, the broker and reloads. */
  report: () => ServiceReport
  readiness: () => Readiness
  /** Closes the broker and sources, stops watching, drains the sinks for up to drainTimeoutMs. */
  stop: () => Promise<void>
}

export async function startService (settings: RunSettings, ruleSet: RuleSet, logger: Logger, options: { watch: boolean, sourceCache?: SourceCache }): Promise<Service> {
  // Made before anything starts, so every message is timed; it reads the report only when scraped.
  const metrics: Metrics | undefined = settings.http === undefined ? undefined : createMetrics(() => report())
  // A sink's refusals become dead letters through the engine, which is made once the sinks have started.
  const late: { engine?: Engine } = {}
  const pool = new SinkPool(logger, metrics?.observeDelivery, (sink, delivery, reason) => late.engine?.sinkRejected(sink, delivery, reason))
  let plan
  try {
    plan = await pool.prepare(ruleSet.sinks)
  } catch (err) {
    // An unreadable file or a refused address is the user's to fix; anything else is a bug, with its stack.
    if (!causedByTheSystem(err)) throw err
    throw new SinkStartError(`cannot start ${(err as Error).message}`, { cause: err })
  }
  await pool.commit(plan, 0)
  // The engine publishes through the broker, and the broker feeds the engine: the holder breaks the cycle.
  const holder: { broker?: EmbeddedBroker } = {}
  const engine = new Engine(ruleSet, {
    publish: (out, done) => { if (holder.broker === undefined) done(new Error('no embedded broker (messages come from sources)')); else holder.broker.publish(out, done) },
    logger,
    maxHops: settings.maxHops,
    deadLetterPrefix: settings.deadLetterPrefix,
    maxJsonDepth: settings.limits.maxJsonDepth,
    maxPayloadBytes: settings.limits.maxPayloadBytes
  }, plan.sinks)
  late.engine = engine
  const onMessage = (msg: InboundMessage): void => {
    if (metrics === undefined) { engine.handle(msg); return }
    const started = performance.now()
    engine.handle(msg)
    metrics.observeProcessing((performance.now() - started) / 1000)
  }

  let broker: EmbeddedBroker | undefined
  let journal: MessageJournal | undefined
  let users: UserStore | undefined
  const sources: Source[] = []
  let http: HttpEndpoint | undefined
  const closeStarted = async (): Promise<void> => {
    await http?.close()
    await Promise.all(sources.map(async (s) => await s.close()))
    await broker?.close()
    await pool.closeAll(0)
    await journal?.close()
  }
  try {
    if (settings.embedded) {
      users = loadUsers(settings.usersFile)
      const access: AccessPolicy = { users, allowAnonymous: settings.allowAnonymous ?? users === undefined, acl: settings.acl, limits: settings.limits }
      if (settings.durability !== 'none') journal = await openJournal(settings, logger)
      // Retained messages, sessions and QoS 2 state on disk too (in memory with durability none).
      const persistence = settings.durability === 'none' ? undefined : new DurablePersistence({ dataDir: settings.dataDir, sync: settings.durability, logger })
      broker = await startBroker({ listeners: safeListeners(settings, users, logger), onMessage, access, logger, journal: journal?.journalFor((topic) => engine.handles(topic)), persistence })
      holder.broker = broker
      // What the log kept unsettled goes through the rules again before any new publish is acknowledged.
      await journal?.replay(onMessage, () => queuesCrowded([...pool.sinks.values()].map((s) => s.health())))
    }
    for (const sourceSettings of settings.sources) {
      const source = createSource(sourceSettings, { logger, onMessage })
      sources.push(source)
      await source.start()
      await source.follow(filtersOf(ruleSet))
    }
  } catch (err) {
    await closeStarted()
    if (err instanceof StartupError || !causedByTheSystem(err)) throw err
    throw new UsageError((err as Error).message, { cause: err, code: 'SOURCE_START' })
  }
  const reloader = new Reloader({
    paths: settings.rules,
    engine,
    pool,
    logger,
    drainTimeoutMs: settings.drainTimeoutMs,
    cache: options.sourceCache,
    onSwap: (next) => {
      // Worked out only for sources to follow (10,000 rules' filters take milliseconds).
      if (sources.length === 0) return
      const filters = filtersOf(next)
      for (const source of sources) source.follow(filters).catch(() => {})
    }
  })
  let stopping: Promise<void> | undefined
  /** With `withRules: false`, the rules' counters are left out (the $SYS reports read them live, 100,000 copies are not free). */
  const report = (withRules = true): ServiceReport => {
    const r: ServiceReport = {
      ...(withRules ? engine.snapshot() : { engine: { ...engine.counters }, rules: {} }),
      sinks: pool.report(),
      sources: Object.fromEntries(sources.map((s) => [s.name, { kind: s.kind, counters: s.counters(), health: s.health() }])),
      reloads: { ...reloader.stats }
    }
    if (journal !== undefined) r.journal = journal.snapshot()
    if (broker !== undefined) {
      r.broker = { clients: broker.aedes.connectedClients, ...broker.stats }
      r.access = { ...broker.access.counters }
      r.clientDrops = Object.fromEntries(broker.droppedByClient)
    }
    return r
  }
  const ready = (): Readiness => readiness(report(), { stopping: stopping !== undefined, graceMs: settings.readyGraceMs, now: Date.now() })
  if (settings.http !== undefined && metrics !== undefined) {
    try {
      http = await startHttp(settings.http.host, settings.http.port, { scrape: metrics.scrape, contentType: metrics.registry.contentType, readiness: ready, logger })
    } catch (err) {
      await closeStarted()
      throw new UsageError(`cannot serve --http on ${settings.http.host}:${settings.http.port}: ${(err as Error).message}`, { cause: err, code: 'HTTP_START' })
    }
    logger.info({ url: `http://${hostForUrl(http.host)}:${http.port}`, endpoints: ['/metrics', '/healthz', '/readyz'] }, 'monitoring endpoint listening')
  }
  const sysReports = broker !== undefined && settings.sysIntervalS > 0
    ? startSysReports({ report: () => report(false), ruleNames: ruleNamesOf(engine), counters: (rule) => engine.ruleCountersFor(rule) }, (topic, payload) => broker?.publishReport(topic, payload), settings.sysIntervalS)
    : undefined

  let watcher: Watcher | undefined
  if (options.watch) {
    watcher = watchPaths(settings.rules, isRulesFile, (changed) => { reloader.reload(`changed: ${changed.join(', ')}`).catch(() => {}) }, { logger })
    await watcher.ready
  }
  let usersWatcher: Watcher | undefined
  if (users !== undefined && options.watch) {
    const store = users
    usersWatcher = watchPaths([store.file], () => true, () => {
      const { problems, revoked } = store.reload()
      if (problems.length === 0) {
        const disconnected = broker === undefined ? 0 : broker.access.revoke(broker.clients(), revoked)
        logger.info({ file: store.file, users: store.size, revoked: revoked.length, disconnected }, 'users reloaded')
      } else logger.error({ file: store.file, problems: problems.map((p) => formatProblem(p).split('\n')[0]) }, 'users file not reloaded, the previous users stay')
    }, { logger })
    await usersWatcher.ready
  }
  const onHangup = (): void => { reloader.reload('SIGHUP').catch(() => {}) }
  process.on('SIGHUP', onHangup)

  return {
    broker,
    sources,
    engine,
    reloader,
    http,
    sinks: () => pool.sinks,
    report,
    readiness: ready,
    stop: () => {
      stopping ??= (async () => {
        process.off('SIGHUP', onHangup)
        sysReports?.stop()
        await watcher?.close()
        await usersWatcher?.close()
        // Inputs first (nothing new arrives), then what is in flight, then the sinks drain.
        await Promise.all(sources.map(async (s) => await s.close()))
        await broker?.close()
        await reloader.settle()
        // What the sinks cannot deliver before the drain times out stays in the log for the next start.
        if (journal !== undefined) journal.stopping = true
        await pool.closeAll(settings.drainTimeoutMs)
        await journal?.close()
        await http?.close()
      })()
      return stopping
    }
  }
}

async function openJournal (settings: RunSettings, logger: Logger): Promise<MessageJournal> {
  try {
    return await MessageJournal.open({ dataDir: settings.dataDir, sync: settings.durability === 'power' ? 'power' : 'process', maxBytes: settings.walMaxBytes }, logger)
  } catch (err) {
    if (!causedByTheSystem(err)) throw err
    throw new UsageError(`cannot open the write-ahead log in ${settings.dataDir}: ${(err as Error).message} (set --data-dir, or --durability none)`, { cause: err, code: 'DATA_DIR' })
  }
}

/** The current set's rule names, as one array per rule set (a new one only after a swap). */
function ruleNamesOf (engine: Engine): () => readonly string[] {
  let of: RuleSet | undefined
  let names: string[] = []
  return () => {
    if (engine.ruleSet !== of) { of = engine.ruleSet; names = of.rules.map((r) => r.name) }
    return names
  }
}

/** The distinct MQTT filters of a rule set: what an external source subscribes to. */
function filtersOf (ruleSet: RuleSet): string[] {
  return [...new Set(ruleSet.rules.map((r) => r.pattern.filter))]
}

function hostForUrl (host: string): string {
  return host.includes(':') ? `[${host}]` : host
}

function loadUsers (file: string | undefined): UserStore | undefined {
  if (file === undefined) return undefined
  const store = new UserStore(file)
  const problems = store.load()
  if (problems.length > 0) throw new UsageError(`users file not loaded:\n${problems.map(formatProblem).join('\n')}`, { code: 'USERS_FILE' })
  return store
}

/**
 * The safe default, as Mosquitto 2 has it: with no users and no explicit allow_anonymous: true,
 * anyone who can reach the broker could use it, so every listener binds to loopback only.
 */
function safeListeners (settings: RunSettings, users: UserStore | undefined, logger: Logger): ListenerSettings[] {
  if (users !== undefined || settings.allowAnonymous === true) return settings.listeners
  const moved = settings.listeners.filter((l) => !isLoopback(l.host))
  if (moved.length > 0) {
    logger.warn({ requested: moved.map((l) => `${l.host}:${l.port}`) },
      'no users are configured and allow_anonymous is not true: listening on loopback only (set users_file, or allow_anonymous: true, to listen on other addresses)')
  } else {
    logger.info('no users are configured: anonymous clients are allowed, on loopback only')
  }
  return settings.listeners.map((l) => isLoopback(l.host) ? l : { ...l, host: l.host.includes(':') ? '::1' : '127.0.0.1' })
}
