/**
 * Validated rules file → CompiledRule[]: filters parsed, JsonLogic compiled to closures, templates
 * parsed, and the checks a schema cannot make. snake_case YAML keys become camelCase here only.
 */
import { positionOf, problemAt, scalarOffset, type DataPath, type SourceFile } from './load.js'
import { compileLogic, type Evaluator, type LogicUsage, type RuleData } from './logic.js'
import { parsePattern, type Pattern } from './pattern.js'
import type { RuleProblem } from './problems.js'
import { compileTemplate, parseTemplate, type Rendered, type Template } from './template.js'

/** Where a rule or output was written, for trace output and runtime errors. */
export interface SourcePosition {
  file: string
  line: number
  col: number
}

/** An output that republishes on the embedded broker. */
export interface CompiledMqttOutput {
  kind: 'mqtt'
  template: string
  render: (data: RuleData) => Rendered
  /** Undefined: keep the QoS the message arrived with. */
  qos: 0 | 1 | 2 | undefined
  retain: boolean
  source: SourcePosition
}

export type CompiledOutput = CompiledMqttOutput

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

interface RawOutput {
  mqtt?: unknown
  qos?: unknown
  retain?: unknown
}

/**
 * Compiles the rules of one file. Parts that failed schema validation are skipped (their
 * problems are already reported), so one run reports every problem the file has.
 */
export function compileRuleFile (source: SourceFile): { rules: CompiledRule[], problems: RuleProblem[] } {
  const problems: RuleProblem[] = []
  const rules: CompiledRule[] = []
  const data = source.data as { rules?: unknown }
  if (data === null || typeof data !== 'object' || !Array.isArray(data.rules)) return { rules, problems }
  data.rules.forEach((raw: unknown, index: number) => {
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return
    const rule = compileRule(source, raw as RawRule, ['rules', index], problems)
    if (rule !== undefined) rules.push(rule)
  })
  return { rules, problems }
}

function compileRule (source: SourceFile, raw: RawRule, path: DataPath, problems: RuleProblem[]): CompiledRule | undefined {
  const errorsBefore = problems.filter((p) => p.severity === 'error').length
  const at = (sub: DataPath): SourcePosition => positionOf(source, [...path, ...sub])

  let pattern: Pattern | undefined
  if (typeof raw.from === 'string') {
    const parsed = parsePattern(raw.from)
    if (parsed.ok) pattern = parsed.pattern
    else problems.push(problemAt(source, [...path, 'from'], 'BAD_FILTER', `invalid filter '${raw.from}': ${parsed.error.message}`, { offset: scalarOffset(source, [...path, 'from'], parsed.error.index) }))
  }

  const usage: LogicUsage = { payload: false, payloadFields: false }
  const compileExpression = (expression: unknown, exprPath: DataPath): Evaluator | undefined => {
    const compiled = compileLogic(expression)
    if (!compiled.ok) {
      const { code, message, path: inner, atKey } = compiled.error
      problems.push(problemAt(source, [...exprPath, ...inner], code, message, { atKey }))
      return undefined
    }
    usage.payload ||= compiled.usage.payload
    usage.payloadFields ||= compiled.usage.payloadFields
    return compiled.evaluate
  }

  const where = raw.where === undefined ? undefined : compileExpression(raw.where, [...path, 'where'])
  let set: CompiledRule['set']
  if (raw.set !== null && typeof raw.set === 'object' && !Array.isArray(raw.set)) {
    const fields: Array<[string, Evaluator]> = []
    for (const [key, expression] of Object.entries(raw.set)) {
      const f = compileExpression(expression, [...path, 'set', key])
      if (f !== undefined) fields.push([key, f])
    }
    set = buildPayload(fields)
  }

  const outputs: CompiledOutput[] = []
  if (Array.isArray(raw.to)) {
    raw.to.forEach((out: unknown, i: number) => {
      if (out === null || typeof out !== 'object') return
      const compiled = compileMqttOutput(source, out as RawOutput, [...path, 'to', i], pattern, usage, problems)
      if (compiled !== undefined) outputs.push(compiled)
    })
  }

  const hasNewErrors = problems.filter((p) => p.severity === 'error').length > errorsBefore
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
    source: at([])
  }
}

