/** Starts the engine on a real embedded aedes broker on an ephemeral loopback port, with rules from YAML text. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { startBroker, type EmbeddedBroker } from '../../engine/broker.js'
import { Engine } from '../../engine/engine.js'
import { closeSinks, createSinks, startSinks } from '../../engine/sinks.js'
import type { Sink } from '../../adapters/sink.js'
import { formatProblem } from '../../rules/problems.js'
import { loadRuleSet } from '../../rules/ruleset.js'
import { onTeardown } from './teardown.js'

export interface RunningSignalbox {
  port: number
  engine: Engine
  broker: EmbeddedBroker
  sinks: Map<string, Sink>
  /** The directory holding the rules file (relative sink paths start here). */
  dir: string
}

/** Writes `yaml` to a temporary rules file, compiles it and serves it; closed by the test teardown. */
export async function startSignalbox (yaml: string, options: { maxHops?: number } = {}): Promise<RunningSignalbox> {
  const dir = tempDir()
  const file = join(dir, 'rules.yaml')
  writeFileSync(file, yaml)
  const loaded = loadRuleSet([file])
  if (!loaded.ok) throw new Error('test rules do not load:\n' + loaded.problems.map(formatProblem).join('\n'))
  const logger = pino({ level: 'silent' })
  const sinks = createSinks(loaded.ruleSet.sinks, logger)
  onTeardown(async () => await closeSinks(sinks, 0))
  await startSinks(sinks)
  const holder: { broker?: EmbeddedBroker } = {}
  const engine = new Engine(loaded.ruleSet, {
    publish: (out, done) => holder.broker!.publish(out, done),
    logger,
    maxHops: options.maxHops ?? 8,
    deadLetterPrefix: '$signalbox/dead-letter'
  }, sinks)
  const broker = await startBroker({ host: '127.0.0.1', port: 0, onMessage: (msg) => engine.handle(msg) })
  holder.broker = broker
  onTeardown(() => broker.close())
  return { port: broker.port, engine, broker, sinks, dir }
}

/** A temporary directory, removed at teardown. */
export function tempDir (): string {
  const dir = mkdtempSync(join(tmpdir(), 'signalbox-test-'))
  onTeardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}
