/**
 * Validated rules file → CompiledRule[]: filters parsed, JsonLogic compiled to closures, templates
 * parsed, and the checks a schema cannot make. snake_case YAML keys become camelCase here only.
 */
import { lazyPositionOf, problemAt, scalarOffset, type DataPath, type SourceFile } from '../source/load.js'
import { addUsage, checkLogic, compileLogic, compileRecord, emptyUsage, OPERATORS, type Evaluator, type RuleData } from '../logic/logic.js'
import { compileOutput, type CompiledOutput, type SourcePosition } from './outputs.js'
import { parsePattern, type Pattern } from '../model/pattern.js'
import type { RuleProblem } from '../check/problems.js'
import type { SinkTable } from './sink-table.js'
import { Slice, type Slicing } from './slices.js'

export type { CompiledOutput, CompiledMqttOutput, CompiledSinkOutput, SourcePosition } from './outputs.js'

/** A rule ready to run: every per-message step is a closure built here, once. */
export interface CompiledRule {
  name: string
  pattern: Pattern
  where: Evaluator | undefined
  /** Builds the new payload; undefined passes the payload through unchanged. */
  set: ((data: RuleData) => Record<string, unknown>) | undefined
  outputs: CompiledOutput[]
  onError: 'dead_letter' | 'drop'
  /** The rule reads `payload` at all: decode it before running. */
  needsPayload: boolean
  /** The rule reads fields below `payload`: a payload that is not JSON is an error for this rule. */
  needsJsonPayload: boolean
  /**
   * The top-level payload fields the rule reads, when it reads nothing else of the payload: the
   * engine may decode just those. Undefined when it reads the payload whole (or not at all).
   */
  payloadFields: readonly string[] | undefined
  /** The rule reads the message's arrival time (meta.receivedAt, {date}, a sink's delivery time). */
  readsClock: boolean
  source: SourcePosition
}

interface RawRule {
  name?: unknown
  from?: unknown
  where?: unknown
  set?: unknown
  to?: unknown
  on_error?: unknown
}

/**
 * Compiles the rules of one file. Parts that failed schema validation are skipped (their
 * problems are already reported), so one run reports every problem the file has.
 */
export function compileRuleFile (source: SourceFile, sinks: SinkTable, options: CompileOptions = {}): FileCompile {
  const steps = compileRuleFileInSteps(source, sinks, options)
  for (;;) {
    const step = steps.next()
    if (step.done === true) return step.value
  }
}

export interface FileCompile { rules: CompiledRule[], problems: RuleProblem[] }

/** Where a rule's JsonLogic `log` writes: the service passes its logger; without one, a JSON line on stderr (never stdout, which commands print to). */
export type RuleLog = (rule: string, value: unknown) => void

export interface CompileOptions {
  log?: RuleLog
  /** When a slice ends (slices.ts): by the clock, unless a test says otherwise. */
  slice?: Slicing
}

const logToStderr: RuleLog = (rule, value) => { process.stderr.write(JSON.stringify({ rule, log: value }) + '\n') }

/** compileRuleFile in slices (slices.ts): it pauses whenever it has held the thread for a slice. */
export function * compileRuleFileInSteps (source: SourceFile, sinks: SinkTable, { log = logToStderr, slice = new Slice() }: CompileOptions = {}): Generator<undefined, FileCompile> {
  const problems: RuleProblem[] = []
  const rules: CompiledRule[] = []
  const data = source.data as { rules?: unknown }
  if (data === null || typeof data !== 'object' || !Array.isArray(data.rules)) return { rules, problems }
  for (let index = 0; index < data.rules.length; index++) {
    if (slice.due) { yield; slice.restart() }
    const raw: unknown = data.rules[index]
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) continue
    const rule = compileRule(source, raw as RawRule, ['rules', index], sinks, problems, log)
    if (rule !== undefined) rules.push(rule)
  }
  return { rules, problems }
}

