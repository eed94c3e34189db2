/** The `signalbox` command: run | check | test | trace | passwd | schema. User mistakes print one clear line (plus an excerpt), never a stack. */
import { SINK_SPECS } from '../../adapters/sink-specs.js'
import { readFileSync } from 'node:fs'
import { relative } from 'node:path'
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander'
import { formatProblem, type RuleProblem } from '../../rules/check/problems.js'
import { loadRuleSet } from '../../rules/compile/ruleset.js'
import { SourceCache } from '../../rules/source/source-cache.js'
import { renderRuleSchema } from '../../rules/check/schema.js'
import { configSchema, EMBEDDED_SOURCE, loadConfig, sourceSettings, type ConfigSettings, type RawSource, type RunSettings } from '../service/config.js'
import { defaultText, merged, parseFlag, SETTINGS, type Setting, type SettingValues } from '../service/settings.js'
import { sourceUrlProblem } from '../../adapters/sources/sources.js'
import { DEFAULT_LIMITS } from '../broker/limits.js'
import { StartupError, UsageError } from '../runtime/errors.js'
import { createLogger, ruleLogTo } from '../observe/logger.js'
import { findSuites } from '../tools/rule-tests.js'
import { readPassword } from './password-prompt.js'
import { startService } from '../service/service.js'
import { hashPassword, userNameProblem, writeUser } from '../broker/users.js'
import { runSuites } from '../tools/test-runner.js'
import { traceMessage } from '../tools/trace.js'
import { watchPaths, type Watcher } from '../service/watch.js'

/** What commander gives `run`: the settings' flags by their attribute names, and these. */
interface RunFlags extends Record<string, unknown> {
  config?: string
  /** False with --no-watch. */
  watch?: boolean
  source?: string[]
}

/** Output streams, replaceable in tests. */
export interface CliIo {
  out: (text: string) => void
  err: (text: string) => void
}

const defaultIo: CliIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text)
}

/** Runs the CLI with `argv` (without node and script); resolves to the exit code. */
export async function main (argv: string[], io: CliIo = defaultIo): Promise<number> {
  let exitCode = 0
  const program = new Command('signalbox')
    .description('Declarative topic-routing rules engine for MQTT, with an embedded broker.')
    .version(readVersion(), '-V, --version')
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .exitOverride()
    .showHelpAfterError('(add --help for usage)')

  const run = program.command('run')
  run.description('Start the embedded MQTT broker (or attach to others with --source) and run the rules on every message.')
    .argument('[rules...]', 'rules files or directories of *.yaml files')
    .option('-c, --config <file>', 'config file (YAML): listeners, users, acl, limits, rules, sources, share, http and the settings below')
  const settingFlags = addSettingFlags(run)
  run
    .option('--no-watch', 'do not reload when rules files change (SIGHUP still reloads)')
    .option('--source <url>', 'take messages from an MQTT 5 broker (mqtt://, mqtts://, ws://, wss://) or NATS (nats://, tls://) instead of the embedded broker; repeat for several; `embedded` keeps the embedded broker too', collectSource, [])
    .action(async (rules: string[], flags: RunFlags) => { exitCode = await runCommand(rules, flags, settingFlags(flags), io) })

  program.command('check')
    .description('Validate rules files (and with --config, a config file and its rules): print every problem with file:line:col; exit 1 on any error.')
    .argument('[files...]', 'rules files or directories (default with --config: its rules:)')
    .option('-c, --config <file>', 'a config file to check too')
    .action((files: string[], flags: { config?: string }) => { exitCode = checkCommand(files, flags.config, io) })

  program.command('test')
    .description('Run rule test cases (*.test.yaml files, or tests: in rules files) with no broker or network; exit 1 on any failure.')
    .argument('<paths...>', 'test files, rules files (their tests: and a NAME.test.yaml beside them), or directories of both')
    .option('-w, --watch', 'run again whenever a test or rules file changes (stop with Ctrl-C)')
    .action(async (paths: string[], flags: { watch?: boolean }) => { exitCode = await testCommand(paths, flags.watch === true, io) })

  program.command('trace')
    .description('Show every step the rules take for one message: matched rules (file:line), where, set, outputs, refusals and errors.')
    .requiredOption('-r, --rules <paths...>', 'rules files or directories')
    .requiredOption('-t, --topic <topic>', 'the topic the message arrives on')
    .option('-m, --payload <text>', 'the payload (default: empty)', '')
    .option('-q, --qos <n>', 'its QoS (default: 0)', parseQos, 0)
    .option('--retain', 'it is retained')
    .option('--client-id <id>', 'the publishing client (meta.clientId)', 'trace')
    .option('--max-hops <n>', `republishes followed before a message is dropped (default: ${SETTINGS.maxHops.default})`, flagParser(SETTINGS.maxHops))
    .action((flags: TraceFlags) => { exitCode = traceCommand(flags, io) })

  program.command('passwd')
    .description('Add a user to a users file, or change their password (read from stdin, or asked twice on a terminal; never from the command line).')
    .argument('<file>', 'the users file (created when missing)')
    .argument('<user>', 'the user name')
    .option('-d, --delete', 'remove the user instead')
    .action(async (file: string, user: string, flags: { delete?: boolean }) => { exitCode = await passwdCommand(file, user, flags.delete === true, io) })

  program.command('schema')
    .description('Print the JSON Schema of rules files (for editors: # yaml-language-server: $schema=…).')
    .action(() => { io.out(renderRuleSchema(SINK_SPECS)) })

  try {
    await program.parseAsync(argv, { from: 'user' })
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2
    if (err instanceof StartupError) {
      io.err(`signalbox: ${err.code}: ${err.message}\n`)
      return 1
    }
    throw err
  }
  return exitCode
}

