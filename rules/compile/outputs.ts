/**
 * Compiles the outputs of a rule (`to:`): the embedded broker (`mqtt:`), a named sink (`sink:`),
 * or a shorthand (`nats: subject`, `file: path`). Each gets one address template, checked for
 * its syntax and for captures the rule's filter does not have.
 */
import { isAbsolute } from 'node:path'
import type { SinkDefinition, SinkSpec } from '../model/sink-spec.js'
import { lazyPositionOf, problemAt, scalarOffset, type DataPath, type SourceFile, type SourcePosition } from '../source/load.js'
import { addField, addUsage, compileLogic, editDistance, type Evaluator, type LogicOptions, type LogicUsage, type RuleData } from '../logic/logic.js'
import type { Pattern } from '../model/pattern.js'
import type { RuleProblem } from '../check/problems.js'
import { baseDirOf, type SinkTable } from './sink-table.js'
import { compileTemplate, parseTemplate, topicToSubject, type Rendered, type Template, type TemplateRefusal, type TemplateSyntax } from '../model/template.js'

export type { SourcePosition } from '../source/load.js'

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

/** An output that hands the message to a sink. */
export interface CompiledSinkOutput {
  kind: 'sink'
  sink: string
  /** The address template as written, or how the address is derived, for messages. */
  template: string
  /** Renders the subject, topic or path. */
  render: (data: RuleData) => Rendered
  qos: 0 | 1 | 2 | undefined
  retain: boolean
  source: SourcePosition
  /** The output as written (for options a sink reads per output, such as a table's `columns`). */
  options: Readonly<Record<string, unknown>>
  /** The spec's `expressions` this output gives, evaluated per message. */
  expressions?: ReadonlyArray<readonly [string, Evaluator]>
  /** The spec's `templates` this output (or its sink) gives, rendered per message. */
  templates?: ReadonlyArray<readonly [string, OptionTemplate]>
}

/** A rendered option template: a string, or an object of strings; or why the output is refused. */
export type OptionTemplate = (data: RuleData) => { value: string | Record<string, string> } | TemplateRefusal

export type CompiledOutput = CompiledMqttOutput | CompiledSinkOutput

type RawOutput = Record<string, unknown>

/** What an output compile needs from its rule. */
export interface OutputContext {
  source: SourceFile
  pattern: Pattern | undefined
  usage: LogicUsage
  sinks: SinkTable
  problems: RuleProblem[]
  logic?: LogicOptions
}

const EMBEDDED_KEYS = ['mqtt', 'qos', 'retain']

/** For a list of sink types: every key an output may have, and the keys that say where it goes. */
interface OutputKeys {
  known: ReadonlySet<string>
  kinds: readonly string[]
}

const outputKeysBySpecs = new WeakMap<readonly SinkSpec[], OutputKeys>()

function outputKeys (specs: readonly SinkSpec[]): OutputKeys {
  let keys = outputKeysBySpecs.get(specs)
  if (keys === undefined) {
    keys = {
      known: new Set([...EMBEDDED_KEYS, 'sink', ...specs.flatMap((t) => [...(t.shorthand !== undefined ? [t.type] : []), ...Object.keys(t.outputOptions)])]),
      kinds: ['mqtt', 'sink', ...specs.filter((t) => t.shorthand !== undefined).map((t) => t.type)]
    }
    outputKeysBySpecs.set(specs, keys)
  }
  return keys
}

