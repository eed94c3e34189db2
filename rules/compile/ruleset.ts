/** Loads a whole rule set (files and directories) through load → validate → compile, collecting every problem. */
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { compileRuleFileInSteps, type CompiledRule, type RuleLog } from './compile.js'
import { positionOf, problemAt } from '../source/load.js'
import { parseAndValidate, type ParsedFile } from '../source/parse-file.js'
import { hasErrors, sortProblems, type RuleProblem } from '../check/problems.js'
import { SinkTable } from './sink-table.js'
import type { SourceCache } from '../source/source-cache.js'
import type { SinkDefinition, SinkSpec } from '../model/sink-spec.js'
import { ruleSchemaFor } from '../check/schema.js'
import type { SourceFile } from '../source/load.js'

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
function * compileCached (source: SourceFile, sinks: SinkTable, fingerprint: string, cache: SourceCache | undefined, log: RuleLog | undefined): Generator<undefined, { rules: CompiledRule[], problems: RuleProblem[] }> {
  if (cache === undefined) return yield * compileRuleFileInSteps(source, sinks, { log })
  const kept = cache.compiled(source, fingerprint)
  if (kept !== undefined) {
    sinks.replay(kept.effects)
    return kept
  }
  const { result, effects } = yield * sinks.recordSteps(compileRuleFileInSteps(source, sinks, { log }))
  cache.keepCompiled(source, { sinks: fingerprint, rules: result.rules, problems: result.problems, effects })
  return result
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
 * What a step of loadRuleSetInSteps asks of whoever drives it: a file parsed and validated
 * (parseAndValidate, here or on another thread; from this text, or read there when the text is
 * undefined), answered through next(); or, undefined, only a chance to let other work run.
 */
export type LoadRequest = { parse: { file: string, text: string | undefined, schema: Record<string, unknown> } } | undefined

export interface LoadOptions {
  /** The sink types outputs and `sinks:` may name (adapters/sink-specs.ts). */
  sinkSpecs: readonly SinkSpec[]
  /** Files kept from earlier loads: unchanged ones are not parsed again. */
  cache?: SourceCache
  /** Where rules' JsonLogic `log` writes (compile.ts). */
  log?: RuleLog
}

/**
 * Loads, validates and compiles every file; the set is usable only when no file has an error.
 * With a cache, files unchanged since its last load are not parsed again.
 */
export function loadRuleSet (paths: string[], options: LoadOptions): RuleSetResult {
  const steps = loadRuleSetInSteps(paths, options)
  let answer: ParsedFile | undefined
  for (;;) {
    const step = steps.next(answer)
    if (step.done === true) return step.value
    answer = step.value !== undefined ? parseAndValidate(step.value.parse.file, step.value.parse.text, step.value.parse.schema) : undefined
  }
}

/**
 * loadRuleSet in steps, for a driver that keeps a large rule set from holding everything else
 * for the whole load (the reloader, which parses on another thread and lets the event loop turn
 * between steps): it asks for each file it has to parse, pauses after each file's read, and
 * compiles in slices (slices.ts).
 */
export function * loadRuleSetInSteps (paths: string[], { sinkSpecs, cache, log }: LoadOptions): Generator<LoadRequest, RuleSetResult, ParsedFile | undefined> {
  const schema = ruleSchemaFor(sinkSpecs)
  const { files, problems } = expandRulePaths(paths)
  const rules: CompiledRule[] = []
  // Where each name was first used; its position is worked out only for a duplicate's message.
  const seen = new Map<string, { source: SourceFile, index: number }>()
  // Sinks first, from every file: an output may name a sink declared in another file of the set.
  const sinks = new SinkTable(sinkSpecs)
  const sources: SourceFile[] = []
  for (const file of files) {
    const found = cache !== undefined ? cache.lookup(file) : { ok: 'unparsed' as const, text: undefined }
    let loaded: ParsedFile
    if (found.ok === 'unparsed') {
      const parsed = yield { parse: { file, text: found.text, schema } }
      if (parsed === undefined) throw new Error(`loadRuleSetInSteps: no parse of ${file} was given`)
      loaded = cache !== undefined ? cache.store(file, parsed) : parsed
    } else {
      loaded = found
    }
    if (!loaded.ok) { problems.push(...loaded.problems); continue }
    sources.push(loaded.source)
    problems.push(...loaded.problems)
    sinks.addFile(loaded.source, problems)
    yield
  }
  cache?.retain(files)
  const fingerprint = sinks.fingerprint()
  for (const source of sources) {
    const compiled = yield * compileCached(source, sinks, fingerprint, cache, log)
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