function checkCommand (files: string[], configFile: string | undefined, io: CliIo): number {
  const problems: RuleProblem[] = []
  let rulePaths = files
  if (configFile !== undefined) {
    const config = loadConfig(configFile)
    if (files.length === 0) rulePaths = (config.ok ? config.settings.rules : config.rules) ?? []
    if (!config.ok) problems.push(...config.problems)
  }
  if (rulePaths.length === 0 && problems.length === 0) throw new UsageError(configFile === undefined ? 'no rules given: signalbox check RULES…, or --config FILE' : `no rules given, and ${configFile} has no rules:`)
  const result = rulePaths.length > 0 ? loadRuleSet(rulePaths, { sinkSpecs: SINK_SPECS }) : undefined
  if (result !== undefined) problems.push(...(result.ok ? result.warnings : result.problems))
  printProblems(problems, io.out)
  for (const file of configFileGivenAsRules(rulePaths, problems)) io.out(`${file} looks like a config file, not a rules file: check it with \`signalbox check --config ${file}\`\n`)
  const errors = problems.filter((p) => p.severity === 'error').length
  const warnings = problems.length - errors
  const also = warnings > 0 ? `, ${warnings} warning${plural(warnings)}` : ''
  if (errors === 0 && result?.ok === true) {
    io.out(`ok: ${configFile !== undefined ? `${configFile}, ` : ''}${result.ruleSet.rules.length} rule${plural(result.ruleSet.rules.length)} in ${result.ruleSet.files.length} file${plural(result.ruleSet.files.length)}${also}\n`)
    return 0
  }
  io.out(`${errors} error${plural(errors)}${also}\n`)
  return 1
}

/** Rules files whose problems say they are config files: unknown top-level fields that a config file has, and no rules. */
function configFileGivenAsRules (files: string[], problems: RuleProblem[]): string[] {
  const configKeys = new Set(Object.keys(configSchema.properties))
  return files.filter((file) => {
    const unknown = problems.filter((p) => p.file === file && p.code === 'UNKNOWN_FIELD').map((p) => /^unknown field '([^']+)'/.exec(p.message)?.[1])
    return unknown.length > 0 && unknown.every((k) => k !== undefined && configKeys.has(k))
  })
}

