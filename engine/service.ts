/**
 * `signalbox run` as one object: sinks, engine, embedded broker, hot reload and the file watcher,
 * started in that order and stopped in the reverse one (the broker first, so nothing new arrives
 * while the sinks drain).
 */
import type { Sink } from '../adapters/sink.js'
import type { RuleSet } from '../rules/ruleset.js'
import { startBroker, type EmbeddedBroker } from './broker.js'
import type { RunSettings } from './config.js'
import { Engine } from './engine.js'
import { SinkStartError, UsageError } from './errors.js'
import { formatProblem } from '../rules/problems.js'
import type { AccessCounters, AccessPolicy } from './access.js'
import { isLoopback, type ListenerSettings } from './listeners.js'
import { UserStore } from './users.js'
import type { Logger } from './logger.js'
import { Reloader } from './reload.js'
import { SinkPool, type SinkReport } from './sinks.js'
import { isRulesFile, watchPaths, type Watcher } from './watch.js'

export interface Service {
  broker: EmbeddedBroker
  engine: Engine
  reloader: Reloader
  /** The running sinks, by name (changes with reloads). */
  sinks: () => Map<string, Sink>
  /** Counters of the engine, every rule and every running sink. */
  report: () => ReturnType<Engine['snapshot']> & { access: AccessCounters, sinks: Record<string, SinkReport>, reloads: Reloader['stats'] }
  /** Closes the broker, stops watching, drains the sinks for up to drainTimeoutMs. */
  stop: () => Promise<void>
}

export async function startService (settings: RunSettings, ruleSet: RuleSet, logger: Logger, options: { watch: boolean }): Promise<Service> {
  const pool = new SinkPool(logger)
  let plan
  try {
    plan = await pool.prepare(ruleSet.sinks)
  } catch (err) {
    throw new SinkStartError(`cannot start ${(err as Error).message}`, { cause: err })
  }
  await pool.commit(plan, 0)
  // The engine publishes through the broker, and the broker feeds the engine: the holder breaks the cycle.
  const holder: { broker?: EmbeddedBroker } = {}
  const engine = new Engine(ruleSet, {
    publish: (out, done) => { if (holder.broker === undefined) done(new Error('broker not started')); else holder.broker.publish(out, done) },
    logger,
    maxHops: settings.maxHops,
    deadLetterPrefix: settings.deadLetterPrefix,
    maxJsonDepth: settings.limits.maxJsonDepth
  }, plan.sinks)
  let broker: EmbeddedBroker
  let users: UserStore | undefined
  try {
    users = loadUsers(settings.usersFile)
    const access: AccessPolicy = { users, allowAnonymous: settings.allowAnonymous ?? users === undefined, acl: settings.acl, limits: settings.limits }
    broker = await startBroker({ listeners: safeListeners(settings, users, logger), onMessage: (msg) => engine.handle(msg), access, logger })
  } catch (err) {
    await pool.closeAll(0)
    throw err
  }
  holder.broker = broker
  const reloader = new Reloader({ paths: settings.rules, engine, pool, logger, drainTimeoutMs: settings.drainTimeoutMs })
  let watcher: Watcher | undefined
  if (options.watch) {
    watcher = watchPaths(settings.rules, isRulesFile, (changed) => { reloader.reload(`changed: ${changed.join(', ')}`).catch(() => {}) }, { logger })
    await watcher.ready
  }
  let usersWatcher: Watcher | undefined
  if (users !== undefined && options.watch) {
    const store = users
    usersWatcher = watchPaths([store.file], () => true, () => {
      const problems = store.load()
      if (problems.length === 0) logger.info({ file: store.file, users: store.size }, 'users reloaded')
      else logger.error({ file: store.file, problems: problems.map((p) => formatProblem(p).split('\n')[0]) }, 'users file not reloaded, the previous users stay')
    }, { logger })
    await usersWatcher.ready
  }
  const onHangup = (): void => { reloader.reload('SIGHUP').catch(() => {}) }
  process.on('SIGHUP', onHangup)

  let stopping: Promise<void> | undefined
  return {
    broker,
    engine,
    reloader,
    sinks: () => pool.sinks,
    report: () => ({ ...engine.snapshot(), access: { ...broker.access.counters }, sinks: pool.report(), reloads: { ...reloader.stats } }),
    stop: () => {
      stopping ??= (async () => {
        process.off('SIGHUP', onHangup)
        await watcher?.close()
        await usersWatcher?.close()
        await broker.close()
        await reloader.settle()
        await pool.closeAll(settings.drainTimeoutMs)
      })()
      return stopping
    }
  }
}

function loadUsers (file: string | undefined): UserStore | undefined {
  if (file === undefined) return undefined
  const store = new UserStore(file)
  const problems = store.load()
  if (problems.length > 0) throw new UsageError(`users file not loaded:\n${problems.map(formatProblem).join('\n')}`)
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
