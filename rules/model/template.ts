/**
 * Templates ('alerts/{room}/hot', 'alerts.{room}', 'data/{room}/{date}.jsonl'): parsed once when
 * rules load, rendered per message. The syntax decides what a rendered value may hold, so a value
 * from a message can never move an output somewhere its author did not write.
 */
import type { PatternError } from './pattern.js'
import type { RuleData } from '../logic/logic.js'

/** A placeholder: a capture ('{room}'), a payload field ('{payload.a.b}') or a meta field ('{meta.clientId}'). */
export interface Placeholder {
  kind: 'capture' | 'payload' | 'meta' | 'date'
  /** For a capture, [name]; otherwise the path below the root. */
  path: string[]
  /** Offset of the '{' in the template text. */
  index: number
  text: string
}

/** A parsed template: literal text and placeholders, in order. */
export interface Template {
  source: string
  parts: Array<string | Placeholder>
  placeholders: Placeholder[]
}

/** Why one output was not published. The engine counts it; nothing is published to a surprising topic. */
export interface TemplateRefusal {
  refused: string
}

export type Rendered = string | TemplateRefusal

/**
 * What a template renders: an MQTT topic name, a NATS subject, a file path, a database table
 * (`schema.name` or `name`, letters, digits and `_`), an HTTP URL (values percent-encoded), an
 * HTTP header value (no CR, LF or NUL) or free text (a request body: values as they are).
 */
export type TemplateSyntax = 'topic' | 'subject' | 'path' | 'table' | 'url' | 'header' | 'text'

const META_FIELDS = ['clientId', 'qos', 'retain', 'receivedAt', 'hops']
const SEGMENT = /^[A-Za-z0-9_$-]+$/

/**
 * Parses '{…}' placeholders. Literal text is checked for the syntax: a topic may not hold '+', '#'
 * or NUL; a subject no '*', '>', whitespace or NUL; a path no NUL. '{date}' is for paths only.
 */
export function parseTemplate (source: string, syntax: TemplateSyntax = 'topic'): { ok: true, template: Template } | { ok: false, error: PatternError } {
  const parts: Array<string | Placeholder> = []
  const placeholders: Placeholder[] = []
  let literal = ''
  for (let i = 0; i < source.length; i++) {
    const ch = source[i]
    if (ch === '{') {
      const close = source.indexOf('}', i + 1)
      if (close < 0) return { ok: false, error: { index: i, message: "'{' is not closed by '}'" } }
      const inner = source.slice(i + 1, close).trim()
      const placeholder = parsePlaceholder(inner, i, syntax)
      if ('message' in placeholder) return { ok: false, error: placeholder }
      if (literal !== '') parts.push(literal)
      literal = ''
      parts.push(placeholder)
      placeholders.push(placeholder)
      i = close
    } else if (ch === '}') {
      return { ok: false, error: { index: i, message: "'}' has no matching '{'" } }
    } else if (literalForbidden(ch, syntax)) {
      const what = ch === '\u0000' ? 'NUL' : /\s/.test(ch) ? 'whitespace' : `'${ch}'`
      return { ok: false, error: { index: i, message: `a ${syntax} template must not contain ${what}` } }
    } else {
      literal += ch
    }
  }
  if (literal !== '') parts.push(literal)
  if (parts.length === 0) return { ok: false, error: { index: 0, message: `a ${syntax} template must not be empty` } }
  return { ok: true, template: { source, parts, placeholders } }
}

function literalForbidden (ch: string, syntax: TemplateSyntax): boolean {
  if (ch === '\u0000') return true
  // [MQTT-3.3.2-2] a published topic name must not contain wildcards (or NUL, [MQTT-4.7.3-2]).
  if (syntax === 'topic') return ch === '+' || ch === '#'
  // NATS: '*' and '>' are wildcards and whitespace ends a subject in the protocol.
  if (syntax === 'subject') return ch === '*' || ch === '>' || /\s/.test(ch)
  // An identifier, unquoted: the sink quotes it, and only these characters are ever there to quote.
  if (syntax === 'table') return !/[A-Za-z0-9_.]/.test(ch)
  if (syntax === 'url') return /\s/.test(ch)
  if (syntax === 'header') return ch === '\r' || ch === '\n'
  return false
}

