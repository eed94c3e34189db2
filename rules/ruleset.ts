/** Loads a whole rule set (files and directories) through load → validate → compile, collecting every problem. */
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { compileRuleFile, type CompiledRule } from './compile.js'
import { loadSource, positionOf, problemAt } from './load.js'
import { hasErrors, sortProblems, type RuleProblem } from './problems.js'
import { SinkTable } from './sinks.js'
import type { CachedLoad, SourceCache } from './source-cache.js'
import { validateRuleFile } from './validate.js'
import type { SinkDefinition } from '../adapters/sink.js'
import type { SourceFile } from './load.js'

/** A compiled rule set: what the engine swaps in as one reference. */
export interface RuleSet {
  rules: CompiledRule[]
  /** Every sink an output can name: declared ones and the implicit defaults of shorthand outputs. */
  sinks: SinkDefinition[]
  files: string[]
}

export type RuleSetResult =
  | { ok: true, ruleSet: RuleSet, warnings: RuleProblem[] }
  | { ok: false, problems: RuleProblem[] }

/** Compiles a file, or takes its kept compile (replaying what it did to the sink table). */
function compileCached (source: SourceFile, sinks: SinkTable, fingerprint: string, cache: SourceCache | undefined): { rules: CompiledRule[], problems: RuleProblem[] } {
  if (cache === undefined) return compileRuleFile(source, sinks)
  const kept = cache.compiled(source, fingerprint)
  if (kept !== undefined) {
    sinks.replay(kept.effects)
    return kept
  }
  const { result, effects } = sinks.recordDuring(() => compileRuleFile(source, sinks, cache.keptBefore(source, fingerprint)))
  cache.keepCompiled(source, { sinks: fingerprint, rules: result.rules, problems: result.problems, effects, kept: result.kept })
  return result
}

function loadAndValidate (file: string): CachedLoad {
  const loaded = loadSource(file)
  return loaded.ok ? { ok: true, source: loaded.source, problems: validateRuleFile(loaded.source) } : loaded
}

/** Whether a path is a directory: true, false, or undefined when it does not exist or cannot be read. */
export function directoryOrFile (path: string): boolean | undefined {
  try {
    return statSync(path).isDirectory()
  } catch {
    return undefined
  }
}

/** Expands directories into their *.yaml / *.yml files, sorted by name so the rule order is stable. */
export function expandRulePaths (paths: string[]): { files: string[], problems: RuleProblem[] } {
  const files: string[] = []
  const problems: RuleProblem[] = []
  for (const path of paths) {
    // Not there: loadSource reports it with the file name.
    if (directoryOrFile(path) !== true) { files.push(path); continue }
    const found = readdirSync(path).filter((f) => /\.ya?ml$/.test(f) && !/\.test\.ya?ml$/.test(f)).sort()
    if (found.length === 0) problems.push({ code: 'FILE_UNREADABLE', severity: 'error', message: 'directory holds no *.yaml or *.yml rules files', file: path, line: 1, col: 1 })
    for (const f of found) files.push(join(path, f))
  }
  return { files, problems }
}

/**
 * Loads, validates and compiles every file; the set is usable only when no file has an error.
 * With a cache, files unchanged since its last load are not parsed again.
 */
export function loadRuleSet (paths: string[], cache?: SourceCache): RuleSetResult {
  const steps = loadRuleSetInSteps(paths, cache)
  for (;;) {
    const step = steps.next()
    if (step.done === true) return step.value
  }
}

/**
 * loadRuleSet one file at a time: the generator pauses after reading and after compiling each
 * file, so whoever drives it (the reloader, between turns of the event loop) keeps a large rule set
 * from holding everything else for the whole load. Each step is one file's work.
 */
export function * loadRuleSetInSteps (paths: string[], cache?: SourceCache): Generator<void, RuleSetResult> {
  const { files, problems } = expandRulePaths(paths)
  const rules: CompiledRule[] = []
  // Where each name was first used; its position is worked out only for a duplicate's message.
  const seen = new Map<string, { source: SourceFile, index: number }>()
  // Sinks first, from every file: an output may name a sink declared in another file of the set.
  const sinks = new SinkTable()
  const sources: SourceFile[] = []
  for (const file of files) {
    const loaded = cache !== undefined ? cache.load(file) : loadAndValidate(file)
    if (!loaded.ok) { problems.push(...loaded.problems); continue }
    sources.push(loaded.source)
    problems.push(...loaded.problems)
    sinks.addFile(loaded.source, problems)
    yield
  }
  cache?.retain(files)
  const fingerprint = sinks.fingerprint()
  for (const source of sources) {
    const compiled = compileCached(source, sinks, fingerprint, cache)
    problems.push(...compiled.problems)
    const raw = (source.data as { rules?: Array<{ name?: unknown }> }).rules
    if (Array.isArray(raw)) {
      raw.forEach((r, i) => {
        const name = r?.name
        if (typeof name !== 'string') return
        const first = seen.get(name)
        if (first !== undefined) {
          const p = positionOf(first.source, ['rules', first.index, 'name'])
          problems.push(problemAt(source, ['rules', i, 'name'], 'DUPLICATE_RULE', `rule name '${name}' is already used at ${p.file}:${p.line}:${p.col}`))
        } else {
          seen.set(name, { source, index: i })
        }
      })
    }
    rules.push(...compiled.rules)
    yield
  }
  problems.push(...sinks.unusedWarnings())
  const sorted = sortProblems(problems)
  if (hasErrors(sorted)) return { ok: false, problems: sorted }
  return { ok: true, ruleSet: { rules, sinks: sinks.all(), files }, warnings: sorted }
}