async function runCommand (rulePaths: string[], flags: RunFlags, given: Partial<SettingValues>, io: CliIo): Promise<number> {
  const settings = resolveSettings(rulePaths, flags, given, io)
  if (settings === undefined) return 1
  // Kept for hot reloads: a file that has not changed is not parsed again.
  const sourceCache = new SourceCache()
  const logger = createLogger(settings.logLevel)
  const loaded = loadRuleSet(settings.rules, { sinkSpecs: SINK_SPECS, cache: sourceCache, log: ruleLogTo(logger) })
  if (!loaded.ok) {
    printProblems(loaded.problems, io.err)
    io.err(`signalbox: rules not loaded (${loaded.problems.filter((p) => p.severity === 'error').length} errors)\n`)
    return 1
  }
  printProblems(loaded.warnings, io.err)
  // Listen for SIGTERM/SIGINT before starting: one that comes during start-up still stops cleanly.
  const stopSignal = waitForStopSignal()
  const service = await startService(settings, loaded.ruleSet, logger, { watch: flags.watch !== false, sourceCache })
  const { broker } = service
  logger.info({ rules: loaded.ruleSet.rules.length, sinks: loaded.ruleSet.sinks.map((s) => s.name), files: loaded.ruleSet.files, watching: flags.watch !== false }, 'rules loaded')
  for (const l of broker?.listeners ?? []) logger.info({ type: l.type, host: l.host, port: l.port }, `signalbox listening on ${l.host}:${l.port} (${l.type})`)
  const share = settings.sources[0]?.share
  for (const s of service.sources) logger.info({ source: s.name, kind: s.kind, share, state: s.health().state }, `signalbox taking messages from ${s.name}${share === undefined ? '' : ` (share group ${share})`}`)
  if (broker === undefined && (given.host !== undefined || given.port !== undefined)) logger.warn('--host/--port ignored: the embedded broker is off with --source (add --source embedded to keep it)')
  const signal = await stopSignal
  logger.info({ signal, drainTimeoutMs: settings.drainTimeoutMs }, 'stopping: closing the inputs, then draining sinks')
  await service.stop()
  logger.info(service.report(), 'stopped')
  return 0
}

function testCommand (paths: string[], watch: boolean, io: CliIo): Promise<number> {
  const runOnce = (): { code: number, watched: string[] } => {
    const { suites, problems } = findSuites(paths)
    printProblems(problems, io.out)
    const report = runSuites(suites)
    io.out(report.text)
    const failed = problems.some((p) => p.severity === 'error') || report.failed > 0 || report.broken > 0 || suites.length === 0
    return { code: failed ? 1 : 0, watched: [...new Set([...paths, ...suites.flatMap((s) => [s.file, ...s.rulePaths])])] }
  }
  const first = runOnce()
  if (!watch) return Promise.resolve(first.code)
  return new Promise((resolve) => {
    const logger = createLogger('warn')
    let watched = first.watched
    let watcher = watchFiles(watched)
    function watchFiles (files: string[]): Watcher {
      return watchPaths(files, (path) => /\.ya?ml$/.test(path), (changed) => {
        io.out(`\n— ${new Date().toLocaleTimeString()}: ${changed.map((c) => relative(process.cwd(), c)).join(', ')} changed; running again\n`)
        const next = runOnce()
        if (sameMembers(next.watched, watched)) return
        // A test file names other rules now: watch those, and drop the old watcher only once the new
        // one has finished its scan, so no save falls in between.
        watched = next.watched
        const previous = watcher
        watcher = watchFiles(watched)
        watcher.ready.then(async () => { await previous.close() }, () => {})
      }, { logger })
    }
    // Say so only once the first scan is done: a save before that would not be seen.
    watcher.ready.then(() => { io.out('watching for changes (Ctrl-C to stop)\n') }, () => {})
    waitForStopSignal().then(async () => { await watcher.close(); resolve(0) }, () => {})
  })
}

function sameMembers (a: string[], b: string[]): boolean {
  const set = new Set(a)
  return a.length === b.length && b.every((x) => set.has(x))
}

async function passwdCommand (file: string, user: string, remove: boolean, io: CliIo): Promise<number> {
  const bad = userNameProblem(user)
  if (bad !== undefined) throw new UsageError(bad)
  if (remove) {
    const result = writeUser(file, user, undefined)
    io.out(result === 'removed' ? `removed ${user} from ${file}\n` : `${user} is not in ${file}\n`)
    return result === 'removed' ? 0 : 1
  }
  const password = await readPassword(io)
  if (password === '') throw new UsageError('the password is empty')
  const result = writeUser(file, user, await hashPassword(password))
  io.out(`${result === 'added' ? 'added' : 'changed the password of'} ${user} in ${file}\n`)
  return 0
}

interface TraceFlags {
  rules: string[]
  topic: string
  payload: string
  qos: 0 | 1 | 2
  retain?: boolean
  clientId: string
  maxHops?: number
}

function traceCommand (flags: TraceFlags, io: CliIo): number {
  const loaded = loadRuleSet(flags.rules, { sinkSpecs: SINK_SPECS })
  if (!loaded.ok) {
    printProblems(loaded.problems, io.err)
    io.err(`signalbox: rules not loaded (${loaded.problems.filter((p) => p.severity === 'error').length} errors)\n`)
    return 1
  }
  const result = traceMessage(loaded.ruleSet, {
    topic: flags.topic, payload: Buffer.from(flags.payload), qos: flags.qos, retain: flags.retain === true, clientId: flags.clientId
  }, { maxHops: flags.maxHops })
  io.out(result.text)
  return 0
}