function parsePlaceholder (inner: string, index: number, syntax: TemplateSyntax): Placeholder | PatternError {
  const text = `{${inner}}`
  if (inner === '') return { index, message: "'{}' names nothing; write '{capture}', '{payload.field}' or '{meta.field}'" }
  if (inner === 'date' && syntax === 'path') return { kind: 'date', path: [], index, text }
  const path = inner.split('.')
  if (path.some((s) => !SEGMENT.test(s))) return { index, message: `'${text}' is not a valid placeholder` }
  if (path[0] === 'payload') {
    if (path.length === 1) return { index, message: "'{payload}' would put a whole payload in a topic; name a field, e.g. '{payload.room}'" }
    return { kind: 'payload', path: path.slice(1), index, text }
  }
  if (path[0] === 'meta') {
    if (path.length !== 2 || !META_FIELDS.includes(path[1])) {
      return { index, message: `'${text}' is not a meta field; known: ${META_FIELDS.map((f) => 'meta.' + f).join(', ')}` }
    }
    return { kind: 'meta', path: path.slice(1), index, text }
  }
  if (path.length > 1) return { index, message: `'${text}': only 'payload.' and 'meta.' placeholders have dotted paths` }
  return { kind: 'capture', path, index, text }
}

/**
 * Builds the per-message renderer. `multiCaptures` names the '#name' captures, which span levels:
 * in a topic or path they keep their '/', in a subject each '/' becomes '.'. Every other value must
 * be non-empty and hold nothing that would add a level: '/', '+', '#' in a topic; '.', '*', '>',
 * whitespace in a subject; '/', '\\', '.' or '..' as a whole in a path; NUL anywhere.
 */
export function compileTemplate (template: Template, multiCaptures: ReadonlySet<string>, syntax: TemplateSyntax = 'topic'): (data: RuleData) => Rendered {
  const steps = template.parts.map((part) => {
    if (typeof part === 'string') return (): Rendered => part
    if (part.kind === 'date') return (data: RuleData): Rendered => new Date(data.meta.receivedAt).toISOString().slice(0, 10)
    const read = readerFor(part)
    const multi = part.kind === 'capture' && multiCaptures.has(part.path[0])
    return (data: RuleData): Rendered => checkValue(part.text, read(data), multi, syntax)
  })
  const render = joinSteps(steps)
  if (syntax === 'topic' && typeof template.parts[0] !== 'string') return refuseReserved(render)
  if (syntax !== 'subject') return render
  return (data) => {
    const out = render(data)
    // A value can be checked alone, but only the whole subject shows an empty token ('a..b', '.a').
    if (typeof out === 'string' && (out.startsWith('.') || out.endsWith('.') || out.includes('..'))) {
      return { refused: `subject '${out}' has an empty token` }
    }
    return out
  }
}

/**
 * A topic template that starts with a placeholder must not render a '$' topic ($SYS/…,
 * $signalbox/…): those are the broker's and the engine's, and a client could not publish there
 * itself. Only a template whose text starts with '$' may.
 */
function refuseReserved (render: (data: RuleData) => Rendered): (data: RuleData) => Rendered {
  return (data) => {
    const out = render(data)
    if (typeof out === 'string' && out.charCodeAt(0) === 36) return { refused: `topic '${out.slice(0, 200)}' starts with '$', which is reserved; only a template written with a leading '$' may publish there` }
    return out
  }
}

/**
 * The NATS subject for an MQTT topic when an output names no subject: levels joined by '.'.
 * Refused when a level is empty or holds '.', '*', '>' or whitespace, or the topic starts with
 * '$' (reserved on both sides: '$SYS' in MQTT, '$JS' in NATS).
 */
export function topicToSubject (topic: string): Rendered {
  if (topic.startsWith('$')) return { refused: `topic '${topic}' is reserved ('$'); name a subject` }
  const levels = topic.split('/')
  for (const level of levels) {
    const why = subjectTokenProblem(level)
    if (why !== undefined) return { refused: `topic '${topic}' has no NATS subject: a level ${why}` }
  }
  return levels.join('.')
}

