/** Topic templates ('alerts/{room}/hot'): parsed once when rules load, rendered per message. */
import type { PatternError } from './pattern.js'
import type { RuleData } from './logic.js'

/** A placeholder: a capture ('{room}'), a payload field ('{payload.a.b}') or a meta field ('{meta.clientId}'). */
export interface Placeholder {
  kind: 'capture' | 'payload' | 'meta'
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

const META_FIELDS = ['clientId', 'qos', 'retain', 'receivedAt', 'hops']
const SEGMENT = /^[A-Za-z0-9_$-]+$/

/** Parses '{…}' placeholders; literal text may not hold '+', '#' or NUL, since the result is a topic name. */
export function parseTemplate (source: string): { ok: true, template: Template } | { ok: false, error: PatternError } {
  const parts: Array<string | Placeholder> = []
  const placeholders: Placeholder[] = []
  let literal = ''
  for (let i = 0; i < source.length; i++) {
    const ch = source[i]
    if (ch === '{') {
      const close = source.indexOf('}', i + 1)
      if (close < 0) return { ok: false, error: { index: i, message: "'{' is not closed by '}'" } }
      const inner = source.slice(i + 1, close).trim()
      const placeholder = parsePlaceholder(inner, i)
      if ('message' in placeholder) return { ok: false, error: placeholder }
      if (literal !== '') parts.push(literal)
      literal = ''
      parts.push(placeholder)
      placeholders.push(placeholder)
      i = close
    } else if (ch === '}') {
      return { ok: false, error: { index: i, message: "'}' has no matching '{'" } }
    } else if (ch === '+' || ch === '#' || ch === '\u0000') {
      // [MQTT-3.3.2-2] a published topic name must not contain wildcards (or NUL, [MQTT-4.7.3-2]).
      const what = ch === '\u0000' ? 'NUL' : `'${ch}'`
      return { ok: false, error: { index: i, message: `a topic template must not contain ${what}` } }
    } else {
      literal += ch
    }
  }
  if (literal !== '') parts.push(literal)
  if (parts.length === 0) return { ok: false, error: { index: 0, message: 'a topic template must not be empty' } }
  return { ok: true, template: { source, parts, placeholders } }
}

function parsePlaceholder (inner: string, index: number): Placeholder | PatternError {
  const text = `{${inner}}`
  if (inner === '') return { index, message: "'{}' names nothing; write '{capture}', '{payload.field}' or '{meta.field}'" }
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
 * Builds the per-message renderer. `multiCaptures` names the '#name' captures, whose values may
 * hold '/'; every other value must be non-empty and hold no '/', '+', '#' or NUL.
 */
export function compileTemplate (template: Template, multiCaptures: ReadonlySet<string>): (data: RuleData) => Rendered {
  const steps = template.parts.map((part) => {
    if (typeof part === 'string') return (): Rendered => part
    const read = readerFor(part)
    const allowSlash = part.kind === 'capture' && multiCaptures.has(part.path[0])
    return (data: RuleData): Rendered => checkValue(part.text, read(data), allowSlash)
  })
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
  const root = p.kind
  return (data) => {
    let value: unknown = data[root]
    for (let i = 0; i < path.length; i++) {
      if (value === null || typeof value !== 'object' || !Object.hasOwn(value, path[i])) return undefined
      value = (value as Record<string, unknown>)[path[i]]
    }
    return value
  }
}

function checkValue (text: string, value: unknown, allowSlash: boolean): Rendered {
  let s: string
  if (typeof value === 'string') s = value
  else if (typeof value === 'number' && Number.isFinite(value)) s = String(value)
  else if (typeof value === 'boolean') s = String(value)
  else return { refused: `${text} is ${value === undefined ? 'missing' : value === null ? 'null' : 'not a string or number'}` }
  if (s === '') return { refused: `${text} is empty` }
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