function compileMqttOutput (
  source: SourceFile, raw: RawOutput, path: DataPath, pattern: Pattern | undefined, usage: LogicUsage, problems: RuleProblem[]
): CompiledMqttOutput | undefined {
  if (typeof raw.mqtt !== 'string') return undefined
  const topicPath = [...path, 'mqtt']
  const parsed = parseTemplate(raw.mqtt)
  if (!parsed.ok) {
    problems.push(problemAt(source, topicPath, 'BAD_TEMPLATE', `invalid topic template '${raw.mqtt}': ${parsed.error.message}`, { offset: scalarOffset(source, topicPath, parsed.error.index) }))
    return undefined
  }
  const template = parsed.template
  let ok = true
  for (const p of template.placeholders) {
    if (p.kind === 'payload') usage.payloadFields = true
    if (p.kind !== 'capture' || pattern === undefined) continue
    if (!pattern.captures.some((c) => c.name === p.path[0])) {
      ok = false
      const known = pattern.captures.map((c) => c.name)
      const hint = known.length === 0 ? `'${pattern.source}' has no named captures` : `captures in '${pattern.source}': ${known.join(', ')}`
      problems.push(problemAt(source, topicPath, 'UNKNOWN_CAPTURE', `template names '${p.text}', which the filter does not capture; ${hint}`, { offset: scalarOffset(source, topicPath, p.index) }))
    }
  }
  if (!ok || pattern === undefined) return undefined
  if (canMatch(pattern.levels, templateLevels(template, pattern))) {
    problems.push(problemAt(source, topicPath, 'SELF_MATCH',
      `output '${raw.mqtt}' can match this rule's own filter '${pattern.source}': such messages loop through the rule until max_hops stops them`,
      { severity: 'warning' }))
  }
  const multi = new Set(pattern.captures.filter((c) => c.multi).map((c) => c.name))
  return {
    kind: 'mqtt',
    template: raw.mqtt,
    render: compileTemplate(template, multi),
    qos: raw.qos === 0 || raw.qos === 1 || raw.qos === 2 ? raw.qos : undefined,
    retain: raw.retain === true,
    source: positionOf(source, topicPath)
  }
}

function buildPayload (fields: Array<[string, Evaluator]>): (data: RuleData) => Record<string, unknown> {
  return (data) => {
    const out: Record<string, unknown> = {}
    for (let i = 0; i < fields.length; i++) out[fields[i][0]] = fields[i][1](data)
    return out
  }
}

/**
 * The shape of the topics a template can render, as filter levels: a level holding a placeholder
 * becomes '+', and one holding a '#name' capture (which may span levels) ends the shape with '#'.
 */
function templateLevels (template: Template, pattern: Pattern): string[] {
  const multi = new Set(pattern.captures.filter((c) => c.multi).map((c) => c.name))
  let text = ''
  for (const part of template.parts) {
    if (typeof part === 'string') text += part
    else text += part.kind === 'capture' && multi.has(part.path[0]) ? '\u0002' : '\u0001'
  }
  const levels: string[] = []
  for (const level of text.split('/')) {
    if (level.includes('\u0002')) { levels.push('#'); break }
    levels.push(level.includes('\u0001') ? '+' : level)
  }
  return levels
}

/** Whether some topic matches both filters. */
function canMatch (a: string[], b: string[], i = 0, j = 0): boolean {
  if (i === 0 && j === 0) {
    // [MQTT-4.7.2-1] a leading wildcard never matches a '$' topic.
    const aWild = a[0] === '+' || a[0] === '#'
    const bWild = b[0] === '+' || b[0] === '#'
    if ((aWild && b[0].startsWith('$')) || (bWild && a[0].startsWith('$'))) return false
  }
  if (a[i] === '#' || b[j] === '#') return true
  if (i === a.length || j === b.length) return i === a.length && j === b.length
  if (a[i] === '+' || b[j] === '+' || a[i] === b[j]) return canMatch(a, b, i + 1, j + 1)
  return false
}