function compileRule (source: SourceFile, raw: RawRule, path: DataPath, sinks: SinkTable, problems: RuleProblem[], log: RuleLog): CompiledRule | undefined {
  const name = typeof raw.name === 'string' ? raw.name : ''
  const logic = { log: (value: unknown) => log(name, value) }
  const errorsBefore = errorCount(problems)

  let pattern: Pattern | undefined
  if (typeof raw.from === 'string') {
    const parsed = parsePattern(raw.from)
    if (parsed.ok) pattern = parsed.pattern
    else problems.push(problemAt(source, [...path, 'from'], 'BAD_FILTER', `invalid filter '${raw.from}': ${parsed.error.message}`, { offset: scalarOffset(source, [...path, 'from'], parsed.error.index) }))
  }

  const usage = emptyUsage()
  // A problem points at the node at fault; what the expression reads tells when to decode payloads.
  const accept = (result: ReturnType<typeof checkLogic>, exprPath: DataPath): boolean => {
    if (!result.ok) {
      const { code, message, path: inner, atKey } = result.error
      problems.push(problemAt(source, [...exprPath, ...inner], code, message, { atKey }))
      return false
    }
    addUsage(usage, result.usage)
    return true
  }

  let where: Evaluator | undefined
  if (raw.where !== undefined) {
    const compiled = compileLogic(raw.where, logic)
    if (accept(compiled, [...path, 'where']) && compiled.ok) where = compiled.evaluate
  }
  let set: CompiledRule['set']
  if (raw.set !== null && typeof raw.set === 'object' && !Array.isArray(raw.set)) {
    // Each field is checked on its own (its problems point at it); the object is then built by one function.
    const fields = Object.entries(raw.set)
    // `set: { var: payload.x }` reads as an expression but builds the object {"var": "payload.x"}.
    if (fields.length === 1 && OPERATORS.includes(fields[0][0])) {
      const [op, arg] = fields[0]
      problems.push(problemAt(source, [...path, 'set', op], 'SET_IS_EXPRESSION', `\`set\` builds the payload field by field, so this makes an object with one field named '${op}'; to set a field from an expression, name the field: \`set: { ${suggestedField(op, arg)}: { ${op}: ${JSON.stringify(arg)} } }\``, { severity: 'warning', atKey: true }))
    }
    let ok = true
    for (const [key, expression] of fields) ok = accept(checkLogic(expression), [...path, 'set', key]) && ok
    if (ok) set = compileRecord(fields, logic)
  }

  const outputs: CompiledOutput[] = []
  if (Array.isArray(raw.to)) {
    const context = { source, pattern, usage, sinks, problems, logic }
    raw.to.forEach((out: unknown, i: number) => {
      if (out === null || typeof out !== 'object' || Array.isArray(out)) return
      const compiled = compileOutput(context, out as Record<string, unknown>, [...path, 'to', i])
      if (compiled !== undefined) outputs.push(compiled)
    })
  }

  const hasNewErrors = errorCount(problems) > errorsBefore
  if (hasNewErrors || pattern === undefined || typeof raw.name !== 'string') return undefined
  return {
    name: raw.name,
    pattern,
    where,
    set,
    outputs,
    onError: raw.on_error === 'drop' ? 'drop' : 'dead_letter',
    needsPayload: usage.payload || usage.payloadFields,
    needsJsonPayload: usage.payloadFields,
    payloadFields: usage.payload && usage.topFields !== null ? usage.topFields : undefined,
    readsClock: usage.clock,
    source: lazyPositionOf(source, path)
  }
}

/** A field name for the suggestion: the last part of a `var` path (`payload.x` → `x`), else `value`. */
function suggestedField (op: string, arg: unknown): string {
  const path = op === 'var' ? (Array.isArray(arg) ? arg[0] : arg) : undefined
  const last = typeof path === 'string' ? path.split('.').pop() : undefined
  return last !== undefined && /^[A-Za-z_][A-Za-z0-9_]*$/.test(last) ? last : 'value'
}

function errorCount (problems: RuleProblem[]): number {
  let n = 0
  for (const p of problems) if (p.severity === 'error') n++
  return n
}