function joinSteps (steps: Array<(data: RuleData) => Rendered>): (data: RuleData) => Rendered {
  if (steps.length === 1) return steps[0]
  return (data) => {
    let out = ''
    for (let i = 0; i < steps.length; i++) {
      const piece = steps[i](data)
      if (typeof piece !== 'string') return piece
      out += piece
    }
    return out
  }
}

function readerFor (p: Placeholder): (data: RuleData) => unknown {
  if (p.kind === 'capture') {
    const name = p.path[0]
    return (data) => data.params[name]
  }
  const path = p.path
  const root = p.kind as 'payload' | 'meta'
  return (data) => {
    let value: unknown = data[root]
    for (let i = 0; i < path.length; i++) {
      if (value === null || typeof value !== 'object' || !Object.hasOwn(value, path[i])) return undefined
      value = (value as Record<string, unknown>)[path[i]]
    }
    return value
  }
}

function checkValue (text: string, value: unknown, multi: boolean, syntax: TemplateSyntax): Rendered {
  let s: string
  if (typeof value === 'string') s = value
  else if (typeof value === 'number' && Number.isFinite(value)) s = String(value)
  else if (typeof value === 'boolean') s = String(value)
  else return { refused: `${text} is ${value === undefined ? 'missing' : value === null ? 'null' : 'not a string or number'}` }
  if (syntax === 'text') return s
  if (s === '') return { refused: `${text} is empty` }
  // A CR or LF would end the header and start another (header injection).
  if (syntax === 'header') return s.includes('\r') || s.includes('\n') || s.includes('\u0000') ? { refused: `${text} holds a line break or NUL, which a header value may not` } : s
  if (syntax === 'subject') return checkSubjectValue(text, s, multi)
  if (syntax === 'path') return checkPathValue(text, s, multi)
  if (syntax === 'table') return /^[A-Za-z0-9_]+$/.test(s) ? s : { refused: `${text} holds characters other than letters, digits and '_', which a table name may not` }
  // Each value is one path segment (a '#name' capture: several), encoded so it cannot add a '/', '?' or '#'.
  if (syntax === 'url') return multi ? s.split('/').map(encodeURIComponent).join('/') : encodeURIComponent(s)
  const allowSlash = multi
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    // '/' 47, '+' 43, '#' 35, NUL 0: each would change which topic the output lands on.
    if ((c === 47 && !allowSlash) || c === 43 || c === 35 || c === 0) {
      const shown = c === 0 ? 'NUL' : `'${s[i]}'`
      return { refused: `${text} holds ${shown}, which a topic level may not` }
    }
  }
  return s
}

function checkSubjectValue (text: string, s: string, multi: boolean): Rendered {
  const tokens = multi ? s.split('/') : [s]
  for (const token of tokens) {
    const why = subjectTokenProblem(token)
    if (why !== undefined) return { refused: `${text} ${why.replace('is empty', 'has an empty level')}, which a subject token may not` }
  }
  return multi ? tokens.join('.') : s
}

/** Why a string cannot be one token of a NATS subject, or undefined. */
function subjectTokenProblem (token: string): string | undefined {
  if (token === '') return 'is empty'
  for (let i = 0; i < token.length; i++) {
    const c = token[i]
    if (c === '.' || c === '*' || c === '>') return `holds '${c}'`
    if (c === '\u0000') return 'holds NUL'
    if (/\s/.test(c)) return 'holds whitespace'
  }
  return undefined
}

function checkPathValue (text: string, s: string, multi: boolean): Rendered {
  if (s.includes('\u0000')) return { refused: `${text} holds NUL, which a path may not` }
  if (s.includes('\\')) return { refused: `${text} holds '\\', which a path value may not` }
  const segments = multi ? s.split('/') : [s]
  for (const segment of segments) {
    if (!multi && segment.includes('/')) return { refused: `${text} holds '/', which would add a directory` }
    if (segment === '' || segment === '.' || segment === '..') return { refused: `${text} would make a path segment '${segment}'` }
  }
  return s
}