export function compileOutput (ctx: OutputContext, raw: RawOutput, path: DataPath): CompiledOutput | undefined {
  const outputKinds = outputKeys(ctx.sinks.specs).kinds
  const kinds = outputKinds.filter((k) => raw[k] !== undefined)
  if (kinds.length === 0) {
    ctx.problems.push(problemAt(ctx.source, path, 'BAD_OUTPUT', `an output needs one of ${outputKinds.map((k) => `'${k}'`).join(', ')}`))
    return undefined
  }
  if (kinds.length > 1) {
    ctx.problems.push(problemAt(ctx.source, [...path, kinds[1]], 'BAD_OUTPUT', `an output goes to one place: it has both '${kinds[0]}' and '${kinds[1]}'; write two outputs`, { atKey: true }))
    return undefined
  }
  const kind = kinds[0]
  if (kind === 'mqtt') {
    if (!onlyKeys(ctx, raw, path, EMBEDDED_KEYS, '`mqtt` outputs (the embedded broker)')) return undefined
    return compileEmbedded(ctx, raw, path)
  }
  let sink: SinkDefinition | undefined
  if (kind === 'sink') {
    sink = lookupSink(ctx, raw.sink, [...path, 'sink'])
  } else {
    const found = ctx.sinks.forShorthand(ctx.sinks.spec(kind)!, lazyPositionOf(ctx.source, [...path, kind], { atKey: true }), baseDirOf(ctx.source))
    if ('ambiguous' in found) {
      ctx.problems.push(problemAt(ctx.source, [...path, kind], 'BAD_OUTPUT', `several ${kind} sinks are declared (${found.ambiguous.join(', ')}): name one with 'sink:'`, { atKey: true }))
      return undefined
    }
    sink = found
  }
  if (sink === undefined) return undefined
  ctx.sinks.markUsed(sink.name)
  const type = ctx.sinks.spec(sink.type)!
  const allowed = kind === 'sink' ? ['sink', ...Object.keys(type.outputOptions)] : [kind, ...Object.keys(type.outputOptions).filter((k) => k !== type.address.field)]
  if (!onlyKeys(ctx, raw, path, allowed, `${type.type} sink '${sink.name}'`)) return undefined
  return compileSinkOutput(ctx, raw, path, kind, sink, type)
}

function compileEmbedded (ctx: OutputContext, raw: RawOutput, path: DataPath): CompiledMqttOutput | undefined {
  if (typeof raw.mqtt !== 'string') return undefined
  const topicPath = [...path, 'mqtt']
  const template = parseChecked(ctx, raw.mqtt, 'topic', topicPath, topicPath, '')
  if (template === undefined || ctx.pattern === undefined) return undefined
  if (canMatch(ctx.pattern.levels, templateLevels(template, ctx.pattern))) {
    ctx.problems.push(problemAt(ctx.source, topicPath, 'SELF_MATCH',
      `output '${raw.mqtt}' can match this rule's own filter '${ctx.pattern.source}': such messages loop through the rule until max_hops stops them`,
      { severity: 'warning' }))
  }
  return {
    kind: 'mqtt',
    template: raw.mqtt,
    render: compileTemplate(template, multiCaptures(ctx.pattern), 'topic'),
    qos: asQos(raw.qos),
    retain: raw.retain === true,
    source: lazyPositionOf(ctx.source, topicPath)
  }
}

