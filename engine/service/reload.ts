/**
 * Hot reload: the whole new rule set is loaded, validated and compiled off to the side, its sinks
 * diffed and started, and only then swapped in with one reference assignment, so each message is
 * handled entirely by the old set or entirely by the new one. None of it holds the broker for more
 * than a few milliseconds at a time: YAML and schema work run on a worker thread, the rest in slices. A set that fails to load changes
 * nothing; every problem is logged with file:line:col, and a later good save recovers.
 */
import { performance } from 'node:perf_hooks'
import { SINK_SPECS } from '../../adapters/sink-specs.js'
import { formatProblem } from '../../rules/check/problems.js'
import { OffThreadParser } from '../../rules/source/parse-off-thread.js'
import type { ParsedFile } from '../../rules/source/parse-file.js'
import { loadRuleSetInSteps, type RuleSet, type RuleSetResult } from '../../rules/compile/ruleset.js'
import { SourceCache } from '../../rules/source/source-cache.js'
import type { Engine } from '../runtime/engine.js'
import { ruleLogTo, type Logger } from '../observe/logger.js'
import type { SinkPool } from './sink-pool.js'

export interface ReloadStats {
  successes: number
  failures: number
  /** Why the last reload failed; cleared by a successful one. */
  lastError: string | undefined
  /** Load + compile + sink start + swap, in ms, of the last successful reload. */
  lastDurationMs: number | undefined
  /** A reload is reading and compiling the rules now (the running ones keep handling messages). */
  loading: boolean
}

export interface ReloaderOptions {
  paths: string[]
  engine: Engine
  pool: SinkPool
  logger: Logger
  /** How long a removed or replaced sink may take to deliver what it holds. */
  drainTimeoutMs: number
  /** Called right after a new rule set is swapped in (external sources follow its filters). */
  onSwap?: (ruleSet: RuleSet) => void
  /** Parsed files from earlier loads: unchanged files are not parsed again. */
  cache?: SourceCache
}

export class Reloader {
  readonly stats: ReloadStats = { successes: 0, failures: 0, lastError: undefined, lastDurationMs: undefined, loading: false }
  private readonly cache: SourceCache
  private running: Promise<void> | undefined
  private again = false
  private readonly retiring = new Set<Promise<void>>()
  private readonly parser = new OffThreadParser()

  constructor (private readonly options: ReloaderOptions) {
    this.cache = options.cache ?? new SourceCache()
  }

  /** Reloads; a request while one runs makes it run once more afterwards, with the files as they are then. */
  reload (reason: string): Promise<void> {
    if (this.running !== undefined) {
      this.again = true
      return this.running
    }
    this.running = (async () => {
      do {
        this.again = false
        await this.reloadOnce(reason)
      } while (this.again)
    })().finally(() => { this.running = undefined })
    return this.running
  }

  /** Waits for a reload in progress and for retired sinks to finish draining. */
  async settle (): Promise<void> {
    await this.running
    await Promise.all([...this.retiring])
  }

  private async reloadOnce (reason: string): Promise<void> {
    const { engine, pool, logger } = this.options
    const started = performance.now()
    const hitsBefore = this.cache.hits
    const loaded = await this.loadInSteps()
    const unchangedFiles = this.cache.hits - hitsBefore
    if (!loaded.ok) {
      const errors = loaded.problems.filter((p) => p.severity === 'error')
      this.fail(reason, `${errors.length} error${errors.length === 1 ? '' : 's'}: ${errors.map((p) => `${p.file}:${p.line}:${p.col} ${p.code}`).join(', ')}`, loaded.problems.map((p) => formatProblem(p).split('\n')[0]))
      return
    }
    let plan
    try {
      plan = await pool.prepare(loaded.ruleSet.sinks)
    } catch (err) {
      this.fail(reason, (err as Error).message, [])
      return
    }
    const preparing = engine.prepareInSteps(loaded.ruleSet, plan.sinks)
    let prepared = preparing.next()
    for (; prepared.done !== true; prepared = preparing.next()) await turn()
    engine.swapPrepared(prepared.value)
    this.options.onSwap?.(loaded.ruleSet)
    const retiring = pool.commit(plan, this.options.drainTimeoutMs)
    this.retiring.add(retiring)
    retiring.catch((err: Error) => logger.warn({ err: err.message }, 'retiring a sink failed')).finally(() => this.retiring.delete(retiring))
    const ms = performance.now() - started
    this.stats.successes++
    this.stats.lastError = undefined
    this.stats.lastDurationMs = ms
    for (const w of loaded.warnings) logger.warn({ problem: formatProblem(w) }, 'rules warning')
    logger.info({
      reason,
      rules: loaded.ruleSet.rules.length,
      files: loaded.ruleSet.files,
      unchangedFiles,
      sinks: { started: plan.started, kept: plan.kept, retired: plan.retired.map((s) => s.name) },
      ms: Math.round(ms * 10) / 10
    }, 'rules reloaded')
  }

  /**
   * Loads the rule set without holding the broker: files are parsed and validated on another
   * thread, and the rest (taking the parse in, compiling) runs in slices with turns of the event
   * loop between them.
   */
  private async loadInSteps (): Promise<RuleSetResult> {
    const steps = loadRuleSetInSteps(this.options.paths, { sinkSpecs: SINK_SPECS, cache: this.cache, log: ruleLogTo(this.options.logger) })
    this.stats.loading = true
    try {
      let answer: ParsedFile | undefined
      for (;;) {
        const step = steps.next(answer)
        if (step.done === true) return step.value
        answer = undefined
        if (step.value !== undefined) answer = await this.parser.parse(step.value.parse.file, step.value.parse.text, step.value.parse.schema, turn)
        await turn()
      }
    } finally {
      this.stats.loading = false
      // The thread's heap holds the garbage of every parse: ending it gives that memory back.
      await this.parser.close()
    }
  }

  private fail (reason: string, summary: string, problems: string[]): void {
    this.stats.failures++
    this.stats.lastError = summary
    this.options.logger.error({ reason, problems }, `reload failed, the previous rules keep running: ${summary}`)
  }
}

/** One turn of the event loop: what a reload lets the broker do between its slices. */
async function turn (): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve))
}
