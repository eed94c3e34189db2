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
import { SinkStartError } from './errors.js'
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
  report: () => ReturnType<Engine['snapshot']> & { sinks: Record<string, SinkReport>, reloads: Reloader['stats'] }
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
    deadLetterPrefix: settings.deadLetterPrefix
  }, plan.sinks)
  let broker: EmbeddedBroker
  try {
    broker = await startBroker({ host: settings.host, port: settings.port, onMessage: (msg) => engine.handle(msg) })
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
  const onHangup = (): void => { reloader.reload('SIGHUP').catch(() => {}) }
  process.on('SIGHUP', onHangup)

  let stopping: Promise<void> | undefined
  return {
    broker,
    engine,
    reloader,
    sinks: () => pool.sinks,
    report: () => ({ ...engine.snapshot(), sinks: pool.report(), reloads: { ...reloader.stats } }),
    stop: () => {
      stopping ??= (async () => {
        process.off('SIGHUP', onHangup)
        await watcher?.close()
        await broker.close()
        await reloader.settle()
        await pool.closeAll(settings.drainTimeoutMs)
      })()
      return stopping
    }
  }
}