function compileSinkOutput (ctx: OutputContext, raw: RawOutput, path: DataPath, kind: string, sink: SinkDefinition, type: SinkSpec): CompiledSinkOutput | undefined {
  const field = type.address.field
  const fromOutput = kind === 'sink' ? raw[field] : raw[kind]
  const outputKey = kind === 'sink' ? field : kind
  // A sink is handed the message's arrival time (its delivery latency is measured from there).
  ctx.usage.clock = true
  const expressions = compileExpressions(ctx, raw, path, type)
  if (expressions === false) return undefined
  const templates = compileOptionTemplates(ctx, raw, path, kind, sink, type)
  if (templates === false) return undefined
  const base = {
    kind: 'sink' as const,
    sink: sink.name,
    qos: asQos(raw.qos) ?? asQos(sink.options.qos),
    retain: typeof raw.retain === 'boolean' ? raw.retain : sink.options.retain === true,
    source: lazyPositionOf(ctx.source, [...path, kind], { atKey: true }),
    options: raw,
    ...(expressions.length > 0 ? { expressions } : {}),
    ...(templates.length > 0 ? { templates } : {})
  }
  let text: string
  let baseDir: string
  let where: string
  if (typeof fromOutput === 'string') {
    text = fromOutput
    baseDir = baseDirOf(ctx.source)
    where = ''
  } else if (typeof sink.options[field] === 'string') {
    text = sink.options[field] as string
    baseDir = sink.baseDir
    where = `sink '${sink.name}' ${field} `
  } else if (type.address.fallback === 'topic') {
    return { ...base, template: '(the message topic)', render: (data) => data.topic }
  } else if (type.address.fallback === 'subject-from-topic') {
    return { ...base, template: '(the message topic as a subject)', render: (data) => topicToSubject(data.topic) }
  } else {
    ctx.problems.push(problemAt(ctx.source, [...path, kind], 'MISSING_FIELD', `${type.type} sink '${sink.name}' has no '${field}': give one on the sink or on this output`, { atKey: true }))
    return undefined
  }
  const valuePath = [...path, outputKey]
  // A sink-level template is reported at the output that uses it: that rule's captures are what it lacks.
  const template = parseChecked(ctx, text, type.address.syntax, where === '' ? valuePath : [...path, kind], where === '' ? valuePath : undefined, where)
  if (template === undefined || ctx.pattern === undefined) return undefined
  if (type.address.syntax === 'path' && !isAbsolute(text)) template.parts.unshift(baseDir + '/')
  return { ...base, template: text, render: compileTemplate(template, multiCaptures(ctx.pattern), type.address.syntax) }
}

/** The output's expression options (the spec's `expressions`), compiled; false when one is at fault (reported). */
function compileExpressions (ctx: OutputContext, raw: RawOutput, path: DataPath, type: SinkSpec): Array<readonly [string, Evaluator]> | false {
  const compiled: Array<readonly [string, Evaluator]> = []
  for (const name of type.expressions ?? []) {
    if (raw[name] === undefined) continue
    const result = compileLogic(raw[name], ctx.logic)
    if (!result.ok) {
      const { code, message, path: inner, atKey } = result.error
      ctx.problems.push(problemAt(ctx.source, [...path, name, ...inner], code, message, { atKey }))
      return false
    }
    addUsage(ctx.usage, result.usage)
    compiled.push([name, result.evaluate])
  }
  return compiled
}

/** The spec's option templates for this output (its own value, else the sink's), compiled; false when one is at fault (reported). */
function compileOptionTemplates (ctx: OutputContext, raw: RawOutput, path: DataPath, kind: string, sink: SinkDefinition, type: SinkSpec): Array<readonly [string, OptionTemplate]> | false {
  const compiled: Array<readonly [string, OptionTemplate]> = []
  // Every template is checked, so each problem is reported at once.
  let ok = true
  for (const { option, syntax, map } of type.templates ?? []) {
    const own = raw[option] !== undefined
    const value = own ? raw[option] : sink.options[option]
    if (value === undefined || ctx.pattern === undefined) continue
    const where = own ? '' : `sink '${sink.name}' ${option} `
    const reportAt = (key?: string): DataPath => own ? [...path, option, ...(key === undefined ? [] : [key])] : [...path, kind]
    const one = (text: string, key?: string): ((data: RuleData) => Rendered) | undefined => {
      const template = parseChecked(ctx, text, syntax, reportAt(key), own ? reportAt(key) : undefined, where)
      return template === undefined ? undefined : compileTemplate(template, multiCaptures(ctx.pattern!), syntax)
    }
    if (map === true) {
      const entries = Object.entries(value as Record<string, string>).map(([key, text]) => [key, one(text, key)] as const)
      if (entries.some(([, render]) => render === undefined)) { ok = false; continue }
      compiled.push([option, (data) => {
        const out: Record<string, string> = {}
        for (const [key, render] of entries) {
          const rendered = render!(data)
          if (typeof rendered !== 'string') return { refused: `${option}.${key}: ${rendered.refused}` }
          out[key] = rendered
        }
        return { value: out }
      }])
    } else {
      const render = one(value as string)
      if (render === undefined) { ok = false; continue }
      compiled.push([option, (data) => {
        const rendered = render(data)
        return typeof rendered === 'string' ? { value: rendered } : rendered
      }])
    }
  }
  return ok ? compiled : false
}