/**
 * Adds a flag for every setting that has one (settings.ts), checked by the setting's schema; returns
 * how to read the values given, by setting, from what commander parsed.
 */
function addSettingFlags (command: Command): (parsed: Record<string, unknown>) => Partial<SettingValues> {
  const options: Array<[string, Option]> = []
  for (const [property, s] of Object.entries(SETTINGS) as Array<[string, Setting<unknown>]>) {
    if (s.flag === undefined) continue
    const option = new Option(s.flag, `${s.description} Default: ${defaultText(s)}.`)
    const choices = (s.schema as { enum?: string[] }).enum
    if (choices !== undefined) {
      option.choices(choices)
    } else if (option.required) {
      option.argParser(flagParser(s))
    }
    command.addOption(option)
    options.push([property, option])
  }
  return (parsed) => Object.fromEntries(options.map(([property, option]) => [property, parsed[option.attributeName()]]).filter(([, v]) => v !== undefined)) as Partial<SettingValues>
}

/** Commander's parser of a setting's flag: the setting's schema decides what is valid. */
function flagParser<T> (s: Setting<T>): (text: string) => T {
  return (text) => {
    const parsed = parseFlag(s, text)
    if ('problem' in parsed) throw new InvalidArgumentError(`${parsed.problem}.`)
    return parsed.value as T
  }
}

function resolveSettings (rulePaths: string[], flags: RunFlags, given: Partial<SettingValues>, io: CliIo): RunSettings | undefined {
  let fromConfig: ConfigSettings = {}
  if (flags.config !== undefined) {
    const config = loadConfig(flags.config)
    if (!config.ok) {
      printProblems(config.problems, io.err)
      io.err('signalbox: config file not loaded\n')
      return undefined
    }
    fromConfig = config.settings
  }
  const values = merged(SETTINGS, { ...given, rules: rulePaths.length > 0 ? rulePaths : undefined }, fromConfig)
  if (values.rules.length === 0) throw new UsageError('no rules given: signalbox run RULES… (files or directories), or rules: in --config')
  if (fromConfig.listeners !== undefined && (given.host !== undefined || given.port !== undefined)) {
    throw new UsageError('--host and --port set the single TCP listener; the config file has listeners:, so set hosts and ports there')
  }
  const { host, port, share, ...rest } = values
  const listeners = fromConfig.listeners ?? [{ type: 'tcp' as const, host, port }]
  // Sources on the command line replace the config file's; either may list `embedded`.
  const rawSources: RawSource[] = flags.source !== undefined && flags.source.length > 0 ? flags.source.map((url) => ({ url })) : (fromConfig.sources ?? [])
  const external = sourceSettings(rawSources, share)
  if (share !== undefined && external.length === 0) throw new UsageError('--share splits the load of external sources: give --source mqtt://… or nats://… too')
  return {
    ...rest,
    embedded: external.length === 0 || rawSources.some((r) => r.url === EMBEDDED_SOURCE),
    sources: external,
    listeners,
    acl: fromConfig.acl,
    limits: fromConfig.limits ?? DEFAULT_LIMITS
  }
}

function waitForStopSignal (): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
      resolve(signal)
    }
    process.on('SIGINT', stop)
    process.on('SIGTERM', stop)
  })
}

function printProblems (problems: RuleProblem[], write: (text: string) => void): void {
  for (const p of problems) write(formatProblem(p) + '\n')
}

function parseQos (value: string): 0 | 1 | 2 {
  if (value !== '0' && value !== '1' && value !== '2') throw new InvalidArgumentError('QoS is 0, 1 or 2.')
  return Number(value) as 0 | 1 | 2
}

function collectSource (value: string, previous: string[]): string[] {
  if (value !== EMBEDDED_SOURCE) {
    const why = sourceUrlProblem(value)
    if (why !== undefined) throw new InvalidArgumentError(why + '.')
  }
  return [...previous, value]
}

function plural (n: number): string {
  return n === 1 ? '' : 's'
}

/** The package version; this file runs from engine/cli/ under tsx and from dist/engine/cli/ when built. */
function readVersion (): string {
  for (const up of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as { name?: string, version?: string }
      if (pkg.name === 'signalbox' && pkg.version !== undefined) return pkg.version
    } catch {
      // Try the next level up.
    }
  }
  return 'unknown'
}
