/** Starts the engine on a real embedded aedes broker on an ephemeral loopback port, with rules from YAML text. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import type { Sink } from '../../adapters/sink.js'
import type { EmbeddedBroker } from '../../engine/broker/broker.js'
import type { RunSettings } from '../../engine/service/config.js'
import type { Engine } from '../../engine/runtime/engine.js'
import { DEFAULT_LIMITS, defaultMaxPacketBytes, type Limits } from '../../engine/broker/limits.js'
import type { Logger } from '../../engine/observe/logger.js'
import { startService, type Service } from '../../engine/service/service.js'
import { formatProblem } from '../../rules/check/problems.js'
import { loadRuleSet } from '../../rules/compile/ruleset.js'
import { onTeardown } from './teardown.js'
import { SINK_SPECS } from '../../adapters/sink-specs.js'

export interface RunningSignalbox {
  port: number
  engine: Engine
  broker: EmbeddedBroker
  /** The running sinks by name (a reload may change them). */
  readonly sinks: Map<string, Sink>
  service: Service
  /** The rules file; rewrite it to test reloads. */
  file: string
  /** The directory holding the rules file (relative sink paths start here). */
  dir: string
}

/**
 * Writes `yaml` to a temporary rules file and serves it the way `signalbox run` does (sinks,
 * engine, embedded broker on an ephemeral port; with `watch`, hot reload); stopped at teardown.
 */
export async function startSignalbox (yaml: string, options: { maxHops?: number, watch?: boolean, logger?: Logger, directory?: boolean, limits?: Partial<Limits>, settings?: Partial<RunSettings> } = {}): Promise<RunningSignalbox> {
  const dir = tempDir()
  // With `directory`, the rules path is a directory holding rules.yaml, so files can be added and removed.
  const rulesPath = options.directory === true ? join(dir, 'rules') : join(dir, 'rules.yaml')
  if (options.directory === true) mkdirSync(rulesPath)
  const file = options.directory === true ? join(rulesPath, 'rules.yaml') : rulesPath
  writeFileSync(file, yaml)
  const loaded = loadRuleSet([rulesPath], { sinkSpecs: SINK_SPECS })
  if (!loaded.ok) throw new Error('test rules do not load:\n' + loaded.problems.map(formatProblem).join('\n'))
  const settings: RunSettings = {
    listeners: [{ type: 'tcp', host: '127.0.0.1', port: 0 }],
    limits: { ...DEFAULT_LIMITS, maxPacketBytes: defaultMaxPacketBytes(options.limits?.maxPayloadBytes ?? DEFAULT_LIMITS.maxPayloadBytes), ...options.limits },
    rules: [rulesPath],
    maxHops: options.maxHops ?? 8,
    deadLetterPrefix: '$signalbox/dead-letter',
    drainTimeoutMs: 1000,
    logLevel: 'silent',
    embedded: true,
    sources: [],
    sysIntervalS: 0,
    readyGraceMs: 30_000,
    // The write-ahead log only where a test asks for it (settings: { durability: 'process' }).
    durability: 'none',
    dataDir: join(dir, 'data'),
    walMaxBytes: 256 * 1024 * 1024,
    ...options.settings
  }
  const service = await startService(settings, loaded.ruleSet, options.logger ?? pino({ level: 'silent' }), { watch: options.watch === true })
  onTeardown(async () => await service.stop())
  const broker = service.broker
  if (broker === undefined) throw new Error('startSignalbox serves the embedded broker: do not turn it off')
  return {
    port: broker.port,
    engine: service.engine,
    broker,
    get sinks () { return service.sinks() },
    service,
    file,
    dir
  }
}

/** A temporary directory, removed at teardown. */
export function tempDir (): string {
  const dir = mkdtempSync(join(tmpdir(), 'signalbox-test-'))
  onTeardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}