/**
 * Parses a template and checks its captures against the rule's filter. `scalarPath` is the YAML
 * scalar holding the text (for a caret under the exact character), when the text is in this output.
 */
function parseChecked (ctx: OutputContext, text: string, syntax: TemplateSyntax, reportPath: DataPath, scalarPath: DataPath | undefined, where: string): Template | undefined {
  const offset = (index: number): number | undefined => scalarPath === undefined ? undefined : scalarOffset(ctx.source, scalarPath, index)
  const parsed = parseTemplate(text, syntax)
  if (!parsed.ok) {
    ctx.problems.push(problemAt(ctx.source, reportPath, 'BAD_TEMPLATE', `${where}invalid ${syntax} template '${text}': ${parsed.error.message}`, { offset: offset(parsed.error.index), atKey: scalarPath === undefined }))
    return undefined
  }
  const template = parsed.template
  let ok = true
  for (const p of template.placeholders) {
    if (p.kind === 'date' || (p.kind === 'meta' && p.path[0] === 'receivedAt')) ctx.usage.clock = true
    if (p.kind === 'payload') {
      ctx.usage.payload = true
      ctx.usage.payloadFields = true
      addField(ctx.usage, p.path[0])
    }
    if (p.kind !== 'capture' || ctx.pattern === undefined) continue
    if (!ctx.pattern.captures.some((c) => c.name === p.path[0])) {
      ok = false
      const known = ctx.pattern.captures.map((c) => c.name)
      const hint = known.length === 0 ? `'${ctx.pattern.source}' has no named captures` : `captures in '${ctx.pattern.source}': ${known.join(', ')}`
      ctx.problems.push(problemAt(ctx.source, reportPath, 'UNKNOWN_CAPTURE', `${where}template '${text}' names '${p.text}', which the filter does not capture; ${hint}`, { offset: offset(p.index), atKey: scalarPath === undefined }))
    }
  }
  return ok ? template : undefined
}

function lookupSink (ctx: OutputContext, name: unknown, path: DataPath): SinkDefinition | undefined {
  if (typeof name !== 'string') return undefined
  const sink = ctx.sinks.get(name)
  if (sink !== undefined) return sink
  const known = ctx.sinks.names()
  const close = known.filter((k) => editDistance(k, name) <= 2)
  const hint = known.length === 0 ? 'no sinks are declared (add them under `sinks:`)' : `declared: ${known.join(', ')}`
  ctx.problems.push(problemAt(ctx.source, path, 'UNKNOWN_SINK', `unknown sink '${name}'${close.length > 0 ? ` (did you mean '${close[0]}'?)` : ''}; ${hint}`))
  return undefined
}

/** Reports each key that does not apply to this kind of output. */
function onlyKeys (ctx: OutputContext, raw: RawOutput, path: DataPath, allowed: string[], what: string): boolean {
  let ok = true
  const known = outputKeys(ctx.sinks.specs).known
  for (const key of Object.keys(raw)) {
    // A key no output takes is the schema's to report (UNKNOWN_FIELD, with a suggestion).
    if (allowed.includes(key) || !known.has(key)) continue
    ok = false
    ctx.problems.push(problemAt(ctx.source, [...path, key], 'BAD_OUTPUT', `'${key}' does not apply to ${what}; it takes ${allowed.map((k) => `'${k}'`).join(', ')}`, { atKey: true }))
  }
  return ok
}

function asQos (value: unknown): 0 | 1 | 2 | undefined {
  return value === 0 || value === 1 || value === 2 ? value : undefined
}

function multiCaptures (pattern: Pattern): Set<string> {
  return new Set(pattern.captures.filter((c) => c.multi).map((c) => c.name))
}

/**
 * The shape of the topics a template can render, as filter levels: a level holding a placeholder
 * becomes '+', and one holding a '#name' capture (which may span levels) ends the shape with '#'.
 */
function templateLevels (template: Template, pattern: Pattern): string[] {
  const multi = multiCaptures(pattern)
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
